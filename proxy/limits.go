package proxy

import "time"

// Limits bound one client's pre-authentication phase. Zero values mean the
// defaults in defaults.go.
type Limits struct {
	Line            int           // longest command line, bytes (CRLF excluded)
	Literal         int           // largest literal, bytes
	Commands        int           // commands per connection before login
	InvalidCommands int           // rejected commands before the connection is closed
	Idle            time.Duration // longest silence before login
	Total           time.Duration // longest pre-login phase
	Handshake       time.Duration // longest TLS handshake
	Write           time.Duration // longest blocked write
	AuthFailures    int           // refused logins before the connection is closed
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Line, DefaultLine)
	def(&l.Literal, DefaultLiteral)
	def(&l.Commands, DefaultCommands)
	def(&l.InvalidCommands, DefaultInvalidCommands)
	def(&l.AuthFailures, DefaultAuthFailures)
	defDur(&l.Idle, DefaultIdle)
	defDur(&l.Total, DefaultTotal)
	defDur(&l.Handshake, DefaultHandshake)
	defDur(&l.Write, DefaultWrite)
	return l
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits { return l.withDefaults() }
