package pop3

import (
	"slices"
	"testing"

	"github.com/mailfront/mailfront/internal/gatetest"
	"github.com/mailfront/mailfront/proxy"
)

// TestGuardVerdicts: every login attempt goes through the gate, which
// hears the backend's verdict: a wrong password is a failure, a right one
// a success, backend trouble neither (ARCHITECTURE.md invariant 8).
func TestGuardVerdicts(t *testing.T) {
	t.Parallel()
	g := &gatetest.Gate{}
	f := startProxy(t, withGate(g))
	w := f.tlsReady(t, "implicit")
	w.send("USER alice", "PASS "+wrongPassword)
	w.expectPrefix("+OK")
	w.expect("-ERR [AUTH] Authentication failed")
	f.down.Store(true)
	w.send("USER alice", "PASS "+alicePassword)
	w.expectPrefix("+OK")
	w.expect("-ERR [SYS/TEMP] Backend unavailable")
	f.down.Store(false)
	w.send("USER alice", "PASS "+alicePassword)
	w.expectPrefix("+OK")
	w.expect("+OK Logged in")
	w.send("QUIT")
	w.expectPrefix("+OK")
	want := []proxy.LoginResult{proxy.LoginFailed, proxy.LoginBackendError, proxy.LoginOK}
	if got := g.Results(); !slices.Equal(got, want) {
		t.Errorf("verdicts: got %v, want %v", got, want)
	}
}

// TestGuardRefusesLogin: a login the guard refuses never reaches the
// backend; the client gets -ERR [SYS/TEMP] and the connection ends.
func TestGuardRefusesLogin(t *testing.T) {
	t.Parallel()
	f := startProxy(t, withGate(&gatetest.Gate{LoginErr: proxy.ErrLoginRefused}))
	w := f.tlsReady(t, "implicit")
	w.send("USER alice", "PASS "+wrongPassword)
	w.expectPrefix("+OK")
	w.expectPrefix("-ERR [SYS/TEMP] Too many login attempts")
	w.closed()
	if n := f.dials.Load(); n != 0 {
		t.Errorf("backend dialled %d times, want 0", n)
	}
}

// TestGuardRefusedConnection: on the STLS listener a network the guard
// refuses gets -ERR [SYS/TEMP] instead of the greeting.
func TestGuardRefusedConnection(t *testing.T) {
	t.Parallel()
	f := startProxy(t, withGate(&gatetest.Gate{Verdict: proxy.Refuse}))
	w := f.dialPlain(t)
	w.expectPrefix("-ERR [SYS/TEMP] Too many connections")
	w.closed()
	f.sessions.Add(-1) // turned away before a session started: no "session end" line
}

// TestPlaintextRefusalText: the listener's own text replaces the default.
func TestPlaintextRefusalText(t *testing.T) {
	t.Parallel()
	f := startProxy(t, withRefusal("Please use port 995, see https://example.com/mail"), forbidBackend())
	w := f.greeted(t)
	w.send("USER alice")
	w.expect("-ERR [AUTH] Please use port 995, see https://example.com/mail")
}
