package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/imapmem"
	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/internal/testpki"
)

// logLines are the JSON log lines of an in-process mailfront, captured by
// logtest: a test waits for one (the log is the signal: no sleeps) and
// reads its attributes.
type logLines struct {
	*logtest.Recorder
	t *testing.T
}

func newLogLines(t *testing.T) *logLines { return &logLines{logtest.New(t, slog.LevelDebug), t} }

// msgIs is the part of a JSON line that says its msg is msg.
func msgIs(msg string) string { return `"msg":` + strconv.Quote(msg) }

// wait returns the n-th (1-based) line whose msg is msg, parsed.
func (l *logLines) wait(msg string, n int) map[string]any {
	l.t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(l.Wait(n, msgIs(msg))), &m); err != nil {
		l.t.Fatalf("log line %q (#%d) is not JSON: %v", msg, n, err)
	}
	return m
}

// index is the position of the first line with msg among those seen, or -1.
func (l *logLines) index(msg string) int {
	for i, line := range l.Lines() {
		if strings.Contains(line, msgIs(msg)) {
			return i
		}
	}
	return -1
}

type runFixture struct {
	ca                *testpki.CA
	certFile, keyFile string
	backend           *imapmem.Server
	logs              *logLines
	exit              chan int
	exited            bool
	code              int
	addr              map[string]string // listener name -> address
}

// startRun writes certificates and a config, then runs "mailfront run" in
// this process.
func startRun(t *testing.T) *runFixture {
	t.Helper()
	dir := t.TempDir()
	f := &runFixture{ca: testpki.NewCA(t), logs: newLogLines(t), exit: make(chan int, 1), addr: map[string]string{}}
	f.certFile, f.keyFile = f.ca.WriteLeaf(t, dir, "localhost")
	be, err := imapmem.Start("127.0.0.1:0", map[string]string{"alice": "wonderland"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	f.backend = be
	cfg := fmt.Sprintf(`tls:
  certificates:
    - {cert_file: %s, key_file: %s}
listeners:
  - {name: imaps, protocol: imap, address: "127.0.0.1:0", tls: implicit, backend: %q}
  - {name: imap, protocol: imap, address: "127.0.0.1:0", tls: starttls, backend: %q}
shutdown: {drain: 500ms}
log: {format: json, level: info}
`, f.certFile, f.keyFile, be.Addr, be.Addr)
	path := filepath.Join(dir, "mailfront.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() { f.exit <- Main([]string{"run", "--config", path}, io.Discard, f.logs) }()
	for i := 1; i <= 2; i++ {
		m := f.logs.wait("listening", i)
		f.addr[m["listener"].(string)] = m["address"].(string)
	}
	t.Cleanup(func() {
		if !f.exited {
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
			f.exitCode()
		}
	})
	return f
}

// exitCode waits for Main to return.
func (f *runFixture) exitCode() int {
	if !f.exited {
		f.code, f.exited = <-f.exit, true
	}
	return f.code
}

type imapConn struct {
	net.Conn
	r *bufio.Reader
}

func (f *runFixture) dialTLS(t *testing.T) (*imapConn, *big.Int) {
	t.Helper()
	c, err := tls.Dial("tcp", f.addr["imaps"], &tls.Config{RootCAs: f.ca.Pool(), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial imaps: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	ic := &imapConn{Conn: c, r: bufio.NewReader(c)}
	ic.expect(t, "* OK")
	return ic, c.ConnectionState().PeerCertificates[0].SerialNumber
}

// expect reads lines until one starts with prefix.
func (c *imapConn) expect(t *testing.T, prefix string) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for %q: %v", prefix, err)
		}
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
}

func (c *imapConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s + "\r\n")); err != nil {
		t.Fatal(err)
	}
}

// replaceCert swaps the certificate files the way certbot does (write, rename).
func (f *runFixture) replaceCert(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	for path, data := range map[string][]byte{f.certFile: certPEM, f.keyFile: keyPEM} {
		tmp := path + ".new"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// SIGHUP swaps the certificate for new connections while an IDLE session
// carries on; a broken file keeps the old certificate; SIGTERM says goodbye
// to pre-login sessions, drains relayed ones and exits 0.
func TestRunSIGHUPAndSIGTERM(t *testing.T) {
	f := startRun(t)
	idle, oldSerial := f.dialTLS(t)
	idle.send(t, "a LOGIN alice wonderland")
	idle.expect(t, "a OK")
	idle.send(t, "b SELECT INBOX")
	idle.expect(t, "b OK")
	idle.send(t, "c IDLE")
	idle.expect(t, "+ ")

	// A new certificate under the same paths, then SIGHUP.
	newCert, newKey := writeTemp(t, f.ca)
	f.replaceCert(t, newCert, newKey)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	f.logs.wait("certificates reloaded", 1)
	_, serial := f.dialTLS(t)
	if serial.Cmp(oldSerial) == 0 {
		t.Fatal("new connection still got the old certificate after SIGHUP")
	}
	// The IDLE session opened before the reload still relays.
	if err := f.backend.AddMessage("alice", "INBOX", []byte("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	idle.expect(t, "* ")
	idle.send(t, "DONE")
	idle.expect(t, "c OK")

	// A broken file: the certificate in service stays.
	f.replaceCert(t, []byte("not a certificate"), newKey)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	f.logs.wait("certificate reload failed; keeping the certificates in service", 1)
	if _, s := f.dialTLS(t); s.Cmp(serial) != 0 {
		t.Fatal("a broken certificate file replaced the one in service")
	}

	// SIGTERM: goodbye before login, drain after.
	pre, _ := f.dialTLS(t)
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	if line := pre.expect(t, "* BYE"); !strings.Contains(line, "[UNAVAILABLE]") {
		t.Fatalf("got %q, want * BYE [UNAVAILABLE]", line)
	}
	idle.send(t, "d NOOP") // still relayed during the drain
	idle.expect(t, "d OK")
	if code := f.exitCode(); code != 0 {
		t.Fatalf("got exit code %d, want 0", code)
	}
	idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(idle.r); err != nil {
		t.Fatalf("relayed session not closed cleanly after the drain: %v", err)
	}
}

// TestRunNotifiesSystemd: under systemd (Type=notify, NOTIFY_SOCKET set)
// mailfront says READY=1 once every listener accepts connections, and
// STOPPING=1 when it starts shutting down; the first log line names the
// version and the configuration file.
func TestRunNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	messages := make(chan string, 8)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			messages <- string(buf[:n])
		}
	}()
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case m := <-messages:
				if strings.Contains(m, want) {
					return m
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("systemd was not told %q", want)
			}
		}
	}
	f := startRun(t)
	next("READY=1")
	for name, addr := range f.addr { // READY=1 came after the listeners opened
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("%s: READY=1 sent before it accepted connections: %v", name, err)
		}
		c.Close()
	}
	if first := f.logs.Lines()[0]; !strings.Contains(first, msgIs("starting")) || !strings.Contains(first, `"version":`) || !strings.Contains(first, "mailfront.yaml") {
		t.Errorf("first log line %s: want starting, the version and the config file", first)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	next("STOPPING=1")
	if code := f.exitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

func writeTemp(t *testing.T, ca *testpki.CA) (certPEM, keyPEM []byte) {
	t.Helper()
	dir := t.TempDir()
	c, k := ca.WriteLeaf(t, dir, "localhost")
	certPEM, _ = os.ReadFile(c)
	keyPEM, _ = os.ReadFile(k)
	return certPEM, keyPEM
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t)
	cert, key := ca.WriteLeaf(t, dir, "mail.example.com")
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(fmt.Sprintf("tls: {certificates: [{cert_file: %s, key_file: %s}]}\nlisteners:\n  - {protocol: imap, address: \":993\", tls: implicit, backend: \"127.0.0.1:143\"}\n", cert, key)), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("tls: {min_version: \"1.0\"}\nlisteners:\n  - {protocol: smtp, address: \":25\", tls: sometimes, backend: \"nowhere\"}\n"), 0o600)
	unknown := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknown, []byte("tls: {certificates: []}\nlistners: []\n"), 0o600)
	tests := []struct {
		name     string
		path     string
		wantCode int
		want     []string
	}{
		{"valid", good, 0, []string{"configuration is valid"}},
		{"every problem at once", bad, 1, []string{"tls.min_version", "tls: no certificate source", "listeners[0].protocol", "listeners[0].tls", "listeners[0].backend"}},
		{"unknown key", unknown, 1, []string{"listners"}},
		{"missing file", filepath.Join(dir, "none.yaml"), 1, []string{"none.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			code := Main([]string{"validate", "--config", tt.path}, &out, &out)
			var out2 bytes.Buffer
			if code2 := Main([]string{"validate", tt.path}, &out2, &out2); code2 != code || out2.String() != out.String() {
				t.Errorf("validate FILE: got exit %d and %q, want what validate --config FILE gave", code2, out2.String())
			}
			if code != tt.wantCode {
				t.Fatalf("got exit %d, want %d; output:\n%s", code, tt.wantCode, out.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestValidateArguments: validate takes the file as --config or as its one
// argument, and refuses anything more rather than check another file.
func TestValidateArguments(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "--config", "a.yaml", "b.yaml"}, "two configuration files: --config a.yaml and b.yaml"},
		{[]string{"validate", "a.yaml", "b.yaml"}, `unexpected arguments ["a.yaml" "b.yaml"]`},
		{[]string{"run", "a.yaml", "--config", "b.yaml"}, "unexpected arguments"},
	} {
		var out bytes.Buffer
		if code := Main(tt.args, &out, &out); code != 2 || !strings.Contains(out.String(), tt.want) {
			t.Errorf("mailfront %q: got exit %d and %q, want exit 2 and %q", tt.args, code, out.String(), tt.want)
		}
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		want     string
	}{
		{[]string{"version"}, 0, "mailfront "},
		{[]string{"version"}, 0, "\ncommit: "},
		{[]string{"version"}, 0, "\ngo: go1."},
		{[]string{"version", "extra"}, 2, "takes no arguments"},
		{[]string{"--help"}, 0, "mailfront run [--config] FILE"},
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"run", "--help"}, 2, "SIGHUP"},
		{[]string{"validate", "--help"}, 2, "every problem"},
		{[]string{"demo", "--help"}, 2, "self-signed"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if code := Main(tt.args, &out, &out); code != tt.wantCode || !strings.Contains(out.String(), tt.want) {
			t.Errorf("mailfront %v: got exit %d and %q, want exit %d and %q", tt.args, code, out.String(), tt.wantCode, tt.want)
		}
	}
}

// The demo serves a TLS login and refuses a plaintext one.
func TestDemo(t *testing.T) {
	logs := newLogLines(t)
	d, err := startDemo(logs.JSONLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	defer d.front.srv.Shutdown(context.Background())
	var help bytes.Buffer
	d.printHelp(&help)
	if !strings.Contains(help.String(), "curl") || !strings.Contains(help.String(), d.ports["imaps"]) {
		t.Fatalf("help lacks the commands:\n%s", help.String())
	}
	pem, _ := os.ReadFile(d.certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", d.ports["imaps"], &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ic := &imapConn{Conn: c, r: bufio.NewReader(c)}
	ic.expect(t, "* OK")
	ic.send(t, "a LOGIN "+imapmem.DemoUser+" "+imapmem.DemoPassword)
	ic.expect(t, "a OK")
	ic.send(t, "b SELECT INBOX")
	if line := ic.expect(t, "* "); !strings.Contains(line, "EXISTS") && !strings.Contains(line, "FLAGS") {
		t.Fatalf("got %q after SELECT", line)
	}
	pc, err := net.Dial("tcp", d.ports["imap"])
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	plain := &imapConn{Conn: pc, r: bufio.NewReader(pc)}
	plain.expect(t, "* OK")
	plain.send(t, "a LOGIN "+imapmem.DemoUser+" "+imapmem.DemoPassword)
	if line := plain.expect(t, "a "); !strings.Contains(line, "NO [PRIVACYREQUIRED]") {
		t.Fatalf("got %q, want NO [PRIVACYREQUIRED]", line)
	}
}

// TestACMEStorageNotWritable: ACME storage mailfront cannot write is an
// error, from validate and at start, never an endless retry. (/proc is a
// directory that even root cannot write, or make directories in.)
func TestACMEStorageNotWritable(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("needs Linux's /proc: a directory that nobody can write")
	}
	for _, tt := range []struct {
		args    []string
		storage string
		want    string
	}{
		{[]string{"validate"}, "/proc/self", "tls.acme.storage: /proc/self cannot be written by this user"},
		{[]string{"run"}, "/proc/mailfront-storage", "tls.acme.storage: cannot create /proc/mailfront-storage"},
	} {
		path := acmeConfig(t, fmt.Sprintf("  acme:\n    domains: [mail.example.com]\n    storage: %s\n    challenges: {http: {address: \"127.0.0.1:8080\"}}\n", tt.storage))
		var out bytes.Buffer
		code := make(chan int, 1)
		go func() { code <- Main(append(tt.args, "--config", path), &out, &out) }()
		select {
		case c := <-code:
			if c != 1 || !strings.Contains(out.String(), tt.want) {
				t.Errorf("mailfront %s: got exit %d and %q, want exit 1 and %q", tt.args[0], c, out.String(), tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("mailfront %s: still running after 10 s with unwritable storage", tt.args[0])
		}
	}
}
