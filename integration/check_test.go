//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// checkReport is what the tests read of `mailfront check --json`.
type checkReport struct {
	ExitCode  int            `json:"exit_code"`
	Error     string         `json:"error"`
	Throwaway string         `json:"throwaway_user"`
	Findings  []checkFinding `json:"findings"`
}

type checkFinding struct {
	Port         int    `json:"port"`
	Service      string `json:"service"`
	ID           string `json:"id"`
	Severity     string `json:"severity"`
	Seen         string `json:"seen"`
	Shadowserver bool   `json:"shadowserver"`
	TestSSL      string `json:"testssl"`
}

// at is one port's findings by id.
func (c checkReport) at(addr string) map[string]checkFinding {
	m := map[string]checkFinding{}
	for _, f := range c.Findings {
		if strconv.Itoa(f.Port) == port(addr) {
			m[f.ID] = f
		}
	}
	return m
}

// runCheck runs the binary's `check --json` with args and returns its
// report, checking that the JSON's exit code is the process's.
func runCheck(t *testing.T, args ...string) (checkReport, result) {
	t.Helper()
	begin := time.Now()
	r := runClient(t, nil, nil, mailfrontBin, append([]string{"check", "--json"}, args...)...)
	t.Logf("mailfront check %s: exit %d in %.1fs", strings.Join(args, " "), r.code, time.Since(begin).Seconds())
	var rep checkReport
	if err := json.Unmarshal(r.stdout, &rep); err != nil {
		t.Fatalf("mailfront check --json: %v\n%s", err, r)
	}
	if rep.ExitCode != r.code {
		t.Errorf("the JSON says exit %d, the process exited %d", rep.ExitCode, r.code)
	}
	return rep, r
}

// checkHuman runs the same check as a table, for the failure message.
func checkHuman(t *testing.T, args ...string) string {
	t.Helper()
	return string(runClient(t, nil, nil, mailfrontBin, append([]string{"check"}, args...)...).stdout)
}

// wantCheck compares a port's findings with want (id: severity) and fails
// on any other problem or warning, printing the human report.
func wantCheck(t *testing.T, rep checkReport, addr string, want map[string]string, args []string) {
	t.Helper()
	got := rep.at(addr)
	bad := false
	for id, sev := range want {
		if got[id].Severity != sev {
			t.Errorf("port %s %s: got %q (%s), want %s", port(addr), id, got[id].Severity, got[id].Seen, sev)
			bad = true
		}
	}
	for id, f := range got {
		if _, listed := want[id]; !listed && f.Severity != "ok" && f.Severity != "info" {
			t.Errorf("port %s %s: got %s (%s), want ok or info", port(addr), id, f.Severity, f.Seen)
			bad = true
		}
	}
	if bad {
		t.Logf("mailfront check %s:\n%s", strings.Join(args, " "), checkHuman(t, args...))
	}
}

// TestCheckBareDovecot: Dovecot with no TLS at all and plaintext logins
// allowed is the exposed server Shadowserver reports: critical on both
// plaintext ports, the throwaway login checked, exit 2. The ports are
// given without their kind: check recognises them by their greetings.
func TestCheckBareDovecot(t *testing.T) {
	dv := startDovecot(t)
	args := []string{"--ports", port(dv.imapAddr) + "," + port(dv.pop3Addr), "127.0.0.1"}
	rep, r := runCheck(t, args...)
	if r.code != 2 {
		t.Errorf("got exit %d, want 2", r.code)
	}
	for _, addr := range []string{dv.imapAddr, dv.pop3Addr} {
		wantCheck(t, rep, addr, map[string]string{"starttls": "critical", "login-before-tls": "high", "plaintext-login": "critical"}, args)
		if f := rep.at(addr)["starttls"]; !f.Shadowserver {
			t.Errorf("port %s: starttls is not marked as what Shadowserver reports: %+v", port(addr), f)
		}
	}
	// Dovecot checked the throwaway user's password, sent in cleartext.
	dv.log.wait(t, 0, regexp.MustCompile(`passwd-file\(`+regexp.QuoteMeta(rep.Throwaway)+`,`), dv.exited)
}

// TestCheckDovecotOwnTLS: Dovecot with its own TLS but
// disable_plaintext_auth = no offers STARTTLS and still checks passwords
// sent before it: critical. Its TLS ports pass, and testssl.sh sees the
// same TLS versions and certificate verdicts.
func TestCheckDovecotOwnTLS(t *testing.T) {
	dv := startDovecotWith(t, dovecotOptions{TLS: true})
	args := []string{"--ports", port(dv.imapAddr) + "/imap," + port(dv.pop3Addr) + "/pop3," + port(dv.imapsAddr) + "/imaps," + port(dv.pop3sAddr) + "/pop3s",
		"--ca", dv.caFile, "127.0.0.1"}
	rep, r := runCheck(t, args...)
	if r.code != 2 {
		t.Errorf("got exit %d, want 2", r.code)
	}
	// Dovecot accepts CBC suites in TLS 1.2 (its default ssl_cipher_list).
	plain := map[string]string{"login-before-tls": "high", "plaintext-login": "critical", "starttls": "ok", "starttls-injection": "ok", "cipher-cbc": "low", "alpaca": "low"}
	implicit := map[string]string{"implicit-tls": "ok", "tls-1.0": "ok", "tls-1.2": "ok", "tls-1.3": "ok", "cert-chain": "ok", "cipher-cbc": "low", "alpaca": "low"}
	wantCheck(t, rep, dv.imapAddr, plain, args)
	wantCheck(t, rep, dv.pop3Addr, plain, args)
	wantCheck(t, rep, dv.imapsAddr, implicit, args)
	wantCheck(t, rep, dv.pop3sAddr, implicit, args)
	agreeWithTestssl(t, rep, dv.imapsAddr, "127.0.0.1", "", dv.caFile)
	agreeWithTestssl(t, rep, dv.imapAddr, "127.0.0.1", "imap", dv.caFile)
}

// TestCheckMailfrontFront: the same plaintext Dovecot behind mailfront is
// clean, --probe-guard included (mailfront's guard delays the first
// wrong login), exit 0; testssl.sh agrees on its TLS, and both call the
// test CA's chain untrusted when not told of it.
func TestCheckMailfrontFront(t *testing.T) {
	e := setup(t)
	ports := port(e.mf.imaps) + "/imaps," + port(e.mf.imap) + "," + port(e.mf.pop3s) + "/pop3s," + port(e.mf.pop3)
	args := []string{"--ports", ports, "--ca", e.mf.caFile, "--sni", "localhost", "--probe-guard", "--timeout", "10s", "127.0.0.1"}
	rep, r := runCheck(t, args...)
	if r.code != 0 {
		t.Errorf("got exit %d, want 0", r.code)
	}
	for _, addr := range []string{e.mf.imaps, e.mf.imap, e.mf.pop3s, e.mf.pop3} {
		wantCheck(t, rep, addr, map[string]string{"cert-chain": "ok", "cert-name": "ok"}, args)
	}
	for _, addr := range []string{e.mf.imaps, e.mf.pop3s} {
		if g := rep.at(addr)["guard"]; g.Severity != "ok" {
			t.Errorf("port %s guard: got %q (%s), want ok", port(addr), g.Severity, g.Seen)
		}
	}
	agreeWithTestssl(t, rep, e.mf.pop3, "localhost", "pop3", e.mf.caFile)
	agreeWithTestssl(t, rep, e.mf.imaps, "localhost", "", e.mf.caFile)

	untrusted, _ := runCheck(t, "--ports", port(e.mf.imaps)+"/imaps", "--sni", "localhost", "127.0.0.1")
	if f := untrusted.at(e.mf.imaps)["cert-chain"]; f.Severity != "critical" {
		t.Errorf("without --ca: cert-chain got %q (%s), want critical", f.Severity, f.Seen)
	}
	agreeWithTestssl(t, untrusted, e.mf.imaps, "localhost", "", "")
}

// TestCheckOpenSSLLegacy: openssl s_server offering only TLS 1.0 with an
// expired certificate for another name, as old appliances do. It sends no
// greeting, so the protocol checks cannot run, but every TLS check does;
// testssl.sh finds the same.
func TestCheckOpenSSLLegacy(t *testing.T) {
	openssl := tool(t, "openssl", "openssl")
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(key, time.Now().Add(-50*time.Minute), time.Now().Add(-10*time.Minute), "mail.other.test")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := testpki.WritePair(dir, "legacy", leaf)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(freePorts(t, 1)[0])
	exited := make(chan struct{})
	log := filepath.Join(dir, "s_server.log")
	startGroup(t, "openssl s_server", log, exited, func(*exec.Cmd) {
		if t.Failed() {
			t.Logf("openssl s_server's output:\n%s", logFile{log})
		}
	}, openssl, "s_server", "-accept", addr, "-cert", certFile, "-key", keyFile, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-www")
	waitPort(t, addr, exited)

	args := []string{"--ports", port(addr) + "/imaps", "--ca", caFile, "--timeout", "2s", "127.0.0.1"}
	rep, r := runCheck(t, args...)
	if r.code != 2 {
		t.Errorf("got exit %d, want 2", r.code)
	}
	wantCheck(t, rep, addr, map[string]string{
		"service": "warn", "implicit-tls": "ok",
		"tls-1.0": "high", "tls-1.1": "ok", "tls-1.2": "high", "tls-1.3": "low",
		"cert-chain": "ok", "cert-expiry": "critical", "cert-name": "high", "alpaca": "low",
	}, args)
	agreeWithTestssl(t, rep, addr, "127.0.0.1", "", caFile)
}

// testsslFinding is one finding of testssl.sh's flat JSON (--jsonfile).
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// runTestssl runs Debian's testssl.sh against host:port of addr (at
// 127.0.0.1), only its protocol (-p) and server defaults and certificate
// (-S) checks, with STARTTLS for starttls when set, trusting caFile as
// well as its own roots when set.
func runTestssl(t *testing.T, addr, host, starttls, caFile string) map[string]testsslFinding {
	t.Helper()
	bin := tool(t, "testssl", "testssl.sh")
	out := filepath.Join(t.TempDir(), "testssl.json")
	args := []string{"--openssl=/usr/bin/openssl", "--jsonfile=" + out, "--warnings=off", "--quiet", "--color=0", "--ip=127.0.0.1", "-p", "-S"}
	if starttls != "" {
		args = append(args, "--starttls="+starttls)
	}
	if caFile != "" {
		args = append(args, "--add-ca="+caFile)
	}
	args = append(args, net.JoinHostPort(host, port(addr)))
	begin := time.Now()
	r := runClient(t, nil, nil, bin, args...)
	t.Logf("testssl %s: exit %d in %.1fs", strings.Join(args, " "), r.code, time.Since(begin).Seconds())
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("testssl.sh wrote no JSON: %v\n%s", err, r)
	}
	var list []testsslFinding
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("testssl.sh's JSON: %v\n%s", err, b)
	}
	found := map[string]testsslFinding{}
	for _, f := range list {
		found[f.ID] = f
	}
	return found
}

// ourOffered reads a tls-1.x finding: "TLS 1.2 offered", "TLS 1.0 not
// offered", "neither TLS 1.2 nor TLS 1.3 offered", "TLS 1.2 not offered,
// TLS 1.3 only".
func ourOffered(seen string) bool {
	return strings.Contains(seen, " offered") && !strings.Contains(seen, "not offered") && !strings.HasPrefix(seen, "neither")
}

// agreeWithTestssl runs testssl.sh on the target mailfront check judged
// in rep, and compares, through the testssl.sh ids the JSON names, the
// TLS versions offered and the certificate verdicts: expired, name
// match, chain of trust. testssl.sh folds expiry into its chain verdict
// ("failed (expired)"); mailfront check keeps the two apart, so an
// expired certificate whose chain verifies at its last valid moment is
// the one difference allowed.
func agreeWithTestssl(t *testing.T, rep checkReport, addr, host, starttls, caFile string) {
	t.Helper()
	theirs := runTestssl(t, addr, host, starttls, caFile)
	ours := rep.at(addr)
	compare := func(what string, f checkFinding, oursSays, theirsSays bool, allowed bool) {
		t.Helper()
		th := theirs[f.TestSSL]
		t.Logf("%s %s: mailfront check %s %q; testssl.sh %s %s %q", port(addr), what, f.Severity, f.Seen, f.TestSSL, th.Severity, th.Finding)
		if oursSays != theirsSays && !allowed {
			t.Errorf("%s %s: mailfront check says %v (%s: %q), testssl.sh says %v (%s: %q)", port(addr), what, oursSays, f.ID, f.Seen, theirsSays, f.TestSSL, th.Finding)
		}
	}
	for _, id := range []string{"tls-1.0", "tls-1.1", "tls-1.2", "tls-1.3"} {
		f := ours[id]
		if f.TestSSL == "" || theirs[f.TestSSL].ID == "" {
			t.Errorf("%s %s: no testssl.sh id in mailfront check's JSON, or no such finding from testssl.sh (%+v)", port(addr), id, f)
			continue
		}
		compare(id+" offered", f, ourOffered(f.Seen), strings.HasPrefix(theirs[f.TestSSL].Finding, "offered"), false)
	}
	expiry := ours["cert-expiry"]
	expired := strings.HasPrefix(expiry.Seen, "expired")
	compare("certificate expired", expiry, expired, theirs[expiry.TestSSL].Finding == "expired", false)
	name := ours["cert-name"]
	compare("certificate name matches", name, name.Severity == "ok", strings.HasPrefix(theirs[name.TestSSL].Finding, "Ok"), false)
	chain := ours["cert-chain"]
	theirChain := theirs[chain.TestSSL].Finding
	compare("certificate chain trusted", chain, chain.Severity == "ok", strings.HasPrefix(theirChain, "passed"),
		expired && strings.Contains(theirChain, "expired"))
}

// TestCheckCourier: Courier as Debian 12 ships it (startShipped), a
// server no one here configured to pass. mailfront check must say what
// an operator of it needs to hear, and each verdict is shown true here:
//   - both plaintext ports offer STARTTLS/STLS yet take a login before
//     it, and the throwaway login is checked: Courier's own log says
//     LOGIN FAILED for it;
//   - Courier's POP3 (courier-pop 1.0.16) runs a command sent with STLS
//     in the same segment, inside TLS (CVE-2021-38084, fixed in 1.1.5),
//     and its IMAP does not: a raw client injecting CAPA or CAPABILITY
//     shows both;
//   - every port serves the postinst's certificate: self-signed, and
//     naming localhost in its common name only, which RFC 6125 clients
//     refuse; TLS 1.0 and 1.1 are on (GnuTLS's defaults), and so are
//     TLS 1.2 suites without forward secrecy or AEAD.
//
// testssl.sh agrees on the TLS versions and certificate verdicts, over
// implicit TLS (IMAPS) and after STLS (POP3).
func TestCheckCourier(t *testing.T) {
	c := startCourier(t)
	s := c.startShipped(t)
	args := []string{"--ports", port(s.imap) + "," + port(s.imaps) + "," + port(s.pop3) + "," + port(s.pop3s), "--sni", "localhost", "127.0.0.1"}
	mark := c.log.size()
	rep, r := runCheck(t, args...)
	if r.code != 2 {
		t.Errorf("got exit %d, want 2", r.code)
	}
	tlsFindings := map[string]string{
		"tls-1.0": "high", "tls-1.1": "high", "tls-1.2": "ok", "tls-1.3": "ok",
		"cipher-cbc": "low", "cipher-no-fs": "medium", "alpaca": "low",
		"cert-chain": "critical", "cert-name": "high", "cert-name-no-sni": "ok", "cert-expiry": "ok",
	}
	plain := map[string]string{"starttls": "ok", "login-before-tls": "high", "plaintext-login": "critical", "starttls-injection": "ok"}
	with := func(more ...map[string]string) map[string]string {
		out := maps.Clone(tlsFindings)
		for _, m := range more {
			maps.Copy(out, m)
		}
		return out
	}
	implicit := map[string]string{"implicit-tls": "ok"}
	wantCheck(t, rep, s.imap, with(plain), args)
	wantCheck(t, rep, s.pop3, with(plain, map[string]string{"starttls-injection": "critical"}), args)
	wantCheck(t, rep, s.imaps, with(implicit), args)
	wantCheck(t, rep, s.pop3s, with(implicit), args)
	for _, addr := range []string{s.imap, s.imaps, s.pop3, s.pop3s} {
		f := rep.at(addr)
		if !strings.Contains(f["cert-chain"].Seen, "self-signed") || !strings.Contains(f["cert-name"].Seen, "only in its subject's common name") {
			t.Errorf("port %s: cert-chain %q, cert-name %q; want them to say self-signed, and the name in the common name only", port(addr), f["cert-chain"].Seen, f["cert-name"].Seen)
		}
	}

	// The throwaway logins reached Courier's password check.
	for _, server := range []string{"imapd-shipped", "pop3d-shipped"} {
		c.log.wait(t, mark, regexp.MustCompile(server+`(\[\d+\])?: (INFO: )?LOGIN FAILED, user=`+regexp.QuoteMeta(rep.Throwaway)+`,`), c.procs[server].exited)
	}
	// The injection verdicts, shown by a client of the test's own.
	for _, tt := range []struct {
		addr, proto string
		want        bool
	}{{s.pop3, "pop3", true}, {s.imap, "imap", false}} {
		if got := injected(t, tt.addr, tt.proto); got != tt.want {
			t.Errorf("%s on %s: a command sent with the upgrade answered inside TLS: %v, want %v", tt.proto, port(tt.addr), got, tt.want)
		}
	}

	// One port of each kind: the four serve the same TLS (about 15 s a
	// testssl.sh run).
	agreeWithTestssl(t, rep, s.imaps, "localhost", "", "")
	agreeWithTestssl(t, rep, s.pop3, "localhost", "pop3", "")
}

// injected sends STARTTLS (IMAP) or STLS (POP3) and a capability command
// in one write, completes the handshake, and logs out: it says whether
// the capability command was answered inside TLS (the STARTTLS command
// injection of CVE-2011-0411). Everything the server says inside TLS is
// read until it closes, so no timeout decides.
func injected(t *testing.T, addr, proto string) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, clientTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(clientTimeout))
	br := bufio.NewReader(conn)
	readLine := func() string {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s %s: %v after %q", proto, addr, err, l)
		}
		return l
	}
	readLine() // the greeting
	upgrade, inject, done, logout := "STLS\r\n", "CAPA\r\n", "+OK", "QUIT\r\n"
	if proto == "imap" {
		upgrade, inject, done, logout = "a STARTTLS\r\n", "b CAPABILITY\r\n", "a OK", "c LOGOUT\r\n"
	}
	if _, err := conn.Write([]byte(upgrade + inject)); err != nil {
		t.Fatal(err)
	}
	for l := readLine(); !strings.HasPrefix(l, done); l = readLine() {
		if strings.HasPrefix(l, "-ERR") || strings.HasPrefix(l, "a NO") || strings.HasPrefix(l, "a BAD") {
			t.Fatalf("%s %s: the upgrade was refused: %q", proto, addr, l)
		}
	}
	if br.Buffered() > 0 {
		t.Fatalf("%s %s: the injected command was answered before TLS", proto, addr)
	}
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if _, err := tc.Write([]byte(logout)); err != nil {
		t.Fatalf("%s %s: TLS: %v", proto, addr, err)
	}
	inside, _ := io.ReadAll(tc)
	t.Logf("%s %s: inside TLS after %q: %q", proto, addr, logout, inside)
	if proto == "imap" {
		return bytes.Contains(inside, []byte("\r\nb OK")) || bytes.HasPrefix(inside, []byte("* CAPABILITY"))
	}
	// CAPA's answer is a list ending in a line of its own: ".".
	return bytes.Contains(inside, []byte("\r\n.\r\n"))
}
