package proxy

import "time"

// The engine's defaults, each in one place: every zero-valued field of
// Limits, Server, Listener and Backend means the constant named in its doc
// comment. ARCHITECTURE.md says why each value is what it is, and
// README.md's configuration reference is checked against them.

// Default pre-login limits (Limits).
const (
	DefaultLine            = 8192
	DefaultLiteral         = 8192
	DefaultCommands        = 50
	DefaultInvalidCommands = 5
	// DefaultIdle is the pre-login idle limit: RFC 9051 section 5.4 asks
	// that a pre-authentication autologout timer be at least 1 minute.
	DefaultIdle      = 60 * time.Second
	DefaultTotal     = 3 * time.Minute
	DefaultHandshake = 10 * time.Second
	DefaultWrite     = 60 * time.Second
	// DefaultAuthFailures is how many refused logins one connection gets
	// before it is closed.
	DefaultAuthFailures = 3
)

// Default backend timeouts (Backend).
const (
	DefaultBackendConnect = 10 * time.Second
	DefaultBackendLogin   = 15 * time.Second
)

// Defaults for the zero values of Server, Listener and Backend fields.
const (
	// DefaultMaxConns caps connections across all listeners: with the
	// pre-login limits, about 20,000 file descriptors and 300 MB at the
	// worst (every connection mid-handshake), well within one small host.
	DefaultMaxConns = 20000
	// DefaultDrain is how long logged-in sessions get to finish at
	// shutdown before they are closed: long enough for a FETCH in flight,
	// short enough for a service manager's stop timeout (systemd: 90 s).
	DefaultDrain = 30 * time.Second
	// DefaultKeepalive is the TCP keepalive period on client and backend
	// sockets. A mail app that vanished (a phone that lost its network)
	// is found out after about ten minutes (nine probes), and NAT
	// gateways that forget quiet flows after a few minutes keep the IDLE
	// sessions' mappings.
	DefaultKeepalive = 60 * time.Second
)
