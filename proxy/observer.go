package proxy

import "time"

// Observer receives what the engine and the protocol handlers see, for
// metrics. Every argument is from a small fixed set (listener and protocol
// names from the configuration, outcomes, TLS parameters), never a user
// name or an address. Package metrics implements it; nil observes nothing.
// The methods are called on the connections' goroutines and must be cheap
// and safe for concurrent use.
type Observer interface {
	// ConnectionRefused counts a connection turned away before its
	// session started; reason is the Gate's label.
	ConnectionRefused(listener, reason string)
	// SessionStarted counts a session entering its pre-login phase.
	SessionStarted(listener string)
	// SessionRelayed moves a session from pre-login to relayed.
	SessionRelayed(listener string)
	// SessionEnded counts a session's end with its outcome and the bytes
	// relayed after login (in: from the client, out: to it); relayed says
	// whether it had reached the relay.
	SessionEnded(listener string, outcome Outcome, relayed bool, in, out int64)
	// Handshake counts a completed TLS handshake.
	Handshake(listener string, version, cipher uint16)
	// HandshakeFailed counts a failed one; reason is from a small set
	// (see HandshakeFailureReason).
	HandshakeFailed(listener, reason string)
	// Login counts a login attempt the backend answered (or failed to)
	// and how long the backend took.
	Login(protocol string, result LoginResult, latency time.Duration)
	// LoginRefused counts a login the guard refused before the backend.
	LoginRefused(protocol string)
	// PlaintextRefused counts a login attempted before TLS.
	PlaintextRefused(protocol string)
	// GuardDelay records a failure penalty a client waited.
	GuardDelay(d time.Duration)
	// BackendDialFailed counts a backend that could not be reached.
	BackendDialFailed(protocol string)
	// ProxyHeader counts a PROXY header read from a trusted balancer, or
	// refused; result is one of HeaderResults.
	ProxyHeader(listener, result string)
	// SelfTestFailed counts a shortcut past the standard library that
	// failed its self-test at start and is off (ShortcutTLSBufferRelease).
	SelfTestFailed(shortcut string)
}
