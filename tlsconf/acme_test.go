package tlsconf

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/acmedns"
	"github.com/mailfront/mailfront/internal/acmetest"
	"github.com/mailfront/mailfront/internal/dnstest"
	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/internal/testpki"
)

const (
	zone       = "mailfront.test."
	tsigKey    = "mailfront-key."
	tsigSecret = "bWFpbGZyb250LXRlc3QtdHNpZy1zZWNyZXQtMzItYnl0ZXMhIQ=="
	obtainWait = 60 * time.Second
)

// The ACME tests run in parallel, each with a CA and a DNS server of its
// own, and order names no other test uses (uniqueName). TestACMEDNS01Exec
// alone runs on its own, for it sets environment variables.

// nameSeq numbers the names the ACME tests order, process-wide.
var nameSeq atomic.Int64

// uniqueName is "label-N.mailfront.test" with an N no other test in the
// process has had: certmagic keeps active challenges, renewal jobs and
// renewal backoff per name for the whole process, and the tests run in
// parallel and, under go test -count, again in the same process.
func uniqueName(label string) string {
	return fmt.Sprintf("%s-%d.mailfront.test", label, nameSeq.Add(1))
}

// acmeEnv is a real ACME CA (Pebble, in-process) whose validation
// authority resolves names through an in-process authoritative DNS server
// for mailfront.test that accepts TSIG-signed updates.
type acmeEnv struct {
	dns *dnstest.Server
	ca  *acmetest.CA
}

func newACMEEnv(t *testing.T, opts acmetest.Options) *acmeEnv {
	t.Helper()
	d := dnstest.Start(t, dnstest.Options{Zone: zone, KeyName: tsigKey, Secret: tsigSecret})
	opts.Resolver = d.Addr()
	return &acmeEnv{dns: d, ca: acmetest.Start(t, opts)}
}

// acme is mailfront's ACME setup for this CA, with no challenge enabled.
func (e *acmeEnv) acme(t *testing.T, storage string, domains ...string) *ACME {
	return &ACME{
		Domains:            domains,
		Email:              "postmaster@mailfront.test",
		CA:                 e.ca.DirectoryURL(),
		CARoots:            poolOf(t, e.ca.ServerRootPEM()),
		Storage:            storage,
		RenewCheckInterval: 250 * time.Millisecond,
		RetryMin:           50 * time.Millisecond,
		RetryMax:           200 * time.Millisecond,
	}
}

func (e *acmeEnv) httpAddress() string { return fmt.Sprintf("127.0.0.1:%d", e.ca.HTTPPort()) }
func (e *acmeEnv) alpnAddress() string { return fmt.Sprintf("127.0.0.1:%d", e.ca.TLSPort()) }

func (e *acmeEnv) rfc2136() *acmedns.RFC2136 {
	return &acmedns.RFC2136{Server: e.dns.Addr(), KeyName: tsigKey, Secret: tsigSecret}
}

// startStore builds and starts a store, failing the test if the
// certificates are not there within obtainWait.
func startStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, done, _ := startInBackground(t, opts)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return s
}

// startInBackground builds a store and runs Start in a goroutine, for
// tests that watch what it does meanwhile: done delivers Start's result,
// cancel ends its wait. Start gives up after obtainWait anyway.
func startInBackground(t *testing.T, opts Options) (s *Store, done <-chan error, cancel context.CancelFunc) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx, cancel := context.WithTimeout(context.Background(), obtainWait)
	t.Cleanup(cancel)
	result := make(chan error, 1)
	go func() { result <- s.Start(ctx) }()
	return s, result, cancel
}

// TestACMEHTTP01 obtains a certificate through http-01 from a real ACME
// CA, serves it, verifies it against the CA's root, and shows that no SNI
// a client sends (unknown names in and out of the zone, none at all)
// makes mailfront order anything: those clients get the default
// certificate.
func TestACMEHTTP01(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	name := uniqueName("http01")
	a := e.acme(t, t.TempDir(), name)
	a.HTTPAddress = e.httpAddress()
	logs := logtest.New(t, slog.LevelDebug)
	s := startStore(t, Options{ACME: a, Log: logs.Logger()})

	verified(t, s, name, e.ca.IssuerRoots())
	logs.Wait(1, `msg="certificate obtained"`, "name="+name, "not_after=20")
	if got := e.ca.Orders(); got != 1 {
		t.Errorf("got %d orders, want 1", got)
	}
	for _, sni := range []string{"random-7f3a.mailfront.test", "mail.evil.example", strings.ToUpper(name) + ".", ""} {
		leaf := verified(t, s, sni, nil)
		if got := strings.Join(leaf.DNSNames, ","); got != name {
			t.Errorf("SNI %q: got %s, want the default %s", sni, got, name)
		}
	}
	if got := e.ca.Orders(); got != 1 {
		t.Errorf("after handshakes with unknown names: got %d orders, want still 1", got)
	}
	if got := logs.Count("component=certmagic"); got == 0 {
		t.Error("no certmagic log line reached mailfront's logger")
	}
}

// TestACMETLSALPN01 obtains a certificate through tls-alpn-01 (RFC 8737).
func TestACMETLSALPN01(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	name := uniqueName("alpn")
	a := e.acme(t, t.TempDir(), name)
	a.TLSALPNAddress = e.alpnAddress()
	s := startStore(t, Options{ACME: a, Log: slog.New(slog.DiscardHandler)})
	verified(t, s, name, e.ca.IssuerRoots())
}

// TestACMEDNS01Wildcard obtains a wildcard and its base name through
// dns-01 with RFC 2136 updates the DNS server accepts only when signed
// with the TSIG key; any name under the wildcard then verifies.
func TestACMEDNS01Wildcard(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	base := uniqueName("wild")
	a := e.acme(t, t.TempDir(), "*."+base, base)
	a.DNS = e.rfc2136()
	s := startStore(t, Options{ACME: a, Log: slog.New(slog.DiscardHandler)})
	for _, sni := range []string{"imap." + base, "anything." + base, base} {
		verified(t, s, sni, e.ca.IssuerRoots())
	}
	if got := e.dns.Updates(); got < 4 {
		t.Errorf("got %d DNS updates, want at least 4 (present and clean up, two names)", got)
	}
	if got := e.dns.TXT("_acme-challenge." + base + "."); len(got) != 0 {
		t.Errorf("TXT records left behind: %q", got)
	}
}

// TestACMEFilesWin serves file and ACME certificates side by side: a file
// wins for the names it holds, ACME serves the others, and the first file
// is the default.
func TestACMEFilesWin(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	pki := testpki.NewCA(t)
	dir := t.TempDir()
	defCert, defKey := pki.WriteLeaf(t, dir, "files.mailfront.test")
	imap, pop := uniqueName("imap"), uniqueName("pop")
	popCert, popKey := pki.WriteLeaf(t, dir, pop)
	a := e.acme(t, t.TempDir(), imap, pop)
	a.HTTPAddress = e.httpAddress()
	s := startStore(t, Options{ACME: a, Certificates: []CertFile{{defCert, defKey}, {popCert, popKey}}, Log: slog.New(slog.DiscardHandler)})

	verified(t, s, imap, e.ca.IssuerRoots())
	verified(t, s, pop, pki.Pool())
	verified(t, s, "files.mailfront.test", pki.Pool())
	if leaf := verified(t, s, "", nil); leaf.DNSNames[0] != "files.mailfront.test" {
		t.Errorf("no SNI: got %s, want the first file's certificate", leaf.DNSNames[0])
	}
	names := strings.Join(s.Names(), " ")
	if !strings.Contains(names, imap) || !strings.Contains(names, "files.mailfront.test") {
		t.Errorf("Names: got %q, want file and ACME names", names)
	}
}

// TestACMECADownAtStart starts with the CA unreachable: Start keeps
// retrying and logging, and returns once the CA is back and the
// certificate is in service. No listener would have opened before.
func TestACMECADownAtStart(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	e.ca.SetDown(true)
	name := uniqueName("down")
	a := e.acme(t, t.TempDir(), name)
	a.HTTPAddress = e.httpAddress()
	logs := logtest.New(t, slog.LevelDebug)
	s, done, _ := startInBackground(t, Options{ACME: a, Log: logs.Logger()})
	logs.Wait(2, "level=ERROR", `msg="certificates not obtained yet; retrying"`)
	select {
	case err := <-done:
		t.Fatalf("Start returned while the CA was down: %v", err)
	default:
	}
	e.ca.SetDown(false)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	verified(t, s, name, e.ca.IssuerRoots())
}

// TestACMEStartCancelled checks that a Start waiting on a CA that never
// comes back ends when its context does.
func TestACMEStartCancelled(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	e.ca.SetDown(true)
	a := e.acme(t, t.TempDir(), uniqueName("cancelled"))
	a.HTTPAddress = e.httpAddress()
	logs := logtest.New(t, slog.LevelDebug)
	_, done, cancel := startInBackground(t, Options{ACME: a, Log: logs.Logger()})
	logs.Wait(1, `msg="certificates not obtained yet; retrying"`)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("got nil, want the cancellation")
	}
	// The challenge listener is closed again.
	if ln, err := net.Listen("tcp", a.HTTPAddress); err != nil {
		t.Errorf("http-01 address still taken after a cancelled Start: %v", err)
	} else {
		ln.Close()
	}
}

// TestACMESharedStorage starts two instances on one storage directory at
// once, as behind a load balancer: one order is placed, both serve the
// certificate. The second instance's http-01 listener is not the one the
// CA connects to, so whichever instance orders, the challenge is answered
// through the shared storage.
func TestACMESharedStorage(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	storage, name := t.TempDir(), uniqueName("shared")
	var stores [2]*Store
	var wg sync.WaitGroup
	for i := range stores {
		a := e.acme(t, storage, name)
		a.HTTPAddress = e.httpAddress()
		if i == 1 {
			a.HTTPAddress = "127.0.0.1:0"
		}
		s, err := New(Options{ACME: a, Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		stores[i] = s
	}
	errs := make([]error, 2)
	for i, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), obtainWait)
			defer cancel()
			errs[i] = s.Start(ctx)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	a := verified(t, stores[0], name, e.ca.IssuerRoots())
	b := verified(t, stores[1], name, e.ca.IssuerRoots())
	if serialOf(a) != serialOf(b) {
		t.Errorf("the instances serve different certificates: %s and %s", serialOf(a), serialOf(b))
	}
	if got := e.ca.Orders(); got != 1 {
		t.Errorf("got %d orders, want 1", got)
	}
}

// TestACMERenewal renews a short-lived certificate in the background: new
// handshakes get the new certificate, logged as renewed with its expiry.
func TestACMERenewal(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{Validity: 10 * time.Second})
	name := uniqueName("renew")
	a := e.acme(t, t.TempDir(), name)
	a.HTTPAddress = e.httpAddress()
	logs := logtest.New(t, slog.LevelDebug)
	s := startStore(t, Options{ACME: a, Log: logs.Logger()})
	first := verified(t, s, name, e.ca.IssuerRoots())
	logs.Wait(1, `msg="certificate renewed"`, "name="+name)
	logs.Wait(1, "component=certmagic", `msg="replaced certificate in cache"`)
	second := verified(t, s, name, e.ca.IssuerRoots())
	if serialOf(first) == serialOf(second) || !second.NotAfter.After(first.NotAfter) {
		t.Errorf("after renewal: serial %s until %v, want a later one than %s until %v",
			serialOf(second), second.NotAfter, serialOf(first), first.NotAfter)
	}
}

// TestACMERenewalFailureKeepsCertificate makes the renewal fail (the CA is
// down): it is logged as an error with the name and the expiry of the
// certificate that stays in service, and handshakes still get that one.
func TestACMERenewalFailureKeepsCertificate(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{Validity: 10 * time.Second})
	name := uniqueName("renewfail")
	a := e.acme(t, t.TempDir(), name)
	a.HTTPAddress = e.httpAddress()
	logs := logtest.New(t, slog.LevelDebug)
	s := startStore(t, Options{ACME: a, Log: logs.Logger()})
	first := verified(t, s, name, e.ca.IssuerRoots())
	e.ca.SetDown(true)
	line := logs.Wait(1, "level=ERROR", `msg="certificate renewal failed; the current certificate stays in service"`, "name="+name)
	if want := "not_after=" + first.NotAfter.UTC().Format(time.RFC3339); !strings.Contains(line, want) {
		t.Errorf("got %q, want it to name %s", line, want)
	}
	// The same certificate, verified above; not verified again, for the
	// renewal may have been tried, at a random time ARI chose, in the last
	// second of its ten.
	if got, _ := served(t, s, name, nil); serialOf(got) != serialOf(first) {
		t.Errorf("after a failed renewal: got serial %s, want %s still", serialOf(got), serialOf(first))
	}
}

// TestACMERestartCADown restarts on the same storage while the CA is down:
// stored certificates that are still valid go into service at once, both
// when their renewal is not due and when it is (then the renewal fails,
// is logged, and is retried in the background).
func TestACMERestartCADown(t *testing.T) {
	t.Parallel()
	e := newACMEEnv(t, acmetest.Options{})
	storage := t.TempDir()
	names := []string{uniqueName("restart"), uniqueName("restart")}
	a := e.acme(t, storage, names...)
	a.HTTPAddress = e.httpAddress()
	first := startStore(t, Options{ACME: a, Log: slog.New(slog.DiscardHandler)})
	serials := map[string]string{}
	for _, n := range names {
		serials[n] = serialOf(verified(t, first, n, e.ca.IssuerRoots()))
	}
	first.Close()
	e.ca.SetDown(true)
	for _, tt := range []struct {
		name  string
		ratio float64
		warns int
	}{{"renewal not due", 0, 0}, {"renewal due", 1, 2}} {
		t.Run(tt.name, func(t *testing.T) {
			b := e.acme(t, storage, names...)
			b.HTTPAddress = e.httpAddress()
			b.RenewalWindowRatio = tt.ratio
			logs := logtest.New(t, slog.LevelDebug)
			s := startStore(t, Options{ACME: b, Log: logs.Logger()})
			for _, n := range names {
				if got := serialOf(verified(t, s, n, e.ca.IssuerRoots())); got != serials[n] {
					t.Errorf("%s: got serial %s, want the stored %s", n, got, serials[n])
				}
			}
			if got := logs.Count(`msg="serving the stored certificate; its renewal failed and is retried in the background"`); got != tt.warns {
				t.Errorf("got %d warnings about a failed renewal, want %d", got, tt.warns)
			}
			s.Close()
		})
	}
}
