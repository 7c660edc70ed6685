package pop3

import (
	"context"
	"fmt"

	"github.com/mailfront/mailfront/proxy"
)

// greeting is mailfront's own: no backend banner, no version, and no APOP
// timestamp (ARCHITECTURE.md invariant 10).
const greeting = "+OK mailfront ready"

// state is where a client is in the AUTHORIZATION state of RFC 1939.
type state int

const (
	// statePlain: a STARTTLS listener before STLS. No credential is
	// accepted (RFC 2595 section 4 allows refusing them; ARCHITECTURE.md invariant 1).
	statePlain state = iota
	// stateSecure: under TLS, no user name yet.
	stateSecure
	// stateUser: under TLS, USER accepted, PASS expected.
	stateUser
)

// handlerFunc runs one command. It writes its positive replies itself and
// returns refusals as errors for session.fail.
type handlerFunc func(ss *session, req request) (*proxy.Handoff, error)

// allowed lists what each state accepts; anything else is refused unrun.
// Before TLS the credential commands are listed only to be refused by name.
var allowed = [...]map[string]handlerFunc{
	statePlain: {
		"CAPA": (*session).capa,
		"QUIT": (*session).quit,
		"STLS": (*session).stls,
		"USER": (*session).refusePlaintext,
		"PASS": (*session).refusePlaintext,
		"APOP": (*session).refusePlaintext,
		"AUTH": (*session).refusePlaintext,
	},
	stateSecure: {
		"CAPA": (*session).capa,
		"QUIT": (*session).quit,
		"STLS": (*session).stls,
		"USER": (*session).user,
		"PASS": (*session).passWithoutUser,
		"APOP": (*session).apop,
		"AUTH": (*session).auth,
	},
	stateUser: {
		"CAPA": (*session).capa,
		"QUIT": (*session).quit,
		"STLS": (*session).stls,
		"USER": (*session).user,
		"PASS": (*session).pass,
		"APOP": (*session).apop,
		"AUTH": (*session).auth,
	},
}

// known are the RFC 1939 commands that exist but not before login.
var known = map[string]bool{"NOOP": true, "STAT": true, "LIST": true, "RETR": true,
	"DELE": true, "RSET": true, "TOP": true, "UIDL": true, "LAST": true}

// session is one client's pre-authentication dialogue.
type session struct {
	ctx      context.Context
	h        *Handler
	s        *proxy.Session
	state    state
	username string // from USER, until PASS

	commands, invalid, failures int
}

func newSession(ctx context.Context, h *Handler, s *proxy.Session) *session {
	ss := &session{ctx: ctx, h: h, s: s, state: statePlain}
	if s.Conn.IsTLS() {
		ss.state = stateSecure
	}
	return ss
}

// run greets the client and serves commands until a handoff or the end.
func (ss *session) run() (*proxy.Handoff, error) {
	if err := ss.write(greeting + "\r\n"); err != nil {
		_, ret := ss.fail(err)
		return nil, ret
	}
	for {
		h, err := ss.step()
		if h != nil {
			return h, nil
		}
		if err == nil {
			continue
		}
		if end, ret := ss.fail(err); end {
			return nil, ret
		}
	}
}

// step reads and runs one command.
func (ss *session) step() (*proxy.Handoff, error) {
	line, err := ss.readLine()
	if err != nil {
		return nil, err
	}
	ss.commands++
	if max := ss.s.Conn.Limits().Commands; ss.commands > max {
		return nil, tooManyCommands(max)
	}
	req, err := parse(line)
	if err != nil {
		return nil, err
	}
	ss.trace(req)
	fn := allowed[ss.state][req.name]
	if fn == nil {
		if known[req.name] {
			return nil, errNotNow
		}
		return nil, errUnknown
	}
	return fn(ss, req)
}

// readLine reads one line from the client. Limit, timeout and shutdown
// errors pass unchanged; anything else means the client went away.
func (ss *session) readLine() ([]byte, error) {
	line, err := ss.s.Conn.ReadLine()
	if err == nil {
		return line, nil
	}
	if isEngineError(err) {
		return nil, err
	}
	return nil, fmt.Errorf("read command: %w: %w", errClientGone, err)
}

// write sends p to the client.
func (ss *session) write(p string) error {
	if err := ss.s.Conn.WriteString(p); err != nil {
		return fmt.Errorf("write reply: %w: %w", errClientGone, err)
	}
	return nil
}

// writeLine sends one line, ignoring errors: the session is ending or the
// next read will notice.
func (ss *session) writeLine(line string) { ss.s.Conn.WriteString(line + "\r\n") }

// quit ends the session politely (RFC 1939 section 5, QUIT in AUTHORIZATION).
func (ss *session) quit(request) (*proxy.Handoff, error) {
	ss.writeLine("+OK mailfront signing off")
	return nil, errLogout
}
