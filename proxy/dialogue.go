package proxy

import (
	"errors"
	"fmt"
)

// Dialogue is one protocol's pre-authentication conversation with one
// client: package imap's and package pop3's session types. Converse drives
// it, so that both protocols run the same loop: greet, then read a
// command, execute it and reply, until a login hands the session off or
// an error ends it.
type Dialogue[C any] interface {
	// Greet writes the protocol's greeting.
	Greet() error
	// Read reads, parses and counts (Session.CountCommand) one command.
	// A malformed command comes back with the refusal for Reply.
	Read() (C, error)
	// Execute runs a command. It writes its own positive replies and
	// returns refusals as errors.
	Execute(C) error
	// Reply puts a refusal on the wire (nil: there is none) and returns
	// nil to go on, or the error that ends the session.
	Reply(C, error) error
	// Goodbye is the last line for what ends the session ("" for none)
	// and the session's outcome ("" to leave it to the engine); the
	// errors the engine causes are mapped by the protocol's Goodbyes.
	Goodbye(error) (line string, o Outcome)
	// Handoff is the logged-in backend once a login has succeeded, else
	// nil.
	Handoff() *Handoff
}

// Converse runs d on s until a login hands the session off, or the
// session ends: then the client is told goodbye, the outcome is recorded
// and the error returned for the engine (nil after the client's own
// LOGOUT or QUIT).
func Converse[C any](s *Session, d Dialogue[C]) (*Handoff, error) {
	err := d.Greet()
	for err == nil {
		c, cerr := d.Read()
		if cerr == nil {
			cerr = d.Execute(c)
		}
		err = d.Reply(c, cerr)
		if h := d.Handoff(); h != nil && err == nil {
			return h, nil
		}
	}
	line, o := d.Goodbye(err)
	if line != "" {
		s.Conn.WriteString(line)
	}
	s.SetOutcome(o)
	if o == OutcomeLogout {
		return nil, nil
	}
	return nil, err
}

// Goodbyes are a protocol's last lines, with their CRLF, for the ends the
// engine causes. Each limit's line is a format with one %d for the limit.
type Goodbyes struct {
	Limits   map[LimitKind]string
	Idle     string
	Total    string
	Shutdown string
	// CrossProtocol is by CrossProtocolError.Protocol; "" is the line for
	// any other.
	CrossProtocol map[string]string
}

// For is the line and outcome for err when the engine caused it (a limit,
// a timeout, shutdown, another protocol's request) or it is ErrLogout; ok
// is false otherwise.
func (g *Goodbyes) For(err error) (line string, o Outcome, ok bool) {
	var le *LimitError
	var ce *CrossProtocolError
	switch {
	case errors.Is(err, ErrLogout):
		return "", OutcomeLogout, true
	case errors.As(err, &le):
		return fmt.Sprintf(g.Limits[le.Kind], le.Max), le.Outcome(), true
	case errors.As(err, &ce):
		line, ok := g.CrossProtocol[ce.Protocol]
		if !ok {
			line = g.CrossProtocol[""]
		}
		return line, OutcomeProtocolError, true
	case errors.Is(err, ErrIdle):
		return g.Idle, OutcomeTimeout, true
	case errors.Is(err, ErrTotalTime):
		return g.Total, OutcomeTimeout, true
	case errors.Is(err, ErrShutdown):
		return g.Shutdown, OutcomeShutdown, true
	}
	return "", "", false
}
