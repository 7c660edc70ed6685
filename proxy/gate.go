package proxy

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// Verdict is a Gate's answer about a new connection.
type Verdict int

const (
	// Admit lets the connection in.
	Admit Verdict = iota
	// Deny closes it without a word: the address is not allowed here
	// (allow and deny lists).
	Deny
	// Refuse turns it away: an implicit TLS listener closes it before the
	// handshake, a STARTTLS listener's handler says its protocol's
	// goodbye (IMAP "* BYE [UNAVAILABLE]", POP3 "-ERR [SYS/TEMP]").
	Refuse
)

// LoginResult is the backend's verdict on one login attempt.
type LoginResult int

const (
	// LoginOK: the backend accepted the credentials.
	LoginOK LoginResult = iota
	// LoginFailed: the backend refused the credentials.
	LoginFailed
	// LoginBackendError: the backend could not be asked (down, timeout,
	// protocol trouble); never counted against the client.
	LoginBackendError
	// LoginBusy: the backend accepted the credentials but not the session
	// now (POP3 [IN-USE]: the maildrop is locked; [LOGIN-DELAY]: polled
	// too soon, RFC 2449 section 8, RFC 3206). Not a failed password:
	// never counted against the client, nor as a success.
	LoginBusy
)

// ErrLoginRefused is returned by Gate.Login when the client's network has
// too many logins in flight or is blocked: the login is not attempted.
var ErrLoginRefused = errors.New("proxy: login refused by the guard")

// ErrRefused is returned by Session.StartTLS when the gate refuses the
// handshake (too many new handshakes from the client's network).
var ErrRefused = errors.New("proxy: connection refused by the guard")

// Gate decides about connections and login attempts by client address. The
// engine asks it about every connection and handshake, the protocol
// handlers (through Session.Login) about every login. Package guard
// implements it; a nil Gate admits everything.
type Gate interface {
	// Connect is asked on the accept goroutine for every new connection,
	// before a byte is read or written, so it must be cheap. When it
	// admits, release is called once when the connection ends. reason is
	// a short fixed label for logs and metrics ("deny", "blocked",
	// "network connections", "handshake rate").
	Connect(listener string, addr netip.Addr) (v Verdict, reason string, release func())
	// Handshake is asked before a STARTTLS handshake; false refuses it.
	// (Implicit TLS connections are counted by Connect.)
	Handshake(addr netip.Addr) bool
	// Login is asked before a login is sent to the backend. It may wait
	// (while the client's network or the user is penalised) until ctx
	// ends, or refuse with ErrLoginRefused. done reports the backend's
	// verdict once and returns how long to wait before answering the
	// client (the failure penalty); it must be called exactly once.
	Login(ctx context.Context, addr netip.Addr, user, password string) (done func(LoginResult) time.Duration, err error)
}
