package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailfront/mailfront/internal/acmetest"
	"github.com/mailfront/mailfront/internal/dnstest"
	"github.com/mailfront/mailfront/internal/imapmem"
)

// acmeRun is "mailfront run" with a config whose only certificate source
// is ACME against an in-process Pebble.
type acmeRun struct {
	ca   *acmetest.CA
	logs *logLines
	exit chan int
}

func startACMERun(t *testing.T, down bool) *acmeRun {
	t.Helper()
	d := dnstest.Start(t, dnstest.Options{Zone: "mailfront.test."})
	r := &acmeRun{ca: acmetest.Start(t, acmetest.Options{Resolver: d.Addr()}), logs: newLogLines(t), exit: make(chan int, 1)}
	r.ca.SetDown(down)
	be, err := imapmem.Start("127.0.0.1:0", map[string]string{"alice": "wonderland"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	dir := t.TempDir()
	cfg := fmt.Sprintf(`tls:
  acme:
    domains: [imap.mailfront.test]
    email: postmaster@mailfront.test
    ca: %s
    ca_root: %s
    storage: %s
    challenges:
      http: {address: "127.0.0.1:%d"}
listeners:
  - {name: imaps, protocol: imap, address: "127.0.0.1:0", tls: implicit, backend: %q}
shutdown: {drain: 500ms}
admin: {address: "127.0.0.1:0"}
log: {format: json, level: info}
`, r.ca.DirectoryURL(), r.ca.WriteServerRoot(t), filepath.Join(dir, "acme"), r.ca.HTTPPort(), be.Addr)
	path := filepath.Join(dir, "mailfront.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() { r.exit <- Main([]string{"run", "--config", path}, io.Discard, r.logs) }()
	return r
}

// TestRunACME runs the command with a newcomer's ACME config (one domain,
// one e-mail, one challenge): the certificate is obtained before the
// listener opens, and a client verifies it against the CA's root and logs
// in through it.
func TestRunACME(t *testing.T) {
	r := startACMERun(t, false)
	got := r.logs.wait("certificate obtained", 1)
	if got["name"] != "imap.mailfront.test" || got["not_after"] == "" {
		t.Errorf("got %v, want the name and expiry", got)
	}
	addr := r.logs.wait("listening", 1)["address"].(string)
	if i, j := r.logs.index("certificate obtained"), r.logs.index("listening"); i > j {
		t.Errorf("the listener opened (line %d) before the certificate was obtained (line %d)", j, i)
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: r.ca.IssuerRoots(), ServerName: "imap.mailfront.test"})
	if err != nil {
		t.Fatalf("a client verifying against the CA's root: %v", err)
	}
	defer c.Close()
	ic := &imapConn{Conn: c, r: bufio.NewReader(c)}
	ic.expect(t, "* OK")
	ic.send(t, "a LOGIN alice wonderland")
	ic.expect(t, "a OK")
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if code := <-r.exit; code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// TestRunACMESIGTERMWhileWaiting stops the command while it is still
// waiting for a CA that is down: it exits 0 without ever listening.
func TestRunACMESIGTERMWhileWaiting(t *testing.T) {
	r := startACMERun(t, true)
	line := r.logs.wait("certificates not obtained yet; retrying", 1)
	if !strings.Contains(fmt.Sprint(line["error"]), "imap.mailfront.test") {
		t.Errorf("got %v, want the error to name the domain", line)
	}
	// The admin endpoint opened first: alive, and not ready, saying why.
	admin := "http://" + r.logs.wait("admin listening", 1)["address"].(string)
	get(t, admin+"/healthz", 200)
	if body := get(t, admin+"/readyz", 503); !strings.Contains(body, "the mail listeners open once every certificate is in service") {
		t.Errorf("/readyz while waiting: %q", body)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if code := <-r.exit; code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if i := r.logs.index("listening"); i >= 0 {
		t.Error("a listener opened without a certificate")
	}
	r.logs.wait("stopped", 1)
}
