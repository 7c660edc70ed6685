package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/netip"
	"time"
)

// TLSMode is how a listener starts TLS.
type TLSMode int

const (
	// Implicit listeners (993, 995) handshake before the first byte.
	Implicit TLSMode = iota
	// STARTTLS listeners (143, 110) greet in plaintext and upgrade on request.
	STARTTLS
)

func (m TLSMode) String() string {
	if m == Implicit {
		return "implicit"
	}
	return "starttls"
}

// Outcome says how a session ended. The values are a closed set so they can
// label metrics.
type Outcome string

// Session outcomes.
const (
	OutcomeOK              Outcome = "ok"               // logged in and relayed
	OutcomeLogout          Outcome = "logout"           // client said LOGOUT/QUIT before logging in
	OutcomeAuthFailed      Outcome = "auth-failed"      // the backend refused the credentials
	OutcomePrivacyRequired Outcome = "privacy-required" // a login was attempted before TLS
	OutcomeBackendDown     Outcome = "backend-down"     // the backend could not be reached or did not answer
	OutcomeLimit           Outcome = "limit"            // a pre-login limit was hit
	OutcomeTimeout         Outcome = "timeout"          // idle or total time ran out
	OutcomeClientClosed    Outcome = "client-closed"    // the client went away before logging in
	OutcomeTLSFailed       Outcome = "tls-failed"       // the TLS handshake failed
	OutcomeProtocolError   Outcome = "protocol-error"   // too many invalid commands, or another protocol's first line
	OutcomeShutdown        Outcome = "shutdown"         // the server shut down
	OutcomeInternal        Outcome = "internal-error"   // a bug or an unexpected error
	OutcomeRefused         Outcome = "refused"          // the guard turned the client away
	OutcomeMailboxBusy     Outcome = "mailbox-busy"     // the backend took the password but not the session now (POP3 IN-USE, LOGIN-DELAY)
)

// Outcomes lists every Outcome, for metrics that show each at 0 before it
// first happens.
var Outcomes = []Outcome{
	OutcomeOK, OutcomeLogout, OutcomeAuthFailed, OutcomePrivacyRequired, OutcomeBackendDown,
	OutcomeLimit, OutcomeTimeout, OutcomeClientClosed, OutcomeTLSFailed, OutcomeProtocolError,
	OutcomeShutdown, OutcomeInternal, OutcomeRefused, OutcomeMailboxBusy,
}

// Session is one client connection during its pre-authentication phase. The
// engine fills it in; the handler records User and Outcome as it goes.
type Session struct {
	ID        uint64
	Conn      *Conn
	Listener  string
	Protocol  string
	Mode      TLSMode
	TLSConfig *tls.Config // for STARTTLS
	Log       *slog.Logger
	Addr      netip.Addr // the client's address, for the gate
	// Client is the client's address and port: the peer's, or the one a
	// trusted balancer's PROXY header named (the log's via= is the
	// balancer).
	Client   netip.AddrPort
	Gate     Gate     // nil: no guard
	Observer Observer // nil: no metrics
	// PlaintextRefusal is the listener's text for refusing a login before
	// TLS; "" means the handler's default.
	PlaintextRefusal string

	// Set by the handler (or through the methods below).
	User       string
	Outcome    Outcome
	StartedTLS bool // TLS came from STARTTLS/STLS rather than the listener

	// What this connection has been charged so far against Limits.
	commands, invalid, failures int

	// local is where the client connected, when a PROXY header said so.
	local netip.AddrPort
	// balancer: a PROXY header said this is the balancer's own connection.
	balancer bool
	// inAtTLS is how many bytes the client had sent when its handshake
	// completed: none since means it left without a word under TLS.
	inAtTLS int64
	// peer is what the backend is told of the client, made on first use.
	peer *Peer
}

// SetOutcome records why the session ends. The last outcome set wins,
// except that a quiet end (logout, client-closed) never replaces an
// earlier one: a refused login followed by LOGOUT is still a refused login.
func (s *Session) SetOutcome(o Outcome) {
	if o == "" || (o == OutcomeLogout || o == OutcomeClientClosed) && s.Outcome != "" {
		return
	}
	s.Outcome = o
}

// CountCommand charges one command against Limits.Commands.
func (s *Session) CountCommand() error {
	s.commands++
	if limit := s.Conn.Limits().Commands; s.commands > limit {
		return &LimitError{Kind: LimitCommands, Max: int64(limit)}
	}
	return nil
}

// CountInvalid charges one refused command against Limits.InvalidCommands.
func (s *Session) CountInvalid() error {
	s.invalid++
	if limit := s.Conn.Limits().InvalidCommands; s.invalid > limit {
		return &LimitError{Kind: LimitInvalidCommands, Max: int64(limit)}
	}
	return nil
}

// TooManyFailures reports whether the backend has refused as many logins on
// this connection as Limits.AuthFailures allows: the refusal of the last
// one ends the connection.
func (s *Session) TooManyFailures() bool { return s.failures >= s.Conn.Limits().AuthFailures }

// StartTLS upgrades the client connection with the listener's TLS config and
// logs any plaintext bytes it discarded on the way. It returns ErrRefused,
// before any handshake, when the gate refuses one more from the client's
// network. Either failure records the session's outcome (refused,
// tls-failed, or shutdown when the server stopped meanwhile).
func (s *Session) StartTLS(ctx context.Context) error {
	if s.Gate != nil && !s.Gate.Handshake(s.Addr) {
		s.SetOutcome(OutcomeRefused)
		if s.Observer != nil {
			s.Observer.ConnectionRefused(s.Listener, "handshake rate")
		}
		return ErrRefused
	}
	n, err := s.Conn.StartTLS(ctx, s.TLSConfig)
	if n > 0 {
		s.Log.Warn("discarded bytes sent before tls handshake", "bytes", n)
	}
	if err := s.handshaken(err); err != nil {
		return err
	}
	s.StartedTLS = true
	return nil
}

// RefusePlaintext records a login attempted before TLS (ARCHITECTURE.md
// invariant 1): the outcome, the log line operators use to find the users
// whose mail apps still need changing (with the user name when the command
// carries one, never a password), and the metric. It returns the text to
// refuse it with: the listener's, else def.
func (s *Session) RefusePlaintext(command, user, def string) string {
	s.SetOutcome(OutcomePrivacyRequired)
	attrs := []any{"command", command}
	if user != "" {
		attrs = append(attrs, "user", user)
	}
	s.Log.Info("plaintext login refused", attrs...)
	if s.Observer != nil {
		s.Observer.PlaintextRefused(s.Protocol)
	}
	if s.PlaintextRefusal != "" {
		return s.PlaintextRefusal
	}
	return def
}

// handshaken reports a handshake's result (implicit TLS or STARTTLS) to
// the observer and, for a failure, records the outcome: tls-failed, or
// shutdown when the server stopped it. It returns err.
func (s *Session) handshaken(err error) error {
	if err != nil && s.balancer && HandshakeFailureReason(err) == "client-closed" {
		// A balancer's health check closing after its header: not a
		// client whose handshake failed.
		s.SetOutcome(OutcomeClientClosed)
		return err
	}
	if err != nil {
		s.SetOutcome(OutcomeTLSFailed)
		if s.Conn.Stopped() {
			s.SetOutcome(OutcomeShutdown)
		}
	} else {
		s.inAtTLS, _ = s.Conn.Counts()
	}
	if s.Observer == nil {
		return err
	}
	if err != nil {
		s.Observer.HandshakeFailed(s.Listener, HandshakeFailureReason(err))
	} else if st := s.Conn.TLS(); st != nil {
		s.Observer.Handshake(s.Listener, st.Version, st.CipherSuite)
	}
	return err
}

// Handoff is what a handler returns after the backend accepted a login: the
// logged-in backend connection, whose unread bytes go to the client first.
type Handoff struct {
	Backend *Conn
	// Idle is the post-login idle limit for this protocol (RFC 9051 5.4:
	// at least 30 minutes for IMAP; RFC 1939 section 3: 10 for POP3).
	Idle time.Duration
	// Goodbye, when set, is the line a relayed session is told when the
	// shutdown drain ends it while the backend is quiet (IMAP's BYE); POP3
	// has none to say.
	Goodbye []byte
}

// Handler runs one protocol's pre-authentication dialogue. Serve returns a
// Handoff once the backend has accepted the client's login, or nil when the
// session ended before that; it records why in s.Outcome. When ctx is
// cancelled (shutdown), reads on s.Conn fail with ErrShutdown and the handler
// should say goodbye and return.
type Handler interface {
	Serve(ctx context.Context, s *Session) (*Handoff, error)
}
