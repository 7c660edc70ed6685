package tlsconf

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// TestWatchReloadsChangedFiles replaces the certificate files under a
// started store the way certbot and cert-manager do (new files renamed
// over the old) and the way a control panel does (rewritten in place):
// the next handshake gets the new certificate without Reload being called.
// A broken file keeps the certificate in service and is logged.
func TestWatchReloadsChangedFiles(t *testing.T) {
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WriteLeaf(t, dir, "mail.example.com")
	logs, log := newLogRecorder(t)
	s := startStore(t, Options{Certificates: []CertFile{{certFile, keyFile}}, Log: log, WatchInterval: 10 * time.Millisecond})
	first := serialOf(verified(t, s, "mail.example.com", ca.Pool()))

	// certbot and cert-manager: new files renamed over the old ones.
	newCert, newKey, err := testpki.WritePair(t.TempDir(), "new", ca.Leaf(t, "mail.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	for _, mv := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	logs.wait(1, 10*time.Second, `msg="certificates reloaded"`)
	second := serialOf(verified(t, s, "mail.example.com", ca.Pool()))
	if second == first {
		t.Fatalf("after renaming new files in: still serial %s", first)
	}

	// A broken certificate: logged, and the one in service stays.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs.wait(1, 10*time.Second, "level=ERROR", `msg="certificate reload failed; keeping the certificates in service"`, certFile)
	if got := serialOf(verified(t, s, "mail.example.com", ca.Pool())); got != second {
		t.Errorf("after a broken file: got serial %s, want %s still", got, second)
	}

	// A control panel rewriting both files in place.
	c := ca.Leaf(t, "mail.example.com")
	tmpCert, tmpKey, err := testpki.WritePair(t.TempDir(), "third", c)
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range [][2]string{{tmpKey, keyFile}, {tmpCert, certFile}} {
		data, err := os.ReadFile(cp[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cp[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logs.wait(2, 10*time.Second, `msg="certificates reloaded"`)
	if got := serialOf(verified(t, s, "mail.example.com", ca.Pool())); got != serialOf(c.Leaf) {
		t.Errorf("after rewriting in place: got serial %s, want %s", got, serialOf(c.Leaf))
	}
	if n := logs.count("certificate reload failed"); n != 1 {
		t.Errorf("got %d reload failures logged, want 1 (a change is reloaded once it holds still)", n)
	}
}

// TestWatchSymlinkSwap follows a Kubernetes Secret volume (cert-manager):
// tls.crt and tls.key are symlinks through "..data", which is swapped
// atomically to a new directory.
func TestWatchSymlinkSwap(t *testing.T) {
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	version := func(name string) *x509.Certificate {
		t.Helper()
		c := ca.Leaf(t, "mail.example.com")
		if err := os.Mkdir(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, _, err := testpki.WritePair(filepath.Join(dir, name), "tls", c); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	v1 := version("..v1")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.Symlink("..data/tls.crt.pem", certFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/tls.key.pem", keyFile); err != nil {
		t.Fatal(err)
	}
	logs, log := newLogRecorder(t)
	s := startStore(t, Options{Certificates: []CertFile{{certFile, keyFile}}, Log: log, WatchInterval: 10 * time.Millisecond})
	if got := serialOf(verified(t, s, "mail.example.com", ca.Pool())); got != serialOf(v1) {
		t.Fatalf("got serial %s, want %s", got, serialOf(v1))
	}
	v2 := version("..v2")
	logs.wait(1, 10*time.Second, `msg="certificates reloaded"`)
	if got := serialOf(verified(t, s, "mail.example.com", ca.Pool())); got != serialOf(v2) {
		t.Errorf("after the swap: got serial %s, want %s", got, serialOf(v2))
	}
}
