package tlsconf

import (
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/internal/testpki"
)

// steppedStore starts a store whose watcher polls only when the test calls
// step, which returns once that poll, and any reload it made, is done: the
// test decides when the watcher looks, so it can look in the middle of a
// change, and never races a ticker.
func steppedStore(t *testing.T, opts Options) (s *Store, step func()) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.watch.step = make(chan chan struct{})
	t.Cleanup(s.Close)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s, func() {
		t.Helper()
		failsafe := time.NewTimer(logtest.Failsafe)
		defer failsafe.Stop()
		done := make(chan struct{})
		select {
		case s.watch.step <- done:
		case <-failsafe.C:
			t.Fatal("the watcher did not take a poll")
		}
		select {
		case <-done:
		case <-failsafe.C:
			t.Fatal("the watcher's poll did not finish")
		}
	}
}

// TestWatchReloadsChangedFiles replaces the certificate files under a
// started store the way certbot does (new files renamed over the old, one
// after the other) and the way a control panel does (rewritten in place):
// the next handshake gets the new certificate without Reload being called.
// The watcher also looks between the two files: a change is loaded only
// once it has held still for a poll, so a certificate is never paired with
// the other file's old or half-written version. A broken file keeps the
// certificate in service and is logged once, not at every poll.
func TestWatchReloadsChangedFiles(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WriteLeaf(t, dir, "mail.example.com")
	logs := logtest.New(t, slog.LevelDebug)
	s, step := steppedStore(t, Options{Certificates: []CertFile{{certFile, keyFile}}, Log: logs.Logger()})
	serial := func() string {
		t.Helper()
		return serialOf(verified(t, s, "mail.example.com", ca.Pool()))
	}
	logged := func(when string, reloads, failures int) {
		t.Helper()
		r := logs.Count(`msg="certificates reloaded"`)
		f := logs.Count("level=ERROR", `msg="certificate reload failed; keeping the certificates in service"`, certFile)
		if r != reloads || f != failures {
			t.Fatalf("%s: got %d reloads and %d reload failures logged, want %d and %d", when, r, f, reloads, failures)
		}
	}
	first := serial()
	step()
	logged("files unchanged", 0, 0)

	// certbot: new files renamed over the old ones.
	newCert, newKey, err := testpki.WritePair(t.TempDir(), "new", ca.Leaf(t, "mail.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	rename(t, newCert, certFile)
	step() // the new certificate with the old key
	rename(t, newKey, keyFile)
	step() // the key has changed since: still not loaded
	logged("after renaming new files in, before they held still", 0, 0)
	if got := serial(); got != first {
		t.Fatalf("before the change held still: got serial %s, want %s still", got, first)
	}
	step()
	logged("after renaming new files in", 1, 0)
	second := serial()
	if second == first {
		t.Fatalf("after renaming new files in: still serial %s", first)
	}

	// A broken certificate: logged once, and the one in service stays.
	writeFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"))
	step()
	step()
	logged("after breaking the certificate", 1, 1)
	step() // not retried until the files change
	logged("a poll later", 1, 1)
	if got := serial(); got != second {
		t.Errorf("after a broken file: got serial %s, want %s still", got, second)
	}

	// A control panel rewriting both files in place, the key first.
	c := ca.Leaf(t, "mail.example.com")
	tmpCert, tmpKey, err := testpki.WritePair(t.TempDir(), "third", c)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, keyFile, readFile(t, tmpKey))
	step() // the new key with the broken certificate
	writeFile(t, certFile, readFile(t, tmpCert))
	step()
	logged("after rewriting in place, before the change held still", 1, 1)
	step()
	logged("after rewriting in place", 2, 1)
	if got := serial(); got != serialOf(c.Leaf) {
		t.Errorf("after rewriting in place: got serial %s, want %s", got, serialOf(c.Leaf))
	}
}

func rename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// writeFile rewrites path in place, as an editor or a control panel does
// (truncated, then written).
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestWatchSymlinkSwap follows a Kubernetes Secret volume (cert-manager):
// tls.crt and tls.key are symlinks through "..data", which is swapped
// atomically to a new directory. The watcher runs on its own ticker here:
// a single atomic change cannot be seen half done, however the polls fall,
// so it is reloaded once and never fails.
func TestWatchSymlinkSwap(t *testing.T) {
	t.Parallel()
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
	logs := logtest.New(t, slog.LevelDebug)
	s := startStore(t, Options{Certificates: []CertFile{{certFile, keyFile}}, Log: logs.Logger(), WatchInterval: 10 * time.Millisecond})
	if got := serialOf(verified(t, s, "mail.example.com", ca.Pool())); got != serialOf(v1) {
		t.Fatalf("got serial %s, want %s", got, serialOf(v1))
	}
	v2 := version("..v2")
	logs.Wait(1, `msg="certificates reloaded"`)
	if got := serialOf(verified(t, s, "mail.example.com", ca.Pool())); got != serialOf(v2) {
		t.Errorf("after the swap: got serial %s, want %s", got, serialOf(v2))
	}
	if got := logs.Count("certificate reload failed"); got != 0 {
		t.Errorf("got %d reload failures logged, want none (the swap is atomic)", got)
	}
}
