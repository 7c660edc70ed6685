package tlsconf

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailfront/mailfront/acmedns"
	"github.com/mailfront/mailfront/internal/acmetest"
	"github.com/mailfront/mailfront/internal/logtest"
)

// TestMain lets the test binary be the dns-01 exec hook of
// TestACMEDNS01Exec: run with hookEnv set, it publishes or removes the
// record it is given with a TSIG-signed update, as an operator's hook
// would through their DNS host's API, and exits.
func TestMain(m *testing.M) {
	if addr := os.Getenv(hookEnv); addr != "" {
		os.Exit(runHook(addr, os.Args[len(os.Args)-3:]))
	}
	os.Exit(m.Run())
}

const hookEnv = "MAILFRONT_TEST_DNS_HOOK"

// runHook handles "present|cleanup <fqdn.> <value>" against the test DNS
// server at addr and appends the call to $MAILFRONT_TEST_DNS_HOOK_LOG.
func runHook(addr string, args []string) int {
	action, name, value := args[0], args[1], args[2]
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{value}}
	m := new(dns.Msg).SetUpdate(zone)
	switch action {
	case "present":
		m.Insert([]dns.RR{rr})
	case "cleanup":
		m.Remove([]dns.RR{rr})
	default:
		fmt.Fprintf(os.Stderr, "unknown action %q\n", action)
		return 2
	}
	m.SetTsig(tsigKey, dns.HmacSHA256, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", TsigSecret: map[string]string{tsigKey: tsigSecret}, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		fmt.Fprintf(os.Stderr, "update %s %s: %v %v\n", action, name, err, r)
		return 1
	}
	f, err := os.OpenFile(os.Getenv(hookEnv+"_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		fmt.Fprintln(f, action, name)
		f.Close()
	}
	return 0
}

// TestACMEDNS01Exec obtains a certificate through dns-01 with the exec
// provider: mailfront runs the hook to present and to clean up the record.
// It does not run in parallel: it passes the hook its settings in the
// environment.
func TestACMEDNS01Exec(t *testing.T) {
	e := newACMEEnv(t, acmetest.Options{})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(t.TempDir(), "calls")
	t.Setenv(hookEnv, e.dns.Addr())
	t.Setenv(hookEnv+"_LOG", calls)
	name := uniqueName("hook")
	a := e.acme(t, t.TempDir(), name)
	a.DNS = &acmedns.Exec{Command: []string{self}}
	s := startStore(t, Options{ACME: a, Log: slog.New(slog.DiscardHandler)})
	verified(t, s, name, e.ca.IssuerRoots())
	data, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	want := "present _acme-challenge." + name + ".\ncleanup _acme-challenge." + name + ".\n"
	if string(data) != want {
		t.Errorf("hook calls: got %q, want %q", data, want)
	}
	if got := e.dns.TXT("_acme-challenge." + name + "."); len(got) != 0 {
		t.Errorf("TXT records left behind: %q", got)
	}
}

// TestACMEEAB obtains a certificate from a CA that requires external
// account binding, and shows that without the binding it cannot.
func TestACMEEAB(t *testing.T) {
	t.Parallel()
	mac := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	e := newACMEEnv(t, acmetest.Options{EAB: map[string]string{"kid-1": mac}})

	name := uniqueName("eab")
	without := e.acme(t, t.TempDir(), name)
	without.HTTPAddress = e.httpAddress()
	logs := logtest.New(t, slog.LevelDebug)
	s, done, cancel := startInBackground(t, Options{ACME: without, Log: logs.Logger()})
	logs.Wait(1, `msg="certificates not obtained yet; retrying"`, "externalAccountRequired")
	cancel()
	<-done
	s.Close()

	with := e.acme(t, t.TempDir(), name)
	with.HTTPAddress = e.httpAddress()
	with.EABKeyID, with.EABMACKey = "kid-1", mac
	verified(t, startStore(t, Options{ACME: with, Log: slog.New(slog.DiscardHandler)}), name, e.ca.IssuerRoots())
}
