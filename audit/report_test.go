package audit

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the renderers' output")

// TestExitCode: the monitoring convention, for every --fail-on.
func TestExitCode(t *testing.T) {
	t.Parallel()
	report := func(failOn Severity, sevs ...Severity) *Report {
		r := &Report{FailOn: failOn, Ports: []PortResult{{Port: 143, Kind: IMAP, Answered: true}}}
		for _, s := range sevs {
			r.Ports[0].Findings = append(r.Ports[0].Findings, Finding{ID: IDStartTLS, Severity: s})
		}
		return r
	}
	tests := []struct {
		name string
		r    *Report
		want int
	}{
		{"nothing", report(High), ExitClean},
		{"ok and info", report(High, OK, Info), ExitClean},
		{"low", report(High, OK, Low), ExitWarnings},
		{"medium", report(High, Medium), ExitWarnings},
		{"warn", report(High, Warn), ExitWarnings},
		{"high", report(High, Low, High), ExitFailed},
		{"critical", report(High, Critical), ExitFailed},
		{"default fail-on is high", report(0, High), ExitFailed},
		{"medium at fail-on medium", report(Medium, Medium), ExitFailed},
		{"low at fail-on low", report(Low, Low), ExitFailed},
		{"warn at fail-on low", report(Low, Warn), ExitWarnings},
		{"high at fail-on critical", report(Critical, High), ExitWarnings},
		{"could not run", &Report{Error: "resolve x: no such name"}, ExitUnknown},
	}
	for _, tt := range tests {
		if got := tt.r.ExitCode(); got != tt.want {
			t.Errorf("%s: got exit %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestParseSeverity: --fail-on takes the four problem severities, any case.
func TestParseSeverity(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want Severity
		ok   bool
	}{
		{"low", Low, true}, {"MEDIUM", Medium, true}, {"high", High, true}, {"Critical", Critical, true},
		{"ok", 0, false}, {"info", 0, false}, {"warn", 0, false}, {"", 0, false},
	} {
		got, err := ParseSeverity(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("ParseSeverity(%q): got %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestParsePorts: --ports with and without kinds, and its mistakes.
func TestParsePorts(t *testing.T) {
	t.Parallel()
	got, err := ParsePorts("143, 1143/imap,10993/IMAPS,465/submissions")
	want := []Port{{143, ""}, {1143, IMAP}, {10993, IMAPS}, {465, SMTPS}}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	for in, msg := range map[string]string{
		"":             "want a number",
		"0":            "from 1 to 65535",
		"143/http":     `unknown kind "http"`,
		"143,143/imap": "listed twice",
		"imap":         "want a number",
	} {
		if _, err := ParsePorts(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParsePorts(%q): got %v, want an error saying %q", in, err, msg)
		}
	}
}

// goldenReport has one port of each shape: exposed, clean, closed, and a
// check that could not run.
func goldenReport() *Report {
	f := func(port int, k Kind, id string, sev Severity, seen, fix string) Finding {
		return Finding{Port: port, Service: k, ID: id, Severity: sev, Seen: seen, Fix: fix, TestSSL: testsslID(id)}
	}
	return &Report{
		Host: "mail.example.com", Address: "192.0.2.7", Name: "mail.example.com",
		Started:   time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC),
		Elapsed:   2345 * time.Millisecond,
		Throwaway: "mfcheck-0a1b2c3d", FailOn: High,
		Ports: []PortResult{
			{Port: 143, Kind: IMAP, How: "standard port", Answered: true, Findings: []Finding{
				f(143, IMAP, IDService, Info, `IMAP with STARTTLS (standard port), greeting "* OK Dovecot (Debian) ready."`, ""),
				f(143, IMAP, IDSoftware, Info, "the server names its software, without a version: Dovecot", ""),
				{Port: 143, Service: IMAP, ID: IDStartTLS, Severity: Critical, Shadowserver: true,
					Seen: `no STARTTLS (STARTTLS refused: "a BAD Unknown command."): every login on this port crosses the network in cleartext; this is what Shadowserver reports as an exposed IMAP server`,
					Fix:  "turn STARTTLS on with a certificate and refuse logins before it, or close this port and put mailfront in front (implicit TLS and STARTTLS, no login before TLS)"},
				f(143, IMAP, IDPlaintextLogin, Critical, `LOGIN with the throwaway user "mfcheck-0a1b2c3d" and a random password, before TLS: checked ("m2 NO [AUTHENTICATIONFAILED] Authentication failed."): passwords sent before TLS cross the network in cleartext and are checked; the answer took 2.0s, the server's failure delay`, plaintextFix),
			}},
			{Port: 993, Kind: IMAPS, How: "standard port", Answered: true, Findings: []Finding{
				f(993, IMAPS, IDImplicitTLS, OK, "TLS 1.2, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", ""),
				f(993, IMAPS, IDTLS10, High, "TLS 1.0 offered: RFC 8996 retired it; it is what an attacker downgrades clients to", "turn TLS 1.0 and 1.1 off (Dovecot: ssl_min_protocol = TLSv1.2), or put mailfront in front (TLS 1.2 and 1.3 only)"),
				f(993, IMAPS, IDTLS13, Low, "TLS 1.3 not offered: the server refused the handshake (TLS alert: protocol version not supported)", "offer TLS 1.3 (RFC 9325 section 3.1.1), or put mailfront in front"),
				f(993, IMAPS, IDCertExpiry, OK, "expires in 61 days (2025-05-01)", ""),
			}},
			{Port: 110, Kind: POP3, How: "standard port", Findings: []Finding{
				f(110, POP3, IDService, Info, "nothing listens (connection refused)", ""),
			}},
			{Port: 995, Kind: POP3S, How: "standard port", Findings: []Finding{
				f(995, POP3S, IDService, Warn, "POP3 over implicit TLS (standard port): no answer to a TLS handshake: no answer within 5s", "check what serves this port"),
			}},
		},
	}
}

// TestGolden pins the human table and the JSON, the output formats other
// tools and people read. go test ./audit -run TestGolden -update rewrites
// them.
func TestGolden(t *testing.T) {
	t.Parallel()
	r := goldenReport()
	for _, tt := range []struct {
		file   string
		render func(*bytes.Buffer) error
	}{
		{"report.txt", func(b *bytes.Buffer) error { return r.WriteText(b) }},
		{"report.json", func(b *bytes.Buffer) error { return r.WriteJSON(b) }},
	} {
		var got bytes.Buffer
		if err := tt.render(&got); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", tt.file)
		if *update {
			if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./audit -run TestGolden -update to write it)", err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: got\n%s\nwant\n%s", tt.file, got.String(), want)
		}
	}
}

// TestJSONRoundTrip: the JSON's findings read back as the report's, with
// severities as words and testssl.sh's ids where there are some.
func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	r := goldenReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		ExitCode int       `json:"exit_code"`
		Findings []Finding `json:"findings"`
		Summary  map[string]int
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Findings, r.Findings()) || got.ExitCode != ExitFailed || got.Summary["critical"] != 2 {
		t.Errorf("got %+v, want the report's findings, exit 2 and 2 critical", got)
	}
	if !strings.Contains(b.String(), `"testssl": "TLS1"`) || !strings.Contains(b.String(), `"severity": "critical"`) {
		t.Errorf("JSON lacks testssl.sh's id or the severity's word:\n%s", b.String())
	}
}

// TestReportOrder: a port's findings come in the documented order, every
// id has a place in it, and the ids are unique.
func TestReportOrder(t *testing.T) {
	t.Parallel()
	fs := []Finding{{ID: IDGuard}, {ID: IDCertChain}, {ID: IDService}, {ID: IDTLS13}, {ID: IDTLS10}}
	sortFindings(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID)
	}
	if want := []string{IDService, IDTLS10, IDTLS13, IDCertChain, IDGuard}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	ids := IDs()
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		t.Errorf("check ids are not unique: %v", ids)
	}
}
