package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// Errors returned by Conn reads. Protocol handlers map them to the wire
// (IMAP BYE, POP3 -ERR) in one place each.
var (
	// ErrShutdown means the server is shutting down; the handler should
	// send its "unavailable" goodbye and return.
	ErrShutdown = errors.New("proxy: server shutting down")
	// ErrIdle means the peer sent nothing for Limits.Idle.
	ErrIdle = errors.New("proxy: idle timeout")
	// ErrTotalTime means the pre-authentication phase lasted longer than Limits.Total.
	ErrTotalTime = errors.New("proxy: session time limit")
	// ErrTLSActive means STARTTLS was requested on a connection already under TLS.
	ErrTLSActive = errors.New("proxy: tls already active")
	// ErrCrossProtocol means the client's first line belongs to another
	// protocol (see CrossProtocolError).
	ErrCrossProtocol = errors.New("proxy: another protocol's request")
	// ErrLogout is a handler's way of ending a session after the client's
	// LOGOUT or QUIT was answered (outcome logout).
	ErrLogout = errors.New("proxy: client logged out")
)

// LimitKind names a bound on what a client may send before login.
type LimitKind uint8

// The bounds a LimitError can name.
const (
	LimitLine            LimitKind = iota + 1 // Limits.Line: one command line
	LimitLiteral                              // Limits.Literal: an IMAP command's literals
	LimitCommands                             // Limits.Commands: commands before login
	LimitInvalidCommands                      // Limits.InvalidCommands: refused commands
)

func (k LimitKind) String() string {
	switch k {
	case LimitLine:
		return "line length"
	case LimitLiteral:
		return "literal size"
	case LimitCommands:
		return "commands"
	case LimitInvalidCommands:
		return "invalid commands"
	}
	return "unknown"
}

// LimitError reports that a peer crossed a configured bound. Kind names the
// bound so that the reply can name it too.
type LimitError struct {
	Kind LimitKind
	Max  int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("proxy: %s limit exceeded (max %d)", e.Kind, e.Max)
}

// Outcome is the session outcome the limit ends a session with: too many
// invalid commands is a protocol error, the others are limits.
func (e *LimitError) Outcome() Outcome {
	if e.Kind == LimitInvalidCommands {
		return OutcomeProtocolError
	}
	return OutcomeLimit
}

// CrossProtocolError is the first line of a client speaking another
// protocol to a mail port: a web browser tricked into posting to it, a
// mail server's SMTP, a TLS client on a plaintext listener. It is never
// answered as the mail protocol (cross-protocol attacks: the ALPACA paper,
// Mozilla's port banning); the handler says goodbye and closes.
type CrossProtocolError struct {
	Protocol string // "http", "smtp", "tls" or "proxy" (a PROXY header from a source not trusted to send one)
}

func (e *CrossProtocolError) Error() string {
	return "proxy: the client speaks " + e.Protocol
}

// Is makes errors.Is(err, ErrCrossProtocol) true.
func (e *CrossProtocolError) Is(target error) bool { return target == ErrCrossProtocol }

// clientGone reports whether err means the client went away: an end of
// stream, a reset, a broken pipe or a closed connection. Such an end is the
// client's doing, never a bug (outcome client-closed).
func clientGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}
