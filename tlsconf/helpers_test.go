package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"testing"
	"time"
)

// served runs one handshake with the store's imap config over loopback and
// returns the leaf the server presented, and whether it verifies for sni
// against roots (nil roots: not checked).
func served(t testing.TB, s *Store, sni string, roots *x509.CertPool) (*x509.Certificate, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, s.Config("imap"))
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if tc.Handshake() == nil {
			tc.Read(make([]byte, 1)) // until the client hangs up
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{ServerName: sni, InsecureSkipVerify: true, NextProtos: []string{"imap"}})
	if err != nil {
		t.Fatalf("handshake with SNI %q: %v", sni, err)
	}
	defer c.Close()
	chain := c.ConnectionState().PeerCertificates
	if roots == nil {
		return chain[0], nil
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	name := sni
	if name == "" {
		name = chain[0].DNSNames[0]
	}
	_, err = chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
	return chain[0], err
}

// verified is served for a chain that must verify.
func verified(t testing.TB, s *Store, sni string, roots *x509.CertPool) *x509.Certificate {
	t.Helper()
	leaf, err := served(t, s, sni, roots)
	if err != nil {
		t.Fatalf("SNI %q: served %v, which does not verify: %v", sni, leaf.DNSNames, err)
	}
	return leaf
}

func poolOf(t testing.TB, pemBytes []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in PEM")
	}
	return p
}

func serialOf(c *x509.Certificate) string { return fmt.Sprintf("%x", c.SerialNumber) }
