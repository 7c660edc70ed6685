package imap

import (
	"crypto/tls"
	"testing"

	"github.com/mailfront/mailfront/internal/testpki"
	"github.com/mailfront/mailfront/tlsconf"
)

// testTLS returns the proxy's TLS configuration, built by tlsconf as the
// command builds it, over a leaf for localhost minted now (no key material
// lives in the repository), and a client configuration that trusts it.
func testTLS(t testing.TB) (srv, cli *tls.Config) {
	t.Helper()
	ca := testpki.NewCA(t)
	srv = tlsconf.NewWithCertificates(0, ca.Leaf(t, "localhost", "127.0.0.1")).Config("imap")
	cli = &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	return srv, cli
}
