package proxy

import "time"

// Limits bound one client's pre-authentication phase. A zero field means
// the default named on it (defaults.go); these are hard limits on input,
// so none can be turned off, and a negative value means the default too
// (the configuration refuses one).
type Limits struct {
	Line            int           // longest command line, bytes, CRLF excluded (default DefaultLine)
	Literal         int           // largest literal, bytes (default DefaultLiteral)
	Commands        int           // commands per connection before login (default DefaultCommands)
	InvalidCommands int           // rejected commands before the connection is closed (default DefaultInvalidCommands)
	Idle            time.Duration // longest silence before login (default DefaultIdle)
	Total           time.Duration // longest pre-login phase (default DefaultTotal)
	Handshake       time.Duration // longest TLS handshake (default DefaultHandshake)
	Write           time.Duration // longest blocked write (default DefaultWrite)
	AuthFailures    int           // refused logins before the connection is closed (default DefaultAuthFailures)
}

// WithDefaults returns l with every zero (or negative) field set to its
// default: the limits NewConn puts in force.
func (l Limits) WithDefaults() Limits {
	orDefault := func(v *int, d int) { *v = resolve(*v, d, d) }
	orDefaultDur := func(v *time.Duration, d time.Duration) { *v = resolve(*v, d, d) }
	orDefault(&l.Line, DefaultLine)
	orDefault(&l.Literal, DefaultLiteral)
	orDefault(&l.Commands, DefaultCommands)
	orDefault(&l.InvalidCommands, DefaultInvalidCommands)
	orDefault(&l.AuthFailures, DefaultAuthFailures)
	orDefaultDur(&l.Idle, DefaultIdle)
	orDefaultDur(&l.Total, DefaultTotal)
	orDefaultDur(&l.Handshake, DefaultHandshake)
	orDefaultDur(&l.Write, DefaultWrite)
	return l
}
