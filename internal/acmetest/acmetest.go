package acmetest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/wfe"

	"github.com/mailfront/mailfront/internal/testpki"
)

// Options configure the CA. The zero value works for dns-01 against the
// system resolver; tests set Resolver.
type Options struct {
	// HTTPPort is the port Pebble's VA connects to for http-01: it resolves
	// the identifier through Resolver (AAAA first, then A; it dials the
	// first address it got, so an AAAA answer wins) and sends
	// GET http://<identifier>:HTTPPort/.well-known/acme-challenge/<token>,
	// following redirects. It makes three such requests per challenge, at
	// once, and all three must succeed. 0: an unused port outside the
	// kernel's ephemeral range, see CA.HTTPPort.
	HTTPPort int

	// TLSPort is the port for tls-alpn-01 (RFC 8737): the VA resolves the
	// identifier as for http-01, dials that address on TLSPort with SNI
	// set to the identifier and ALPN "acme-tls/1", and checks the leaf has
	// exactly that one DNS name and the critical acmeIdentifier extension.
	// Three handshakes per challenge. 0: an unused port outside the
	// kernel's ephemeral range, see CA.TLSPort.
	TLSPort int

	// Resolver is the "127.0.0.1:port" DNS server the VA asks for A, AAAA
	// and TXT records, over TCP only (Pebble sets its dns.Client to "tcp"),
	// one query per type, no recursion of its own. dns-01 reads the TXT
	// records of _acme-challenge.<identifier> and needs rcode NOERROR.
	// Identifiers that are IP addresses are not looked up. Empty: the
	// system resolver, which is rarely what a test wants.
	Resolver string

	// Validity is the lifetime of issued certificates, rounded up to whole
	// seconds: NotBefore is the time of issue (not backdated) and NotAfter
	// is NotBefore+Validity-1s (RFC 5280 counts both ends). 0: Pebble's
	// default, 90 days. For renewal tests, e.g. 30*time.Second.
	Validity time.Duration

	// EAB maps key IDs to base64url (unpadded) HMAC keys. When it is not
	// empty, new accounts need external account binding (RFC 8555 section
	// 7.3.4).
	EAB map[string]string

	// Log receives Pebble's log lines and the HTTPS server's errors.
	// nil: t.Logf. Lines written after the CA is cleaned up are dropped.
	Log func(format string, args ...any)
}

// CA is a running Pebble. Its methods are safe for concurrent use.
type CA struct {
	t        testing.TB
	srv      *httptest.Server
	ln       *toggleListener
	rootPEM  []byte
	issuers  *x509.CertPool
	httpPort int
	tlsPort  int

	down      atomic.Bool
	requests  atomic.Int64
	orders    atomic.Int64
	finalized atomic.Int64
}

// Start runs a CA on 127.0.0.1 and stops it in t.Cleanup.
//
// The first call sets, for the whole process, PEBBLE_VA_NOSLEEP=1 (no
// random sleep before validations), PEBBLE_WFE_NONCEREJECT=0 (no random
// badNonce errors), PEBBLE_AUTHZREUSE=0 (see below) and
// PEBBLE_VA_ALWAYS_VALID=0 (challenges are really checked): Pebble reads
// them when it is constructed.
//
// Even with PEBBLE_AUTHZREUSE=0, Pebble 2.10 reuses an account's valid
// authorization for an identifier about once in a hundred orders (its test
// is rand.Intn(100) > percent); authorizations stay valid for an hour. A
// test that must see a challenge on every order should use a new account
// per order.
func Start(t testing.TB, opts Options) *CA {
	t.Helper()
	if err := setPebbleEnv(); err != nil {
		t.Fatalf("acmetest: %v", err)
	}
	logf := opts.Log
	if logf == nil {
		logf = t.Logf
	}
	sink := &logSink{logf: logf}
	t.Cleanup(sink.stop) // registered first, so it runs last

	c := &CA{t: t, httpPort: opts.HTTPPort, tlsPort: opts.TLSPort}
	if c.httpPort == 0 {
		c.httpPort = freePort(t)
	}
	if c.tlsPort == 0 {
		c.tlsPort = freePort(t)
	}
	p, err := newPebble(sink, c.httpPort, c.tlsPort, opts)
	if err != nil {
		t.Fatalf("acmetest: %v", err)
	}
	c.issuers = p.issuers

	pki := testpki.NewCA(t)
	c.rootPEM = pki.CertPEM
	ln, err := listenOutside("127.0.0.1")
	if err != nil {
		t.Fatalf("acmetest: listen: %v", err)
	}
	c.ln = toggle(ln)
	c.srv = httptest.NewUnstartedServer(c.handler(p.wfe.Handler()))
	c.srv.Listener = c.ln
	c.srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Leaf(t, "127.0.0.1", "localhost")}}
	c.srv.Config.ErrorLog = sink.logger("acmetest server: ")
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

// DirectoryURL is the ACME directory, https://127.0.0.1:port/dir.
func (c *CA) DirectoryURL() string { return c.srv.URL + wfe.DirectoryPath }

// ServerRootPEM is the PEM certificate of the throwaway CA that signed the
// ACME server's HTTPS certificate (valid for 127.0.0.1 and localhost).
func (c *CA) ServerRootPEM() []byte { return bytes.Clone(c.rootPEM) }

// WriteServerRoot writes ServerRootPEM to a file in t.TempDir and returns
// its path.
func (c *CA) WriteServerRoot(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acme-server-root.pem")
	if err := os.WriteFile(path, c.rootPEM, 0o644); err != nil {
		t.Fatalf("acmetest: write server root: %v", err)
	}
	return path
}

// IssuerRoots holds Pebble's issuing root. Pebble serves leaf plus
// intermediate, so a chain it issued verifies against this pool with the
// intermediate from the chain.
func (c *CA) IssuerRoots() *x509.CertPool { return c.issuers.Clone() }

// HTTPPort is the port the VA dials for http-01.
func (c *CA) HTTPPort() int { return c.httpPort }

// TLSPort is the port the VA dials for tls-alpn-01.
func (c *CA) TLSPort() int { return c.tlsPort }
