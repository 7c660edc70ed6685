package acmetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"

	"github.com/mailfront/mailfront/internal/testpki"
)

// startDNS runs an authoritative DNS server on TCP (the only transport
// Pebble's VA uses) that answers A 127.0.0.1 for every name and nothing
// else.
func startDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen dns: %v", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(answerLoopback), NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }() // a dead server fails the validation
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

func answerLoopback(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		if q.Qtype == dns.TypeA {
			hdr := dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		}
	}
	_ = w.WriteMsg(m)
}

// http01 is an acmez http-01 solver serving on 127.0.0.1:port; hits counts
// the validation requests that got the key authorization.
type http01 struct {
	mu   sync.Mutex
	keys map[string]string // path -> key authorization
	hits atomic.Int64
}

func serveHTTP01(t *testing.T, port int) *http01 {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen http-01: %v", err)
	}
	s := &http01{keys: map[string]string{}}
	srv := &http.Server{Handler: s}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return s
}

func (s *http01) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	key, ok := s.keys[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	s.hits.Add(1)
	_, _ = w.Write([]byte(key))
}

func (s *http01) Present(_ context.Context, chal acme.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[chal.HTTP01ResourcePath()] = chal.KeyAuthorization
	return nil
}

func (s *http01) CleanUp(_ context.Context, chal acme.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, chal.HTTP01ResourcePath())
	return nil
}

// httpClient trusts only the ACME server's throwaway root.
func httpClient(t *testing.T, ca *CA) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.ServerRootPEM()) {
		t.Fatal("ServerRootPEM: no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// newAccount registers a fresh account; eab may be nil.
func newAccount(t *testing.T, c *acmez.Client, eab *acme.EAB) (acme.Account, error) {
	t.Helper()
	acct := acme.Account{TermsOfServiceAgreed: true, PrivateKey: testpki.NewKey(t)}
	if eab != nil {
		if _, err := c.GetDirectory(t.Context()); err != nil {
			t.Fatalf("get directory: %v", err)
		}
		if err := acct.SetExternalAccountBinding(t.Context(), c.Client, *eab); err != nil {
			t.Fatalf("set eab: %v", err)
		}
	}
	return c.NewAccount(t.Context(), acct)
}
