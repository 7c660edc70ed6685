package pop3

import (
	"context"
	"log/slog"

	"github.com/mailfront/mailfront/proxy"
)

// greeting is mailfront's own: no backend banner, no version, and no APOP
// timestamp (ARCHITECTURE.md invariant 10).
const greeting = "+OK mailfront ready"

// state is where a client is in the AUTHORIZATION state of RFC 1939. The
// states are package imap's, with stateUser between USER and PASS.
type state uint8

const (
	// statePlain: a STARTTLS listener before STLS. No credential is
	// accepted (RFC 2595 section 4 allows refusing them; ARCHITECTURE.md
	// invariant 1).
	statePlain state = iota
	// stateTLS: under TLS, no user name yet.
	stateTLS
	// stateUser: under TLS, USER accepted, PASS expected.
	stateUser
	// stateLoggedIn: the backend accepted a login; the relay takes over.
	stateLoggedIn
)

func (st state) String() string {
	switch st {
	case statePlain:
		return "authorization-plaintext"
	case stateTLS:
		return "authorization-tls"
	case stateUser:
		return "authorization-user"
	}
	return "logged-in"
}

// commandFunc runs one command. It writes its own positive replies and
// returns refusals as *protoError values for session.Reply.
type commandFunc func(*session, *command) error

// commands lists what each state allows; anything else is refused unrun.
// Before TLS the credential commands are listed only to be refused by name.
var commands = map[state]map[string]commandFunc{
	statePlain: {
		"CAPA": cmdCapa,
		"QUIT": cmdQuit,
		"STLS": cmdSTLS,
		"USER": refusePlaintext,
		"PASS": refusePlaintext,
		"APOP": refusePlaintext,
		"AUTH": refusePlaintext,
	},
	stateTLS: {
		"CAPA": cmdCapa,
		"QUIT": cmdQuit,
		"STLS": cmdSTLS,
		"USER": cmdUser,
		"PASS": cmdPassWithoutUser,
		"APOP": cmdAPOP,
		"AUTH": cmdAuth,
	},
	stateUser: {
		"CAPA": cmdCapa,
		"QUIT": cmdQuit,
		"STLS": cmdSTLS,
		"USER": cmdUser,
		"PASS": cmdPass,
		"APOP": cmdAPOP,
		"AUTH": cmdAuth,
	},
}

// known are the RFC 1939 commands that exist but not before login.
var known = map[string]bool{"NOOP": true, "STAT": true, "LIST": true, "RETR": true,
	"DELE": true, "RSET": true, "TOP": true, "UIDL": true, "LAST": true}

// session is one client's pre-authentication dialogue.
type session struct {
	ctx     context.Context
	h       *Handler
	ps      *proxy.Session
	conn    *proxy.Conn
	log     *slog.Logger
	state   state
	handoff *proxy.Handoff // set on login

	user string // from USER, until PASS
}

func newSession(ctx context.Context, h *Handler, ps *proxy.Session) *session {
	s := &session{ctx: ctx, h: h, ps: ps, conn: ps.Conn, log: ps.Log, state: statePlain}
	if s.conn.IsTLS() {
		s.state = stateTLS
	}
	return s
}

// The session is a proxy.Dialogue: proxy.Converse runs it.
var _ proxy.Dialogue[*command] = (*session)(nil)

// Greet sends mailfront's own greeting (ARCHITECTURE.md invariant 10).
func (s *session) Greet() error { return s.conn.WriteString(greeting + "\r\n") }

// Read reads and parses one command, and charges it against
// Limits.Commands, malformed ones too.
func (s *session) Read() (*command, error) {
	line, err := s.conn.ReadLine()
	if err != nil {
		return nil, err
	}
	if err := s.ps.CountCommand(); err != nil {
		return nil, err
	}
	return parse(line)
}

// Execute runs cmd if the state allows it.
func (s *session) Execute(cmd *command) error {
	s.trace(cmd)
	if fn, ok := commands[s.state][cmd.name]; ok {
		return fn(s, cmd)
	}
	if known[cmd.name] {
		return errNotNow
	}
	return errUnknown
}

// Handoff is the logged-in backend, once a login has succeeded.
func (s *session) Handoff() *proxy.Handoff { return s.handoff }

// ok sends a positive reply line.
func (s *session) ok(text string) error {
	return s.conn.WriteString("+OK " + text + "\r\n")
}

// cmdQuit ends the session politely (RFC 1939 section 5, QUIT in
// AUTHORIZATION).
func cmdQuit(s *session, _ *command) error {
	if err := s.ok("mailfront signing off"); err != nil {
		return err
	}
	return proxy.ErrLogout
}
