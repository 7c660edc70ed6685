package imap

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/mailfront/mailfront/internal/gatetest"
	"github.com/mailfront/mailfront/proxy"
)

// TestGuardVerdicts: every login attempt goes through the gate, which
// hears the backend's verdict: a wrong password is a failure, a right one
// a success, and backend trouble neither (ARCHITECTURE.md invariant 8).
func TestGuardVerdicts(t *testing.T) {
	t.Parallel()
	g := &gatetest.Gate{}
	e := startProxy(t, proxyConfig{Gate: g})
	w := e.implicitReady(t)
	w.send("a LOGIN alice wrong\r\n")
	w.expect("a NO [AUTHENTICATIONFAILED]")
	w.send("b LOGIN alice " + quote(testPassword) + "\r\n")
	w.tagged("b")
	w.relayed()

	down := &gatetest.Gate{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	d := startProxy(t, proxyConfig{Gate: down, Backend: closed})
	w = d.implicitReady(t)
	w.send("c LOGIN alice wrong\r\n")
	w.expect("c NO [UNAVAILABLE]")

	if got, want := g.Results(), []proxy.LoginResult{proxy.LoginFailed, proxy.LoginOK}; !slices.Equal(got, want) {
		t.Errorf("verdicts: got %v, want %v", got, want)
	}
	if got, want := down.Results(), []proxy.LoginResult{proxy.LoginBackendError}; !slices.Equal(got, want) {
		t.Errorf("backend down: got %v, want %v", got, want)
	}
}

// TestGuardRefusesLogin: a login the guard refuses (blocked network, too
// many in flight) never reaches the backend; the client is told to come
// back later and the connection ends.
func TestGuardRefusesLogin(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{Gate: &gatetest.Gate{LoginErr: proxy.ErrLoginRefused}})
	w := e.implicitReady(t)
	w.send("a LOGIN alice wrong\r\n")
	w.expect("a NO [UNAVAILABLE]")
	if got := w.closed(); !strings.HasPrefix(got, "* BYE [UNAVAILABLE]") {
		t.Errorf("got %q, want BYE [UNAVAILABLE] and a close", got)
	}
	if n := e.dials.Load(); n != 0 {
		t.Errorf("backend dialled %d times, want 0", n)
	}
	if !strings.Contains(e.logs.String(), `msg="login refused by the guard"`) {
		t.Error("no log line for the refused login")
	}
}

// TestGuardRefusedConnectionGetsBYE: on the STARTTLS listener a network
// the guard refuses gets BYE [UNAVAILABLE] instead of the greeting; on the
// implicit TLS listener, nothing at all.
func TestGuardRefusedConnectionGetsBYE(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{Gate: &gatetest.Gate{Verdict: proxy.Refuse}})
	if got := e.dialPlain(t).closed(); !strings.HasPrefix(got, "* BYE [UNAVAILABLE]") {
		t.Errorf("STARTTLS listener: got %q, want BYE [UNAVAILABLE] first", got)
	}
}

// TestPlaintextRefusalText: the listener's own text replaces the default,
// which names port 993.
func TestPlaintextRefusalText(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ text, want string }{
		{"", "a NO [PRIVACYREQUIRED] TLS is required to log in: use STARTTLS, or SSL/TLS on port 993"},
		{"Please switch to port 993, see https://example.com/mail", "a NO [PRIVACYREQUIRED] Please switch to port 993, see https://example.com/mail"},
	} {
		e := startProxy(t, proxyConfig{Refusal: tt.text})
		w := e.greeted(t)
		w.send("a LOGIN alice secret\r\n")
		if got := w.line(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

// TestAuthFailuresLimit: the per-connection failure cap is configurable.
func TestAuthFailuresLimit(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{Limits: proxy.Limits{AuthFailures: 1}})
	w := e.implicitReady(t)
	w.send("a LOGIN alice wrong\r\n")
	w.expect("a NO [AUTHENTICATIONFAILED]")
	if got := w.closed(); got != "* BYE Too many authentication failures\r\n" {
		t.Errorf("after 1 failure: got %q, want BYE and close", got)
	}
}
