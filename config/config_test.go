package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// certYAML writes a certificate pair and returns the tls section for it.
func certYAML(t *testing.T) string {
	t.Helper()
	cert, key := testpki.NewCA(t).WriteLeaf(t, t.TempDir(), "mail.example.com")
	return fmt.Sprintf("tls:\n  certificates:\n    - {cert_file: %s, key_file: %s}\n", cert, key)
}

const oneListener = `listeners:
  - {protocol: imap, address: ":993", tls: implicit, backend: "127.0.0.1:143"}
`

// TestZerosLeftAlone: Parse fills in no default but a listener's name, so
// that each default lives once, in the package that owns it.
func TestZerosLeftAlone(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte(certYAML(t) + oneListener))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Listeners[0].Name, "imap-implicit-993"; got != want {
		t.Errorf("listeners[0].name: got %q, want %q", got, want)
	}
	want := Config{TLS: TLS{Certificates: c.TLS.Certificates}, Listeners: c.Listeners}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got %+v, want everything but the certificates and the listener zero", *c)
	}
}

// TestReadmeReference checks that every key of the README's configuration
// reference exists in the schema: an example an operator copies must load.
func TestReadmeReference(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "## Configuration reference")
	if !ok {
		t.Fatal("README.md has no configuration reference")
	}
	_, block, _ := strings.Cut(rest, "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	dir := t.TempDir()
	cert, key := testpki.NewCA(t).WriteLeaf(t, dir, "mail.example.com")
	block = strings.ReplaceAll(block, "/etc/mailfront/fullchain.pem", cert)
	block = strings.ReplaceAll(block, "/etc/mailfront/privkey.pem", key)
	if _, err := Parse([]byte(block)); err != nil {
		t.Errorf("the README's example does not load:\n%v\n%s", err, block)
	}
}

func TestExampleConfigs(t *testing.T) {
	// deploy/mailfront.yaml names certbot's paths; only its schema is checked.
	data, err := os.ReadFile("../deploy/mailfront.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data)
	for _, e := range splitErrors(err) {
		if !strings.Contains(e, "cannot read") {
			t.Errorf("deploy/mailfront.yaml: %s", e)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	tls := certYAML(t)
	tests := []struct {
		name string
		yaml string
		want []string // every one must be reported, in one error
	}{
		{"empty file", "", []string{"config is empty"}},
		{"unknown key named", tls + oneListener + "limitz: {}\n", []string{"limitz: unknown key: did you mean limits? (line 6)"}},
		{"unknown nested key named", tls + oneListener + "limits: {line_lenght: 10}\n", []string{"limits.line_lenght: unknown key: did you mean line_length? (line 6)"}},
		{"unknown key far from any", tls + oneListener + "frobnicate: 1\n", []string{"frobnicate: unknown key: README.md's configuration reference lists every key (line 6)"}},
		{"tab", tls + "listeners:\n\t- {protocol: imap}\n", []string{"line 5: a tab in the indentation: YAML indents with spaces only"}},
		{"wrong shapes and types", tls + `listeners:
  protocol: imap
limits:
  idle: 30
  total: 3 minutes
  commands: many
  handshake: [1s]
shutdown: {drain: 1.5}
guard: {enabled: sometimes}
access: {allow: 10.0.0.0/8}
`, []string{
			"listeners: want a list (- item, or [a, b]), not a mapping (keys and values) (line 5)",
			"limits.idle: 30 has no unit: write a duration with its unit, such as 30s (seconds) or 30m (minutes) (line 7)",
			`limits.total: "3 minutes" is not a duration: write a number and a unit, such as 30s, 10m or 1h30m (line 8)`,
			`limits.commands: "many" is not a whole number (line 9)`,
			"limits.handshake: want a duration such as 30s or 10m, not a list (line 10)",
			"shutdown.drain: 1.5 has no unit",
			`guard.enabled: "sometimes" is not true or false (line 12)`,
			"access.allow: want a list (- item, or [a, b]), not a value (\"10.0.0.0/8\") (line 13)",
		}},
		{"syntax", tls + "listeners: [\n", []string{"line 4: did not find expected node content"}},
		{"no certificate source", oneListener, []string{"tls: no certificate source configured"}},
		{"missing files", "tls:\n  certificates:\n    - {cert_file: /nonexistent/c.pem}\n" + oneListener,
			[]string{"tls.certificates[0].cert_file: cannot read /nonexistent/c.pem", "tls.certificates[0].key_file: missing"}},
		{"no listener", tls, []string{"listeners: no listener configured"}},
		{"every listener problem at once", tls + `listeners:
  - {name: a, protocol: smtp, address: "993", tls: maybe, backend: "host"}
  - {name: a, protocol: pop3, address: ":995", tls: implicit, backend: "unix:relative.sock", max_connections: -1}
  - {protocol: pop3, address: ":995", tls: starttls, backend: "127.0.0.1:0"}
`, []string{
			`listeners[0].protocol: "smtp" is not imap or pop3`,
			`listeners[0].tls: "maybe" is not implicit or starttls`,
			`listeners[0].address: "993" is not host:port`,
			`listeners[0].backend: "host" is not host:port`,
			`listeners[1].name: "a" is also the name of listeners[0]`,
			`listeners[1].backend: "unix:relative.sock": a unix socket path must be absolute`,
			`listeners[1].max_connections: must not be negative`,
			`listeners[2].address: ":995" is also the address of listeners[1]`,
			`listeners[2].backend: "127.0.0.1:0" has no valid port`,
		}},
		{"limits", tls + oneListener + `limits:
  line_length: 100
  commands: -1
  idle: -1s
  imap_idle: 29m
  pop3_idle: 1m
`, []string{
			"limits.line_length: 100 is too short",
			"limits.commands: must not be negative: set a positive value, or leave it out (or 0) for the default",
			"limits.idle: must not be negative",
			"limits.imap_idle: 29m0s is below 30 minutes, the least RFC 9051 section 5.4 allows",
			"limits.pop3_idle: 1m0s is below 10 minutes, the least RFC 1939 section 3 allows",
		}},
		{"guard", tls + oneListener + `guard:
  ipv4_prefix: 7
  base_delay: 10s
  max_delay: 5s
  half_life: -1m
  failures_per_connection: -1
  block: {failures: 1001}
`, []string{
			"guard.ipv4_prefix: 7 is not between 8 and 32",
			"guard.max_delay: 5s is below base_delay 10s: raise max_delay or lower base_delay",
			"guard.half_life: must not be negative",
			"guard.failures_per_connection: must not be negative",
			"guard.block.failures: 1001 is over 1000",
		}},
		{"log and relay", tls + oneListener + "log: {format: xml, level: loud}\nrelay: {mode: fast}\n", []string{
			`log.format: "xml" is not text or json`,
			`log.level: "loud" is not debug, info, warn or error`,
			`relay.mode: "fast" is neither optimized nor standard`,
		}},
		{"client identity", tls + `listeners:
  - {protocol: imap, address: ":993", tls: implicit, backend: "127.0.0.1:143",
     proxy_protocol: {trusted: [10.0.0.0/33, 10.1.0.1/8, balancer], timeout: -1s}, client_address: proxy}
  - {protocol: imap, address: ":143", tls: starttls, backend: "192.0.2.5:143", client_address: loopback}
  - {protocol: pop3, address: ":110", tls: starttls, backend: "unix:/run/pop3.sock", client_address: loopback}
`, []string{
			`listeners[0].proxy_protocol.trusted[0]: "10.0.0.0/33" is not a CIDR`,
			`listeners[0].proxy_protocol.trusted[1]: "10.1.0.1/8" has host bits set: did you mean 10.0.0.0/8?`,
			`listeners[0].proxy_protocol.trusted[2]: "balancer" is not an address or a CIDR`,
			`listeners[0].proxy_protocol.timeout: must not be negative`,
			`listeners[0].client_address: "proxy" is not one of auto, id, proxy-v2, proxy-v1, loopback or none`,
			`listeners[1].client_address: loopback needs a backend on this host at an address in 127.0.0.0/8 (such as 127.0.0.1:143), not "192.0.2.5:143"`,
			`listeners[2].client_address: loopback needs a backend on this host`,
		}},
		{"capabilities", tls + `listeners:
  - {protocol: imap, address: ":993", tls: implicit, backend: "127.0.0.1:143",
     capabilities: {add: [IDLE, STARTTLS, "AUTH=PLAIN", "two words"], remove: [IDLE, id]}}
  - {protocol: pop3, address: ":995", tls: implicit, backend: "127.0.0.1:110",
     capabilities: {add: [TOP, UIDL, STLS, XCLIENT, EXPIRE, "SASL GSSAPI", "TOP 5"], remove: [PIPELINING, "EXPIRE 30"]}}
`, []string{
			`listeners[0].capabilities.add[1]: STARTTLS is mailfront's own to offer or withhold`,
			`listeners[0].capabilities.add[2]: AUTH=PLAIN is mailfront's own`,
			`listeners[0].capabilities.add[3]: "two words" is not an IMAP capability name`,
			`listeners[0].capabilities.remove[0]: "IDLE" is both added and removed: keep it in one list`,
			`listeners[0].capabilities.remove[1]: id is mailfront's own`,
			`listeners[1].capabilities.add[2]: "STLS" is not one mailfront can offer for a POP3 backend`,
			`listeners[1].capabilities.add[3]: XCLIENT can only be removed`,
			`listeners[1].capabilities.add[4]: "EXPIRE": EXPIRE takes one argument`,
			`listeners[1].capabilities.add[5]: "SASL GSSAPI": the SASL mechanism mailfront logs in with is PLAIN`,
			`listeners[1].capabilities.add[6]: "TOP 5": write TOP alone`,
			`listeners[1].capabilities.remove[1]: "EXPIRE 30": write EXPIRE alone`,
		}},
		{"two documents", tls + oneListener + "---\nlog: {}\n", []string{"a second YAML document (after ---): the configuration is one document"}},
		{"lines on validation problems", tls + "listeners:\n  - {protocol: smtp, address: \":993\", tls: implicit, backend: \"127.0.0.1:143\"}\n",
			[]string{`listeners[0].protocol: "smtp" is not imap or pop3 (line 5)`}},
	}
	goType := regexp.MustCompile(`config\.|time\.Duration|\[\]string|\bint\b|\*bool|!!`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if m := goType.FindString(err.Error()); m != "" {
				t.Errorf("got %q: a Go type or YAML tag (%q) in a message for people", err, m)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

// TestOffAndRFCMinimums: a negative value turns off the limits that can be
// off, and the post-login idle limits may be set to their RFCs' minimums.
func TestOffAndRFCMinimums(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(certYAML(t) + oneListener + `limits:
  max_connections: -1
  keepalive: -1s
  connections_per_network: -1
  handshakes_per_minute: -1
  imap_idle: 30m
  pop3_idle: 10m
guard:
  logins_in_flight: -1
  parallel_logins: -1
  block: {failures: -1}
  user: {failures: -1}
shutdown: {drain: -1s}
relay: {mode: standard}
`))
	if err != nil {
		t.Errorf("got %v, want these accepted", err)
	}
}

// TestMinVersion checks that the configuration may raise the TLS floor to
// 1.3 but never lower it (ARCHITECTURE.md invariant 3).
func TestMinVersion(t *testing.T) {
	cert := certYAML(t)
	body := strings.TrimPrefix(cert, "tls:\n")
	for _, tt := range []struct {
		v  string
		ok bool
	}{{"1.2", true}, {"1.3", true}, {"1.1", false}, {"1.0", false}, {"ssl3", false}, {"1.4", false}} {
		t.Run(tt.v, func(t *testing.T) {
			_, err := Parse([]byte(fmt.Sprintf("tls:\n  min_version: %q\n%s%s", tt.v, body, oneListener)))
			if tt.ok != (err == nil) {
				t.Errorf("min_version %s: got error %v, want ok=%v", tt.v, err, tt.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "tls.min_version") {
				t.Errorf("got %q, want the key named", err)
			}
		})
	}
}

func splitErrors(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("got %v, want a read error", err)
	}
}

// FuzzParse checks that no file, however broken, makes Parse panic or
// accept a configuration that fails validation.
func FuzzParse(f *testing.F) {
	f.Add([]byte(oneListener))
	f.Add([]byte("tls: {min_version: \"1.3\"}\n" + oneListener + "limits: {idle: 5s, line_length: 600}\n"))
	f.Add([]byte("listeners: [{protocol: pop3, address: \"[::1]:995\", tls: starttls, backend: \"unix:/run/pop3.sock\"}]\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("tls: {acme: {domains: [mail.example.com], email: a@b.c, challenges: {http: {address: \":80\"}}}}\n" + oneListener))
	f.Add([]byte("tls: {acme: {domains: [\"*.example.com\"], eab: {key_id: k, mac_key: bWFj}, challenges: {dns: {provider: rfc2136, server: \"ns:53\", tsig_key: k., tsig_secret: c2VjcmV0}}}}\n" + oneListener))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a configuration that Validate refuses: %v", verr)
			}
		}
	})
}

// TestClientIdentityAccepted: every client_address and a proxy_protocol
// load; trusting every address is allowed but warned about.
func TestClientIdentityAccepted(t *testing.T) {
	t.Parallel()
	tls := certYAML(t)
	for _, mode := range []string{"auto", "id", "proxy-v2", "proxy-v1", "loopback", "none"} {
		c, err := Parse([]byte(tls + `listeners:
  - {protocol: imap, address: ":993", tls: implicit, backend: "127.0.0.1:143", client_address: ` + mode + `,
     proxy_protocol: {trusted: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32"], timeout: 2s}}
`))
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if w := c.Warnings(); len(w) != 0 {
			t.Errorf("%s: warnings %q, want none", mode, w)
		}
	}
	c, err := Parse([]byte(tls + `listeners:
  - {protocol: imap, address: ":993", tls: implicit, backend: "127.0.0.1:143", proxy_protocol: {trusted: ["0.0.0.0/0"]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "listeners[0].proxy_protocol.trusted[0]: 0.0.0.0/0 trusts every address") {
		t.Errorf("warnings %q, want the /0 named", w)
	}
}

// TestExpiredCertificateWarned: validate warns about a certificate file
// that has expired, with the date.
func TestExpiredCertificateWarned(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	var files []string
	for _, tt := range []struct {
		name       string
		start, end time.Time
	}{
		{"old", time.Now().Add(-48 * time.Hour), time.Now().Add(-time.Hour)},
		{"soon", time.Now().Add(-time.Hour), time.Now().Add(3 * 24 * time.Hour)},
		{"fine", time.Now().Add(-time.Hour), time.Now().Add(90 * 24 * time.Hour)},
	} {
		c, err := ca.Issue(testpki.NewKey(t), tt.start, tt.end, tt.name+".example")
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := testpki.WritePair(dir, tt.name, c)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fmt.Sprintf("    - {cert_file: %s, key_file: %s}\n", cert, key))
	}
	c, err := Parse([]byte("tls:\n  certificates:\n" + strings.Join(files, "") + oneListener))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "tls.certificates[0]: ") || !strings.Contains(w[0], "expired at ") {
		t.Errorf("warnings %q: want the expired one alone", w)
	}
}
