package imap

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

func plainIR(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

// TestPlaintextLoginRefused is ARCHITECTURE.md invariant 1: before TLS every login
// form gets NO [PRIVACYREQUIRED] at once, never a continuation, and the
// backend is not even dialled.
func TestPlaintextLoginRefused(t *testing.T) {
	t.Parallel()
	fb := startFake(t, nil)
	e := startProxy(t, proxyConfig{Backend: fb.addr()})
	pw := quote(testPassword)
	tests := []struct{ name, send string }{
		{"LOGIN atoms", "a LOGIN alice secret\r\n"},
		{"LOGIN quoted", "a LOGIN \"alice\" " + pw + "\r\n"},
		{"LOGIN literal user", "a LOGIN {5}\r\n"},
		{"LOGIN literal password", "a LOGIN alice {11}\r\n"},
		{"AUTHENTICATE PLAIN", "a AUTHENTICATE PLAIN\r\n"},
		{"AUTHENTICATE PLAIN SASL-IR", "a AUTHENTICATE PLAIN " + plainIR("", testUser, testPassword) + "\r\n"},
		{"AUTHENTICATE LOGIN", "a AUTHENTICATE LOGIN\r\n"},
		{"AUTHENTICATE LOGIN with user", "a AUTHENTICATE LOGIN YWxpY2U=\r\n"},
		{"AUTHENTICATE other mechanism", "a AUTHENTICATE XOAUTH2\r\n"},
		{"lower case", "a login alice secret\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.greeted(t)
			w.send(tt.send)
			if got := w.line(); !strings.HasPrefix(got, "a NO [PRIVACYREQUIRED] ") {
				t.Fatalf("got %q, want a NO [PRIVACYREQUIRED] (and never a continuation)", got)
			}
			w.send("z NOOP\r\n")
			w.expect("z OK")
			w.send("q LOGOUT\r\n")
			if got := w.closed(); !strings.HasPrefix(got, "* BYE") || !strings.Contains(got, "q OK") {
				t.Errorf("logout: got %q, want BYE and q OK", got)
			}
		})
	}
	if n := e.dials.Load(); n != 0 {
		t.Errorf("backend dialled %d times, want 0", n)
	}
	if n := fb.connections(); n != 0 {
		t.Errorf("backend accepted %d connections, want 0", n)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `msg="plaintext login refused" `) || !strings.Contains(logs, "user=alice") {
		t.Errorf("logs lack a \"plaintext login refused\" line with the user")
	}
	if strings.Contains(logs, "secret") || strings.Contains(logs, testPassword) {
		t.Errorf("a password reached the logs")
	}
}

// TestSTARTTLSInjection_CVE_2011_0411: a command pipelined after STARTTLS
// in plaintext must never run inside the TLS session (the flaw: servers
// kept their plaintext read buffer across the upgrade).
func TestSTARTTLSInjection_CVE_2011_0411(t *testing.T) {
	t.Parallel()
	fb := startFake(t, nil)
	e := startProxy(t, proxyConfig{Backend: fb.addr()})
	injected := "b LOGIN alice " + quote(testPassword) + "\r\n"

	t.Run("one write", func(t *testing.T) {
		w := e.greeted(t)
		w.send("a STARTTLS\r\n" + injected)
		w.expect("a OK ")
		w.upgrade(e.client)
		w.send("c NOOP\r\n")
		if got := w.line(); got != "c OK NOOP completed" {
			t.Fatalf("first reply under TLS: got %q, want c OK (the injected command unanswered)", got)
		}
	})
	t.Run("two writes", func(t *testing.T) {
		w := e.greeted(t)
		w.send("a STARTTLS\r\n")
		w.expect("a OK ")
		w.send(injected)
		tc := tls.Client(w.c, e.client)
		tc.SetDeadline(time.Now().Add(safety))
		if err := tc.Handshake(); err == nil {
			t.Fatal("handshake succeeded after plaintext was injected into it, want failure")
		}
	})
	if n := e.dials.Load(); n != 0 {
		t.Errorf("backend dialled %d times, want 0: the injected LOGIN ran", n)
	}
}

// TestBackendSeesCanonicalLogin is ARCHITECTURE.md invariant 4: the backend gets
// mailfront's own login, then the client's post-login bytes exactly once,
// and none of the client's pre-login bytes.
func TestBackendSeesCanonicalLogin(t *testing.T) {
	t.Parallel()
	fb := startFake(t, nil)
	e := startProxy(t, proxyConfig{Backend: fb.addr()})
	w := e.implicitReady(t)
	w.send("x CAPABILITY\r\ny NOOP\r\n")
	w.tagged("x")
	w.tagged("y")
	var pipelined strings.Builder
	for i := range 60 {
		fmt.Fprintf(&pipelined, "b%02d NOOP %s\r\n", i, strings.Repeat("p", 200))
	}
	w.send("a LOGIN alice " + quote(testPassword) + "\r\n" + pipelined.String())
	if got := w.line(); got != "a OK [CAPABILITY IMAP4rev1 ID IDLE LITERAL+ UIDPLUS] Logged in" {
		t.Fatalf("login: got %q, want OK with the backend's filtered capabilities", got)
	}
	for i := range 60 {
		w.expect(fmt.Sprintf("b%02d OK fake NOOP", i))
	}
	w.send("c NOOP\r\n")
	w.expect("c OK fake NOOP")
	want := `mf1 LOGIN "alice" "s3cret pass\"word\\"` + "\r\n" + pipelined.String() + "c NOOP\r\n"
	if got := fb.received(0); got != want {
		t.Errorf("backend received:\n%q\nwant:\n%q", got, want)
	}
}

// TestBackendLoginLiteral: values that cannot be quoted go to the backend
// as synchronizing literals, after its continuation.
func TestBackendLoginLiteral(t *testing.T) {
	t.Parallel()
	const pass = "p\u00e4ss w\u00f6rd"
	fb := startFake(t, func(fb *fakeBackend) { fb.users = map[string]string{"j\u00f6rg": pass} })
	e := startProxy(t, proxyConfig{Backend: fb.addr()})
	w := e.implicitReady(t)
	w.send("a LOGIN {5}\r\n")
	w.expect("+ ")
	w.send(fmt.Sprintf("j\u00f6rg {%d}\r\n", len(pass)))
	w.expect("+ ")
	w.send(pass + "\r\n")
	w.expect("a OK [CAPABILITY ")
	w.relayed()
	want := fmt.Sprintf("mf1 LOGIN {5}\r\nj\u00f6rg {%d}\r\n%s\r\nr NOOP\r\n", len(pass), pass)
	if got := fb.received(0); got != want {
		t.Errorf("backend received %q, want %q", got, want)
	}
}

// TestSTARTTLSRefusedUnderTLS is ARCHITECTURE.md invariant 7's last clause.
func TestSTARTTLSRefusedUnderTLS(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	for name, w := range map[string]*wire{"implicit": e.implicitReady(t), "twice": e.tlsReady(t)} {
		w.send("a STARTTLS\r\n")
		if got := w.line(); !strings.HasPrefix(got, "a BAD ") {
			t.Errorf("%s: got %q, want a BAD", name, got)
		}
		w.send("b NOOP\r\n")
		w.expect("b OK")
	}
}

// TestGreetingIsMailfronts is ARCHITECTURE.md invariant 10: no backend banner or
// version, before or after the backend's capabilities are known.
func TestGreetingIsMailfronts(t *testing.T) {
	t.Parallel()
	fb := startFake(t, nil)
	e := startProxy(t, proxyConfig{Backend: fb.addr()})
	check := func() {
		t.Helper()
		w := e.dialPlain(t)
		g := w.line()
		if !strings.HasPrefix(g, "* OK [CAPABILITY ") || !strings.HasSuffix(g, "] mailfront ready") || strings.Contains(g, "fake") {
			t.Errorf("greeting: got %q, want mailfront's own", g)
		}
		w.send("i ID NIL\r\n")
		if got := w.line(); got != `* ID ("name" "mailfront")` {
			t.Errorf("ID: got %q, want name only, no version", got)
		}
	}
	check()
	w := e.implicitReady(t)
	w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
	w.expect("a OK ")
	w.relayed()
	check()
}

// TestCrossProtocol: a first line in another protocol (a browser's
// request, an SMTP client, a TLS client on the STARTTLS port) gets a BYE
// and a close before anything else is read, as go-imap does against
// cross-protocol attacks; as a later line it is just a bad command.
func TestCrossProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, send, want string
		tls              bool
	}{
		{"http", "GET / HTTP/1.1\r\nHost: mail.example.com\r\n\r\n", "* BYE This is an IMAP server\r\n", false},
		{"http under TLS", "POST /login HTTP/1.1\r\n", "* BYE This is an IMAP server\r\n", true},
		{"smtp", "EHLO mail.example.com\r\n", "* BYE This is an IMAP server\r\n", false},
		{"tls client hello", "\x16\x03\x01\x00\xf4\x01\x00\x00\xf0", "* BYE This port speaks plaintext IMAP with STARTTLS, not TLS\r\n", false},
	}
	e := startProxy(t, proxyConfig{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.ready(t, tt.tls)
			w.send(tt.send)
			if got := w.closed(); got != tt.want {
				t.Fatalf("got %q, want %q and a close", got, tt.want)
			}
		})
	}
	t.Run("not the first line", func(t *testing.T) {
		w := e.greeted(t)
		w.send("a NOOP\r\nGET / HTTP/1.1\r\n")
		w.expect("a OK")
		w.expect("GET BAD ")
		w.send("b LOGOUT\r\n")
		w.tagged("b")
	})
	e.logs.Wait(len(tests), "session end", "outcome=protocol-error")
	e.stillServes(t)
}
