package tlsconf

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/internal/testpki"
)

func TestMinVersion(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t)
	cert, key := ca.WriteLeaf(t, t.TempDir(), "localhost")
	files := []CertFile{{cert, key}}
	tests := []struct {
		name string
		min  uint16
		want uint16
		err  error
	}{
		{"default is TLS 1.2", 0, tls.VersionTLS12, nil},
		{"TLS 1.3 raises the floor", tls.VersionTLS13, tls.VersionTLS13, nil},
		{"TLS 1.1 refused", tls.VersionTLS11, 0, ErrMinVersion},
		{"TLS 1.0 refused", tls.VersionTLS10, 0, ErrMinVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(Options{MinVersion: tt.min, Certificates: files})
			if !errors.Is(err, tt.err) {
				t.Fatalf("got error %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if got := s.Config("imap").MinVersion; got != tt.want {
				t.Errorf("got MinVersion %x, want %x", got, tt.want)
			}
		})
	}
}

func TestNoCertificateRefused(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{}); err == nil {
		t.Fatal("got a store without certificates, want an error")
	}
}

// TestConfigSuites checks the TLS 1.2 list: ECDHE key exchange and AEAD
// ciphers only (Go's defaults also enable CBC-SHA1 suites).
func TestConfigSuites(t *testing.T) {
	t.Parallel()
	cfg := NewWithCertificates(0, testpki.NewCA(t).Leaf(t, "localhost")).Config("pop3")
	if len(cfg.CipherSuites) == 0 {
		t.Fatal("no explicit suite list: Go's defaults include CBC suites")
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("suite %s is not ECDHE with an AEAD cipher", name)
		}
	}
	if got := strings.Join(cfg.NextProtos, ","); got != "pop3" {
		t.Errorf("got ALPN %q, want pop3 alone", got)
	}
}

// TestChooseBySNI checks certificate selection: exact name, a wildcard one
// label deep, IP addresses, and the first certificate for everything else.
func TestChooseBySNI(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t)
	def := ca.Leaf(t, "default.test")
	mail := ca.Leaf(t, "mail.example.com", "192.0.2.7")
	wild := ca.Leaf(t, "*.example.org")
	rsa := ca.LeafRSA(t, "rsa.example.net")
	s := NewWithCertificates(0, def, mail, wild, rsa)
	tests := []struct {
		sni  string
		want string
	}{
		{"mail.example.com", "mail.example.com"},
		{"MAIL.Example.COM.", "mail.example.com"},
		{"imap.example.org", "*.example.org"},
		{"a.b.example.org", "default.test"}, // a wildcard covers one label
		{"example.org", "default.test"},
		{"rsa.example.net", "rsa.example.net"},
		{"unknown.example", "default.test"},
		{"", "default.test"}, // no SNI
	}
	for _, tt := range tests {
		t.Run(tt.sni, func(t *testing.T) {
			c, err := s.getCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Leaf.DNSNames[0]; got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	if got, want := strings.Join(s.Names(), " "), "default.test mail.example.com 192.0.2.7 *.example.org rsa.example.net"; got != want {
		t.Errorf("Names: got %q, want %q", got, want)
	}
}

// TestReload swaps certificate files under a store: a broken file keeps the
// certificates in service, a good one is served to the next handshake.
func TestReload(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WriteLeaf(t, dir, "old.example")
	logs := logtest.New(t, slog.LevelInfo)
	s, err := New(Options{Certificates: []CertFile{{certFile, keyFile}}, Log: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		return verified(t, s, "old.example", nil).DNSNames[0]
	}
	if got := served(); got != "old.example" {
		t.Fatalf("got %s, want old.example", got)
	}

	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = s.Reload()
	if err == nil || !strings.Contains(err.Error(), certFile) {
		t.Fatalf("reload of a broken file: got %v, want an error naming %s", err, certFile)
	}
	if got := served(); got != "old.example" {
		t.Errorf("after a failed reload: got %s, want old.example still", got)
	}

	newCert, newKey, err := testpki.WritePair(t.TempDir(), "new", ca.Leaf(t, "new.example"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mv := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := served(); got != "new.example" {
		t.Errorf("after reload: got %s, want new.example", got)
	}
	if got := logs.Count(`msg="certificates reloaded" names=new.example`); got != 1 {
		t.Errorf("got %d reload lines for new.example logged, want 1", got)
	}
}

// TestExpiryWarning checks that a certificate close to its end is logged
// as a warning when loaded.
func TestExpiryWarning(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t)
	c, err := ca.Issue(testpki.NewKey(t), time.Now().Add(-time.Hour), time.Now().Add(3*24*time.Hour), "soon.example")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := testpki.WritePair(t.TempDir(), "soon", c)
	if err != nil {
		t.Fatal(err)
	}
	logs := logtest.New(t, slog.LevelInfo)
	if _, err := New(Options{Certificates: []CertFile{{certFile, keyFile}}, Log: logs.Logger()}); err != nil {
		t.Fatal(err)
	}
	if got := logs.Count(`level=WARN msg="certificate expires soon" names=soon.example`); got != 1 {
		t.Errorf("got %d expiry warnings, want 1", got)
	}
	old, err := ca.Issue(testpki.NewKey(t), time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), "old.example")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = testpki.WritePair(t.TempDir(), "old", old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Certificates: []CertFile{{certFile, keyFile}}, Log: logs.Logger()}); err != nil {
		t.Fatal(err)
	}
	if got := logs.Count(`level=ERROR msg="certificate expired: clients refuse it; renew it (or let ACME obtain one)" names=old.example`); got != 1 {
		t.Errorf("got %d expired errors, want 1:\n%s", got, logs.String())
	}
}
