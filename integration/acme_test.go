//go:build integration

package integration

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestACMEHarness checks the servers the ACME tests rely on, without
// mailfront, so that a failure there points at the harness rather than at
// mailfront: named answers for the test zone, takes an RFC 2136 update
// signed with the test's TSIG key and refuses one signed with another, and
// Pebble serves its directory and issuing root (startPebble checks both).
func TestACMEHarness(t *testing.T) {
	ns := startNamed(t)
	ports := freePorts(t, 2)
	startPebble(t, ns.addr, ports[0], ports[1])

	r := ns.dig(t, "+short", "A", "anything.imap."+testZone+".")
	if got := strings.TrimSpace(string(r.stdout)); r.code != 0 || got != "127.0.0.1" {
		t.Fatalf("dig A anything.imap.%s: got %q (%s), want 127.0.0.1 from the wildcard", testZone, got, r)
	}

	name := "_acme-challenge.probe." + testZone + "."
	if r := ns.nsupdate(t, ns.secret, "update add "+name+" 60 TXT probe-value"); r.code != 0 {
		t.Fatalf("nsupdate with the test key: %s", r)
	}
	if got := ns.txt(t, name); len(got) != 1 || got[0] != `"probe-value"` {
		t.Fatalf("TXT %s after the update: got %q, want [\"probe-value\"]", name, got)
	}
	ns.log.wait(t, 0, regexpQuote(`updating zone '`+testZone+`/IN': adding an RR at '`+strings.TrimSuffix(name, ".")+`' TXT`), ns.exited)

	// Control: a key named the same with another secret is refused
	// (TSIG BADSIG), and the record is not added.
	other := "_acme-challenge.other." + testZone + "."
	if r := ns.nsupdate(t, "c2VjcmV0IHRoYXQgbmFtZWQgZG9lcyBub3Qga25vdyE=", "update add "+other+" 60 TXT forged"); r.code == 0 {
		t.Fatalf("nsupdate with a wrong secret: got exit 0, want a refusal\n%s", r)
	}
	if got := ns.txt(t, other); len(got) != 0 {
		t.Fatalf("TXT %s after a forged update: got %q, want nothing", other, got)
	}
	ns.log.wait(t, 0, regexpQuote("TSIG "+tsigKey+": tsig verify failure (BADSIG)"), ns.exited)

	if r := ns.nsupdate(t, ns.secret, "update delete "+name+" TXT"); r.code != 0 {
		t.Fatalf("nsupdate delete: %s", r)
	}
	if got := ns.txt(t, name); len(got) != 0 {
		t.Fatalf("TXT %s after the delete: got %q, want nothing", name, got)
	}
}

// regexpQuote matches s literally.
func regexpQuote(s string) *regexp.Regexp {
	return regexp.MustCompile(regexp.QuoteMeta(s))
}

// ACME names, all in testZone, all pointing at 127.0.0.1 through named's
// wildcard record.
const (
	imapName = "imap." + testZone
	popName  = "pop." + testZone
	wildName = "*." + testZone
	anyName  = "anything." + testZone // covered by wildName only
)

// acmeTimeout bounds mailfront's wait for its ACME certificates before it
// listens: with Pebble's sleeps off an order takes well under a second,
// but a dns-01 order waits for the record to show at the name server.
const acmeTimeout = 60 * time.Second

// TestACME runs mailfront with tls.acme and no certificate files against
// Pebble, once per challenge type: Pebble's validation authority resolves
// the names through named and checks http-01 and tls-alpn-01 at
// mailfront's challenge listeners, and dns-01 in the TXT records mailfront
// published in named (RFC 2136 with TSIG, or through an exec hook running
// nsupdate). Each case starts with empty storage, so each orders its
// certificates; mailfront must have them before it listens. Then curl and
// openssl s_client verify IMAPS, POP3S and STARTTLS against Pebble's
// issuing root, by name, and log in and fetch through Dovecot.
func TestACME(t *testing.T) {
	dv := startDovecot(t)
	ns := startNamed(t)
	ports := freePorts(t, 2)
	httpAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	alpnAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	pb := startPebble(t, ns.addr, ports[0], ports[1])
	hook, hookLog := writeDNSHook(t, ns)

	rfc2136 := fmt.Sprintf(`dns: {provider: rfc2136, server: "%s", tsig_key: "%s", tsig_secret: "%s", tsig_algorithm: hmac-sha256}`, ns.addr, tsigKey+".", ns.secret)
	tests := []struct {
		name       string
		challenges string // the body of tls.acme.challenges
		domains    []string
		dns        bool // the TXT records go through named
	}{
		{"http-01", `http: {address: "` + httpAddr + `"}`, []string{imapName, popName}, false},
		{"tls-alpn-01", `tls_alpn: {address: "` + alpnAddr + `"}`, []string{imapName, popName}, false},
		{"dns-01 rfc2136 with a wildcard", rfc2136, []string{imapName, popName, wildName}, true},
		{"dns-01 exec hook", `dns: {provider: exec, command: ["` + hook + `"]}`, []string{imapName, popName}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			nsMark, hookMark := ns.log.size(), hookLog.size()
			start := time.Now()
			mf := runMailfront(t, dv.backends(), dir, acmeYAML(pb, dir, tt.challenges, tt.domains...), acmeTimeout)
			t.Logf("mailfront listened %v after it started", time.Since(start).Round(time.Millisecond))
			mf.caFile, mf.pool, mf.serverName = pb.rootFile, pb.rootPool, imapName

			checkObtainedBeforeListening(t, mf, tt.domains)
			if tt.dns {
				// Every challenge record went into named, signed with the
				// key, and came out again once validated.
				for _, d := range tt.domains {
					rr := "_acme-challenge." + strings.TrimPrefix(d, "*.")
					ns.log.wait(t, nsMark, regexpQuote(`/key `+tsigKey+`: updating zone '`+testZone+`/IN': adding an RR at '`+rr+`' TXT`), ns.exited)
					ns.log.wait(t, nsMark, regexp.MustCompile(regexp.QuoteMeta(`/key `+tsigKey+`: updating zone '`+testZone+`/IN': deleting `)+`.* at '?`+regexp.QuoteMeta(rr)+`'? TXT`), ns.exited)
					if got := ns.txt(t, rr+"."); len(got) != 0 {
						t.Errorf("TXT %s after validation: got %q, want nothing (cleaned up)", rr, got)
					}
				}
			}
			if tt.name == "http-01" {
				// Pebble found mailfront's challenge listener by name,
				// through named.
				for _, d := range tt.domains {
					pb.log.wait(t, 0, regexpQuote("Attempting to validate w/ HTTP: http://"+d+":"+strconv.Itoa(pb.httpPort)+"/.well-known/acme-challenge/"), pb.exited)
				}
			}
			if strings.Contains(tt.challenges, "exec") {
				for _, d := range tt.domains {
					hookLog.wait(t, hookMark, regexpQuote("present _acme-challenge."+d+". "), nil)
					hookLog.wait(t, hookMark, regexpQuote("cleanup _acme-challenge."+d+". "), nil)
				}
			}
			checkIssuedBy(t, mf, pb, imapName, imapName)
			checkIssuedBy(t, mf, pb, popName, popName)
			checkACMEClients(t, mf, pb, tt.name == "http-01")
			if slices.Contains(tt.domains, wildName) {
				checkIssuedBy(t, mf, pb, anyName, wildName)
				checkWildcardClients(t, mf, pb)
			}
		})
	}

	// named refuses an update signed with the wrong secret: mailfront
	// says why, keeps trying, and does not listen without a certificate.
	t.Run("dns-01 refused update", func(t *testing.T) {
		dir := t.TempDir()
		nsMark := ns.log.size()
		wrong := strings.Replace(rfc2136, ns.secret, "c2VjcmV0IHRoYXQgbmFtZWQgZG9lcyBub3Qga25vdyE=", 1)
		mf := launchMailfront(t, dv.backends(), dir, acmeYAML(pb, dir, wrong, imapName), false)
		line := mf.log.wait(t, 0, regexp.MustCompile(`level=(ERROR|WARN) msg="certificate not obtained" name=`+regexp.QuoteMeta(imapName)+` .*BADSIG`), mf.exited)
		t.Logf("mailfront logged: %s", line)
		ns.log.wait(t, nsMark, regexpQuote("TSIG "+tsigKey+": tsig verify failure (BADSIG)"), ns.exited)
		if got := lines(mf.log.String(), regexp.MustCompile(`msg=listening `)); len(got) != 0 {
			t.Errorf("got %q, want no listener without a certificate", got)
		}
		if c, err := net.DialTimeout("tcp", mf.imaps, time.Second); err == nil {
			c.Close()
			t.Errorf("IMAPS %s accepted a connection, want none before the certificate", mf.imaps)
		}
	})
}

// acmeYAML is the body of a tls: section that obtains domains from Pebble
// with challenges, storing what it gets under dir.
func acmeYAML(pb *pebble, dir, challenges string, domains ...string) string {
	return fmt.Sprintf(`  acme:
    domains: ["%s"]
    email: postmaster@%s
    ca: "%s"
    ca_root: "%s"
    storage: "%s"
    challenges:
      %s`, strings.Join(domains, `", "`), testZone, pb.dirURL, pb.serverCA, filepath.Join(dir, "acme"), challenges)
}

// checkObtainedBeforeListening checks mailfront logged "certificate
// obtained" for every domain, and before its first "listening" line.
func checkObtainedBeforeListening(t *testing.T, mf *front, domains []string) {
	t.Helper()
	logs := mf.log.String()
	listening := strings.Index(logs, "msg=listening ")
	for _, d := range domains {
		re := regexp.MustCompile(`msg="certificate obtained" name="?` + regexp.QuoteMeta(d) + `"? not_after=\d{4}-\d\d-\d\dT`)
		loc := re.FindStringIndex(logs)
		if loc == nil {
			t.Errorf("no log line matching %q", re)
			continue
		}
		if loc[0] > listening {
			t.Errorf("mailfront listened before it had the certificate for %s", d)
		}
	}
}

// checkIssuedBy checks that a client sending serverName gets a
// certificate for want that verifies against Pebble's issuing root.
func checkIssuedBy(t *testing.T, mf *front, pb *pebble, serverName, want string) {
	t.Helper()
	leaf, inter, err := servedLeaf(mf, serverName)
	if err != nil {
		t.Fatalf("handshake with SNI %s: %v", serverName, err)
	}
	pool := x509.NewCertPool()
	for _, c := range inter {
		pool.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pb.rootPool, Intermediates: pool, DNSName: serverName}); err != nil {
		t.Errorf("certificate served for %s: %v", serverName, err)
	}
	if !slices.Equal(leaf.DNSNames, []string{want}) {
		t.Errorf("certificate served for %s: got names %q, want [%s]", serverName, leaf.DNSNames, want)
	}
	// This very Pebble issued it, in this run (it logs the serial in hex,
	// zero-padded).
	if issued := regexp.MustCompile(fmt.Sprintf("Issued certificate serial 0*%x ", leaf.SerialNumber)); !issued.MatchString(pb.log.String()) {
		t.Errorf("certificate served for %s: no line matching %q in Pebble's log", serverName, issued)
	}
}

// checkACMEClients has curl fetch through every listener and openssl
// s_client verify every listener, by name, against Pebble's issuing root.
// With control set it also checks that the CA of Pebble's own HTTPS
// certificate does not verify them, so the root is what verified.
func checkACMEClients(t *testing.T, mf *front, pb *pebble, control bool) {
	t.Helper()
	msgs := testMessages()
	curls := []struct {
		scheme, name, addr, path string
		args                     []string
		want                     []byte
	}{
		{"imaps", imapName, mf.imaps, "/INBOX;UID=2", nil, msgs[1]},
		{"imap", imapName, mf.imap, "/INBOX;UID=1", []string{"--ssl-reqd"}, msgs[0]},
		{"pop3s", popName, mf.pop3s, "/2", nil, msgs[1]},
		{"pop3", popName, mf.pop3, "/1", []string{"--ssl-reqd"}, msgs[0]},
	}
	for _, c := range curls {
		r := acmeCurl(t, pb.rootFile, c.scheme, c.name, c.addr, c.path, c.args...)
		if r.code != 0 || !bytes.Equal(r.stdout, c.want) {
			t.Errorf("curl %s://%s%s: got %s\nwant exit 0 and the %d bytes of the message", c.scheme, c.name, c.path, r, len(c.want))
		}
	}
	// s_client reads the greeting itself before STARTTLS, so what is
	// checked on every listener is the reply to the logout.
	sclients := []struct {
		addr, name, quit, reply string
		args                    []string
	}{
		{mf.imaps, imapName, imapQuit, "q OK ", nil},
		{mf.imap, imapName, imapQuit, "q OK ", []string{"-starttls", "imap"}},
		{mf.pop3s, popName, pop3Quit, "+OK ", nil},
		{mf.pop3, popName, pop3Quit, "+OK ", []string{"-starttls", "pop3"}},
	}
	for _, s := range sclients {
		r := acmeSClient(t, s.quit, s.addr, s.name, pb.rootFile, s.args...)
		if r.code != 0 || !strings.Contains(string(r.stderr), "Verification: OK") || !strings.Contains(string(r.stdout), s.reply) {
			t.Errorf("s_client %s as %s: got %s\nwant exit 0, Verification: OK and %q", s.addr, s.name, r, s.reply)
		}
	}
	if !control {
		return
	}
	if r := acmeCurl(t, pb.serverCA, "imaps", imapName, mf.imaps, "/"); r.code != 60 {
		t.Errorf("curl with the CA of Pebble's HTTPS instead of its issuing root: got %s\nwant exit 60 (peer verification failed)", r)
	}
	if r := acmeSClient(t, imapQuit, mf.imaps, "other."+testZone, pb.rootFile); r.code == 0 {
		t.Errorf("s_client verifying other.%s, a name mailfront has no certificate for: got exit 0, want a verification failure", testZone)
	}
}

// checkWildcardClients connects as a name only the wildcard covers.
func checkWildcardClients(t *testing.T, mf *front, pb *pebble) {
	t.Helper()
	if r := acmeCurl(t, pb.rootFile, "imaps", anyName, mf.imaps, "/INBOX;UID=1"); r.code != 0 || !bytes.Equal(r.stdout, testMessages()[0]) {
		t.Errorf("curl imaps://%s: got %s\nwant exit 0 and the message", anyName, r)
	}
	if r := acmeSClient(t, pop3Quit, mf.pop3s, anyName, pb.rootFile); r.code != 0 || !strings.Contains(string(r.stderr), "Verification: OK") {
		t.Errorf("s_client %s as %s: got %s\nwant exit 0 and Verification: OK", mf.pop3s, anyName, r)
	}
}

// acmeCurl runs curl for scheme://name:port/path, with name pinned to
// addr's 127.0.0.1 and only caFile trusted.
func acmeCurl(t *testing.T, caFile, scheme, name, addr, path string, args ...string) result {
	t.Helper()
	p := port(addr)
	all := append([]string{"-sS", "--max-time", "60", "--resolve", name + ":" + p + ":127.0.0.1",
		"--cacert", caFile, "-u", testUser + ":" + testPassword}, args...)
	all = append(all, scheme+"://"+name+":"+p+path)
	return runClient(t, nil, nil, tool(t, "curl", "curl"), all...)
}

// acmeSClient runs openssl s_client against addr as name, verifying the
// chain and the name against caFile, and types quit.
func acmeSClient(t *testing.T, quit, addr, name, caFile string, args ...string) result {
	t.Helper()
	all := append([]string{"s_client", "-brief", "-ign_eof", "-crlf", "-connect", addr,
		"-servername", name, "-verify_hostname", name, "-CAfile", caFile, "-verify_return_error"}, args...)
	return runClient(t, []byte(quit), nil, tool(t, "openssl", "openssl"), all...)
}

// writeDNSHook writes the exec provider's hook: a shell script that
// publishes or removes the TXT record with nsupdate and the test's key,
// and logs each call to a file.
func writeDNSHook(t *testing.T, ns *named) (string, logFile) {
	t.Helper()
	dir := t.TempDir()
	log := logFile{filepath.Join(dir, "hook.log")}
	host, p, _ := net.SplitHostPort(ns.addr)
	script := fmt.Sprintf(`#!/bin/sh
# mailfront's dns exec hook: hook present|cleanup <fqdn.> <value>
set -eu
echo "$*" >> %[1]s
case "$1" in
present) op=add ;;
cleanup) op=delete ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
printf 'server %[2]s %[3]s\nzone %[4]s.\nupdate %%s %%s 60 TXT "%%s"\nsend\n' "$op" "$2" "$3" |
	nsupdate -t 5 -y hmac-sha256:%[5]s:%[6]s
`, log.path, host, p, testZone, tsigKey, ns.secret)
	path := filepath.Join(dir, "dns-hook")
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log.path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, log
}
