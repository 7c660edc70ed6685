package imap

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/imapmem"
	"github.com/mailfront/mailfront/proxy"
)

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	fb := startFake(t, nil)
	e := startProxy(t, proxyConfig{Backend: fb.addr()})
	w := e.implicitReady(t)
	for i := range proxy.DefaultAuthFailures {
		w.send("a LOGIN alice wrong-password-1\r\n")
		if got := w.line(); got != "a NO [AUTHENTICATIONFAILED] Authentication failed." {
			t.Fatalf("attempt %d: got %q, want the canonical failure (no backend text)", i+1, got)
		}
	}
	if got := w.closed(); got != "* BYE Too many authentication failures\r\n" {
		t.Errorf("after %d failures: got %q, want BYE and close", proxy.DefaultAuthFailures, got)
	}
	if n := fb.connections(); n != proxy.DefaultAuthFailures {
		t.Errorf("backend saw %d connections, want %d", n, proxy.DefaultAuthFailures)
	}
	logs := e.logs.String()
	if strings.Count(logs, `msg="login failed"`) != proxy.DefaultAuthFailures || !strings.Contains(logs, "user=alice outcome=auth-failed") {
		t.Errorf("want %d \"login failed\" lines with user and outcome", proxy.DefaultAuthFailures)
	}
	if strings.Contains(logs, "wrong-password-1") {
		t.Error("the password reached the logs")
	}
	e.stillServes(t)
}

// TestBackendDown is ARCHITECTURE.md invariant 8: an unreachable backend gets NO
// [UNAVAILABLE] promptly, is not counted as a failed password, and logins
// work again once it is back.
func TestBackendDown(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := startProxy(t, proxyConfig{Backend: addr})
	w := e.implicitReady(t)
	for i := range proxy.DefaultAuthFailures + 2 {
		start := time.Now()
		w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
		if got := w.line(); got != "a NO [UNAVAILABLE] Backend unavailable" {
			t.Fatalf("attempt %d: got %q, want NO [UNAVAILABLE]", i+1, got)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("attempt %d answered after %v, want promptly", i+1, d)
		}
	}
	// Backend trouble is not a failed password: no line fail2ban counts.
	if logs := e.logs.String(); strings.Contains(logs, `msg="login failed"`) || !strings.Contains(logs, `msg="backend unavailable"`) {
		t.Errorf("want \"backend unavailable\" lines and no \"login failed\" line for a backend that is down")
	}
	mem := imapmem.New(map[string]string{testUser: testPassword})
	if err := mem.Listen(addr); err != nil {
		t.Fatalf("backend back on %s: %v", addr, err)
	}
	t.Cleanup(func() { mem.Close() })
	w.send("b LOGIN alice " + quote(testPassword) + "\r\n")
	w.expect("b OK [CAPABILITY ")
	w.relayed()
}

func TestBackendUnusable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		greeting string
	}{
		{"never greets", ""},
		{"preauth", "* PREAUTH [CAPABILITY IMAP4rev1] welcome, no login needed"},
		{"bye", "* BYE [UNAVAILABLE] too busy"},
		{"garbage", "HTTP/1.1 400 Bad Request"},
		{"tagged greeting", "a1 OK hello"},
	}
	const login = 300 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := startFake(t, func(fb *fakeBackend) { fb.greeting = tt.greeting })
			e := startProxy(t, proxyConfig{Backend: fb.addr(), Login: login})
			w := e.implicitReady(t)
			start := time.Now()
			w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
			if got := w.line(); got != "a NO [UNAVAILABLE] Backend unavailable" {
				t.Fatalf("got %q, want NO [UNAVAILABLE]", got)
			}
			if d := time.Since(start); d > login+2*time.Second {
				t.Errorf("answered after %v, want within the %v login timeout", d, login)
			}
			w.send("b NOOP\r\n")
			w.expect("b OK")
			if strings.Contains(fb.received(0), "LOGIN") {
				t.Errorf("credentials sent to an unusable backend: %q", fb.received(0))
			}
		})
	}
}

func TestBackendLoginDisabledUsesAuthenticatePlain(t *testing.T) {
	t.Parallel()
	for _, saslIR := range []bool{true, false} {
		name := map[bool]string{true: "SASL-IR", false: "continuation"}[saslIR]
		t.Run(name, func(t *testing.T) {
			caps := "IMAP4rev1 LOGINDISABLED AUTH=PLAIN"
			if saslIR {
				caps += " SASL-IR"
			}
			fb := startFake(t, func(fb *fakeBackend) {
				fb.greeting = "* OK [CAPABILITY " + caps + "] fake"
				fb.preCaps = caps
			})
			e := startProxy(t, proxyConfig{Backend: fb.addr()})
			w := e.implicitReady(t)
			w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
			w.expect("a OK ")
			w.relayed()
			ir := plainIR("", testUser, testPassword)
			want := "mf1 AUTHENTICATE PLAIN " + ir + "\r\nr NOOP\r\n"
			if !saslIR {
				want = "mf1 AUTHENTICATE PLAIN\r\n" + ir + "\r\nr NOOP\r\n"
			}
			if got := fb.received(0); got != want {
				t.Errorf("backend received %q, want %q", got, want)
			}
		})
	}
}

// TestIDToBackend: one ID goes to the backend before the login, with the
// client's standard fields (the rest, x-originating-ip among them, stays
// behind) and, under client_address id (or auto, when the backend lists
// ID), the fields that tell the backend who the client is.
func TestIDToBackend(t *testing.T) {
	t.Parallel()
	clientID := `i ID ("name" "Thunderbird" "version" "115.0" "x-originating-ip" "6.6.6.6" "os" NIL "vendor" {4}` + "\r\n"
	clientFields := `"name" "Thunderbird" "version" "115.0" "os" NIL "vendor" "Moz."`
	login := `LOGIN "alice" ` + quote(testPassword) + "\r\n"
	tests := []struct {
		name, caps, mode string
		clientID         bool
		want             string // %s: the peer's fields
	}{
		{"none, backend has ID", "IMAP4rev1 ID", "none", true, "mf1 ID (" + clientFields + ")\r\nmf2 " + login},
		{"none, backend lacks ID", "IMAP4rev1", "none", true, "mf1 " + login},
		{"auto, backend has ID", "IMAP4rev1 ID", "auto", true, "mf1 ID (%s " + clientFields + ")\r\nmf2 " + login},
		{"auto, no client ID", "IMAP4rev1 ID", "auto", false, "mf1 ID (%s)\r\nmf2 " + login},
		{"auto, backend lacks ID", "IMAP4rev1", "auto", true, "mf1 " + login},
		{"id, backend lacks ID", "IMAP4rev1", "id", false, "mf1 ID (%s)\r\nmf2 " + login},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fb := startFake(t, func(fb *fakeBackend) { fb.greeting = "* OK [CAPABILITY " + tt.caps + "] fake" })
			e := startProxy(t, proxyConfig{Backend: fb.addr(), ClientAddress: tt.mode})
			w := e.implicitReady(t)
			if tt.clientID {
				w.send(clientID)
				w.expect("+ Ready")
				w.send("Moz.)\r\n")
				w.expect(`* ID ("name" "mailfront")`)
				w.expect("i OK")
			}
			w.send("a " + login + "z NOOP\r\n")
			w.expect("a OK ")
			w.expect("z OK fake NOOP")
			want := tt.want
			if strings.Contains(want, "%s") {
				client, local := w.c.LocalAddr().String(), e.implicit.Addr().String()
				want = fmt.Sprintf(want, peerFields(t, client, local, "mailfront-1"))
			}
			if got := fb.received(0); got != want+"z NOOP\r\n" {
				t.Errorf("backend received %q, want %q", got, want+"z NOOP\r\n")
			}
		})
	}
}

// peerFields are the ID fields naming client and local (host:port).
func peerFields(t *testing.T, client, local, session string) string {
	t.Helper()
	ch, cp, err1 := net.SplitHostPort(client)
	lh, lp, err2 := net.SplitHostPort(local)
	if err1 != nil || err2 != nil {
		t.Fatalf("addresses %q %q", client, local)
	}
	return fmt.Sprintf(`"x-originating-ip" %q "x-originating-port" %q "x-connected-ip" %q "x-connected-port" %q "x-session-id" %q`, ch, cp, lh, lp, session)
}

// TestIDBeforeSTARTTLSForgotten: an ID sent in cleartext before STARTTLS
// (which an attacker on the path may have written) never reaches the
// backend; one sent after it does.
func TestIDBeforeSTARTTLSForgotten(t *testing.T) {
	t.Parallel()
	fb := startFake(t, func(fb *fakeBackend) { fb.greeting = "* OK [CAPABILITY IMAP4rev1 ID] fake" })
	e := startProxy(t, proxyConfig{Backend: fb.addr(), ClientAddress: "none"})
	for i, after := range []bool{false, true} {
		w := e.greeted(t)
		if !after {
			w.send(`i ID ("name" "injected" "vendor" "evil")` + "\r\n")
			w.expect(`* ID ("name" "mailfront")`)
			w.expect("i OK")
		}
		w.send("s STARTTLS\r\n")
		w.expect("s OK ")
		w.upgrade(e.client)
		if after {
			w.send(`j ID ("name" "honest")` + "\r\n")
			w.expect(`* ID ("name" "mailfront")`)
			w.expect("j OK")
		}
		w.send("a LOGIN alice " + quote(testPassword) + "\r\nz NOOP\r\n")
		w.expect("a OK ")
		w.expect("z OK fake NOOP")
		got := fb.received(i)
		if strings.Contains(got, "injected") || strings.Contains(got, "evil") {
			t.Errorf("the cleartext ID reached the backend: %q", got)
		}
		if after && !strings.HasPrefix(got, `mf1 ID ("name" "honest")`) {
			t.Errorf("control: an ID after STARTTLS did not reach the backend: %q", got)
		}
	}
}

// TestBackendCapabilityLearnt: without capabilities in the greeting or the
// login reply, mailfront asks on the login connection itself, and uses what
// it learnt for later sessions.
func TestBackendCapabilityLearnt(t *testing.T) {
	t.Parallel()
	fb := startFake(t, func(fb *fakeBackend) {
		fb.greeting = "* OK fake ready"
		fb.preCaps = "IMAP4rev1 IDLE LITERAL+"
		fb.postCaps = ""
	})
	e := startProxy(t, proxyConfig{Backend: fb.addr()})
	for i, want := range []string{
		"mf1 CAPABILITY\r\nmf2 LOGIN \"alice\" " + quote(testPassword) + "\r\nmf3 CAPABILITY\r\n",
		"mf1 LOGIN \"alice\" " + quote(testPassword) + "\r\nmf2 CAPABILITY\r\n",
	} {
		w := e.implicitReady(t)
		w.send("a LOGIN alice " + quote(testPassword) + "\r\nz NOOP\r\n")
		w.expect("a OK [CAPABILITY IMAP4rev1 IDLE LITERAL+] Logged in")
		w.expect("z OK fake NOOP")
		if got := fb.received(i); got != want+"z NOOP\r\n" {
			t.Errorf("login %d: backend received %q, want %q", i+1, got, want+"z NOOP\r\n")
		}
	}
	known, fresh := e.handler.Caps.Fresh()
	if got := strings.Join(advertised(known, true), " "); !fresh || !strings.Contains(got, "LITERAL- IDLE") {
		t.Errorf("advertised after learning: got %q, want LITERAL- and IDLE", got)
	}
}

// TestShutdownSaysByeToRelayedSession: at the end of the shutdown drain a
// logged-in session whose backend is quiet is told BYE before the close
// (RFC 9051 section 7.1.5), so that the mail app reconnects at once.
func TestShutdownSaysByeToRelayedSession(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	w := e.implicitReady(t)
	w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
	w.expect("a OK ")
	w.relayed()
	// The drain (a second) is longer than the quiet the relay waits for.
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := w.closed(); got != "* BYE [UNAVAILABLE] Server shutting down\r\n" {
		t.Errorf("got %q, want the BYE and then the close", got)
	}
}

func TestShutdownSaysGoodbye(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	w := e.implicitReady(t)
	done := make(chan error, 1)
	go func() { done <- e.srv.Shutdown(context.Background()) }()
	if got := w.closed(); got != "* BYE [UNAVAILABLE] Server shutting down\r\n" {
		t.Errorf("got %q, want the shutdown BYE", got)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// TestLoopbackSourceLogged: under client_address loopback the login's log
// line names the address the backend saw the client's session come from,
// one of the client's own in 127.0.0.0/8, not mailfront's 127.0.0.1.
func TestLoopbackSourceLogged(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{ClientAddress: "loopback"})
	w := e.implicitReady(t)
	w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
	w.expect("a OK ")
	w.relayed()
	line := e.logs.Wait(1, "msg=login", "backend_source=127.")
	if strings.Contains(line, "backend_source=127.0.0.1 ") {
		t.Errorf("login line %s: want a source of the client's own", line)
	}
	w2 := e.implicitReady(t)
	w2.send("b LOGIN alice wrong-password\r\n")
	w2.expect("b NO ")
	e.logs.Wait(1, `msg="login failed"`, "backend_source=127.")
}

// TestBackendRefusalKinds: what the backend says when it refuses a login
// decides whether it counts as a wrong password. RFC 5530's codes for
// trouble that is not the password's, a BAD (the password was never
// checked) and a BYE during the login are backend trouble: never a
// "login failed" line fail2ban counts; INUSE is a busy mailbox; a NO with
// no code, or a code that says nothing about trouble, is a wrong password
// (ARCHITECTURE.md, "Backend trouble or a wrong password").
func TestBackendRefusalKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		refusal, reply, log string
	}{
		{"%s NO [UNAVAILABLE] authentication service down", "a NO [UNAVAILABLE] Backend unavailable", `msg="backend unavailable"`},
		{"%s NO [SERVERBUG] internal error", "a NO [UNAVAILABLE] Backend unavailable", `msg="backend unavailable"`},
		{"%s NO [PRIVACYREQUIRED] plaintext login disallowed", "a NO [UNAVAILABLE] Backend unavailable", "allowplaintext"},
		{"%s NO [EXPIRED] password expired", "a NO [EXPIRED] The backend says your password or account has expired", `msg="backend unavailable"`},
		{"%s NO [CONTACTADMIN] account locked", "a NO [CONTACTADMIN] The backend refuses this login: contact your administrator", `msg="backend unavailable"`},
		{"%s BAD invalid characters in argument", "a NO [UNAVAILABLE] Backend unavailable", `msg="backend unavailable"`},
		// Courier's imapd when its authdaemon is down.
		{"* BYE Temporary problem, please try again later", "a NO [UNAVAILABLE] Backend unavailable", `msg="backend unavailable"`},
		// Cyrus when its sasldb cannot be read.
		{"%s NO Login failed: generic failure", "a NO [UNAVAILABLE] Backend unavailable", `msg="backend unavailable"`},
		{"%s NO Login failed: authentication failure", "a NO [AUTHENTICATIONFAILED] Authentication failed.", `msg="login failed"`},
		{"%s NO [INUSE] mailbox locked", "a NO [INUSE] Mailbox in use; try again later", `msg="mailbox busy"`},
		{"%s NO Login failed.", "a NO [AUTHENTICATIONFAILED] Authentication failed.", `msg="login failed"`},
		{"%s NO [AUTHENTICATIONFAILED] Authentication failed.", "a NO [AUTHENTICATIONFAILED] Authentication failed.", `msg="login failed"`},
		{"%s NO [ALERT] your password is wrong", "a NO [AUTHENTICATIONFAILED] Authentication failed.", `msg="login failed"`},
	}
	for _, tt := range tests {
		t.Run(tt.refusal, func(t *testing.T) {
			t.Parallel()
			fb := startFake(t, func(fb *fakeBackend) { fb.refusal = tt.refusal })
			e := startProxy(t, proxyConfig{Backend: fb.addr()})
			w := e.implicitReady(t)
			w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
			if got := w.line(); got != tt.reply {
				t.Errorf("client got %q, want %q", got, tt.reply)
			}
			e.logs.WaitFor(t, 1, tt.log)
			failed := e.logs.Count(`msg="login failed"`)
			if want := strings.Contains(tt.log, "login failed"); (failed > 0) != want {
				t.Errorf("%d login failed lines, want %v:\n%s", failed, want, e.logs)
			}
		})
	}
}
