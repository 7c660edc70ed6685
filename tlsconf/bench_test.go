package tlsconf

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"testing"

	"github.com/mailfront/mailfront/internal/acmetest"
	"github.com/mailfront/mailfront/internal/dnstest"
	"github.com/mailfront/mailfront/internal/testpki"
)

// BenchmarkGetCertificate measures the per-handshake certificate choice
// for a file certificate and for an ACME one (looked up in certmagic's
// cache), by exact name and for an unknown name (the default).
func BenchmarkGetCertificate(b *testing.B) {
	pki := testpki.NewCA(b)
	dir := b.TempDir()
	certFile, keyFile := pki.WriteLeaf(b, dir, "files.mailfront.test")
	name := uniqueName("bench")
	d := dnstest.Start(b, dnstest.Options{Zone: zone})
	ca := acmetest.Start(b, acmetest.Options{Resolver: d.Addr(), Log: func(string, ...any) {}})
	s, err := New(Options{
		Certificates: []CertFile{{certFile, keyFile}},
		ACME: &ACME{
			Domains: []string{name}, CA: ca.DirectoryURL(), CARoots: poolOf(b, ca.ServerRootPEM()),
			Storage: b.TempDir(), HTTPAddress: fmt.Sprintf("127.0.0.1:%d", ca.HTTPPort()),
		},
		Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	for _, sni := range []string{"files.mailfront.test", name, "unknown.example"} {
		b.Run(sni, func(b *testing.B) {
			hello := &tls.ClientHelloInfo{ServerName: sni}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.getCertificate(hello); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
