package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// logRecorder is a slog destination tests can wait on: every line goes to
// t.Log and wakes the waiters.
type logRecorder struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
	wake  chan struct{} // closed and replaced on every line
}

func newLogRecorder(t testing.TB) (*logRecorder, *slog.Logger) {
	r := &logRecorder{t: t, wake: make(chan struct{})}
	return r, slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (r *logRecorder) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	r.mu.Lock()
	r.lines = append(r.lines, line)
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
	r.t.Log(line)
	return len(p), nil
}

// count returns how many lines contain every one of parts.
func (r *logRecorder) count(parts ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if containsAll(l, parts) {
			n++
		}
	}
	return n
}

// wait blocks until n lines contain every one of parts, failing the test
// after timeout, and returns the last such line.
func (r *logRecorder) wait(n int, timeout time.Duration, parts ...string) string {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		var found []string
		for _, l := range r.lines {
			if containsAll(l, parts) {
				found = append(found, l)
			}
		}
		wake := r.wake
		r.mu.Unlock()
		if len(found) >= n {
			return found[n-1]
		}
		select {
		case <-wake:
		case <-deadline:
			r.t.Fatalf("after %v: %d log lines with %q, want %d", timeout, len(found), parts, n)
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

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
