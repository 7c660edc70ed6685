package proxy

import (
	"math"
	"time"
)

// The engine's defaults, each in one place: every zero-valued field of
// Limits, Server, Listener and Backend means the constant named in its doc
// comment, and the functions at the end of this file are the one place
// that resolves a configured value to the value in force. ARCHITECTURE.md
// says why each value is what it is, and README.md's configuration
// reference is checked against them (cmd/mailfront's `validate
// --effective` prints what these functions return).

// Default pre-login limits (Limits).
const (
	// DefaultLine is the longest pre-login command line, in bytes: RFC
	// 2683 section 3.2.1.5 asks servers to take lines of 8000 octets; a
	// LOGIN or an AUTHENTICATE PLAIN response never comes near it.
	DefaultLine = 8192
	// DefaultLiteral is the largest pre-login IMAP literal, in bytes: a
	// user name or a password, never a message.
	DefaultLiteral = 8192
	// DefaultCommands is how many commands a client may send before it
	// logs in: a mail app needs a handful (CAPABILITY, ID, STARTTLS,
	// LOGIN); fifty leaves room for chatty ones and stops a client that
	// probes forever.
	DefaultCommands = 50
	// DefaultInvalidCommands is how many rejected commands a client may
	// send before logging in: a real client sends none; a few allow for a
	// mistyped command in a manual session.
	DefaultInvalidCommands = 5
	// DefaultIdle is the pre-login idle limit: RFC 9051 section 5.4 asks
	// that a pre-authentication autologout timer be at least 1 minute.
	// Longer only lets idle scanners hold connections.
	DefaultIdle = 60 * time.Second
	// DefaultTotal is the longest pre-login phase, however busy the
	// client: a client dripping a byte a minute is dropped after it.
	DefaultTotal = 3 * time.Minute
	// DefaultHandshake is the longest TLS handshake: a phone on a poor
	// network needs a few round trips; a client that stalls mid-handshake
	// holds a connection and a goroutine.
	DefaultHandshake = 10 * time.Second
	// DefaultWrite is the longest blocked write before login.
	DefaultWrite = 60 * time.Second
	// DefaultAuthFailures is how many refused logins one connection gets
	// before it is closed: enough for a user retyping a password twice,
	// few enough that a guesser must reconnect (and handshake) often.
	DefaultAuthFailures = 3
)

// Default backend timeouts (Backend).
const (
	// DefaultBackendConnect is the backend dial timeout: a backend on the
	// same host or network answers in milliseconds; ten seconds covers a
	// busy one without leaving a client waiting on a dead one for long.
	DefaultBackendConnect = 10 * time.Second
	// DefaultBackendLogin bounds the backend's greeting and login reply:
	// long enough for a slow password hash and a backend's own failure
	// delay (Dovecot's is 2 s), short enough that the client gets
	// NO [UNAVAILABLE] before it gives up itself.
	DefaultBackendLogin = 15 * time.Second
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
	// DefaultCapabilityTTL is how long a backend's learnt capabilities are
	// trusted before they are probed again: a backend's capabilities
	// change only when it is upgraded or reconfigured, and a probe every
	// five minutes also tells /readyz that the backend is there.
	DefaultCapabilityTTL = 5 * time.Minute
	// DefaultProxyHeaderTimeout bounds a PROXY header's arrival from a
	// trusted balancer: the balancer sends it at once, in the
	// connection's first segment, so three seconds allow for a lost
	// segment's retransmission (the first retransmission timeout is 1 s)
	// and still free a connection that sends nothing soon.
	DefaultProxyHeaderTimeout = 3 * time.Second
)

// resolve is the engine's one rule for a configured value: zero is def,
// negative is off, anything else itself.
func resolve[T int | time.Duration](v, def, off T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return off
	}
	return v
}

// EffectiveMaxConns is the cap in force for a configured Server.MaxConns:
// zero is DefaultMaxConns, negative is no cap (math.MaxInt).
func EffectiveMaxConns(n int) int { return resolve(n, DefaultMaxConns, math.MaxInt) }

// EffectiveDrain is the drain in force for a configured Server.Drain:
// zero is DefaultDrain, negative is none (0: relayed sessions are closed
// at once).
func EffectiveDrain(d time.Duration) time.Duration { return resolve(d, DefaultDrain, 0) }

// EffectiveKeepalive is the TCP keepalive period in force for a configured
// Listener.Keepalive or Backend.Keepalive: zero is DefaultKeepalive,
// negative is off (0).
func EffectiveKeepalive(d time.Duration) time.Duration { return resolve(d, DefaultKeepalive, 0) }

// EffectiveProxyHeaderTimeout is the PROXY header timeout in force for a
// configured ProxyProtocol.Timeout: zero (or negative) is
// DefaultProxyHeaderTimeout.
func EffectiveProxyHeaderTimeout(d time.Duration) time.Duration {
	return resolve(d, DefaultProxyHeaderTimeout, DefaultProxyHeaderTimeout)
}

// EffectiveTimeouts are b's dial and login timeouts in force: zero (or
// negative) Connect and Login are DefaultBackendConnect and
// DefaultBackendLogin.
func (b *Backend) EffectiveTimeouts() (connect, login time.Duration) {
	return resolve(b.Connect, DefaultBackendConnect, DefaultBackendConnect), resolve(b.Login, DefaultBackendLogin, DefaultBackendLogin)
}
