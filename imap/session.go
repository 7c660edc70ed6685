package imap

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// levelTrace is below debug: protocol traces (command names, never
// arguments, so never a credential).
const levelTrace = slog.LevelDebug - 4

// state is where a client is in the pre-authentication dialogue (after
// go-imap's ConnState, with TLS made explicit because what is allowed
// depends on it). Package pop3 has the same states, and stateUser.
type state uint8

const (
	// statePlain: not authenticated, no TLS yet (STARTTLS listener).
	statePlain state = iota
	// stateTLS: not authenticated, under TLS (implicit, or after STARTTLS).
	stateTLS
	// stateLoggedIn: the backend accepted a login; the relay takes over.
	stateLoggedIn
)

func (st state) String() string {
	switch st {
	case statePlain:
		return "not-authenticated-plaintext"
	case stateTLS:
		return "not-authenticated-tls"
	}
	return "logged-in"
}

// commandFunc runs one command. It writes its own positive replies and
// returns refusals as *protoError values for session.Reply.
type commandFunc func(*session, *command) error

// commands lists what each state allows. Anything else is BAD. LOGIN and
// AUTHENTICATE exist before TLS only to be refused with PRIVACYREQUIRED.
var commands = map[state]map[string]commandFunc{
	statePlain: {
		"CAPABILITY":   cmdCapability,
		"NOOP":         cmdNoop,
		"LOGOUT":       cmdLogout,
		"ID":           cmdID,
		"STARTTLS":     cmdStartTLS,
		"LOGIN":        refusePlaintextLogin,
		"AUTHENTICATE": refusePlaintextLogin,
	},
	stateTLS: {
		"CAPABILITY":   cmdCapability,
		"NOOP":         cmdNoop,
		"LOGOUT":       cmdLogout,
		"ID":           cmdID,
		"STARTTLS":     refuseStartTLS,
		"LOGIN":        cmdLogin,
		"AUTHENTICATE": cmdAuthenticate,
	},
}

// session is one client's pre-authentication dialogue.
type session struct {
	ctx     context.Context
	h       *Handler
	ps      *proxy.Session
	conn    *proxy.Conn
	log     *slog.Logger
	state   state
	handoff *proxy.Handoff // set on login

	clientID []idField // from the client's ID, replayed to the backend
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

// Greet sends mailfront's own greeting (ARCHITECTURE.md invariant 10),
// with the capabilities for the TLS state.
func (s *session) Greet() error {
	return s.conn.WriteString("* OK [CAPABILITY " + s.capabilities() + "] mailfront ready\r\n")
}

// Read reads and parses one command, and charges it against
// Limits.Commands, malformed ones too. The command is never nil: it
// carries the tag whenever one could be read, for the reply.
func (s *session) Read() (*command, error) {
	cmd, err := readCommand(s.conn, limitsFor(s.conn.Limits()), s.literalContinue)
	if err == nil || isProto(err) {
		if cerr := s.ps.CountCommand(); cerr != nil {
			return cmd, cerr
		}
	}
	return cmd, err
}

// Execute runs cmd if the state allows it.
func (s *session) Execute(cmd *command) error {
	s.log.Log(s.ctx, levelTrace, "command", "tag", cmd.tag, "name", cmd.name, "state", s.state.String())
	if fn, ok := commands[s.state][cmd.name]; ok {
		return fn(s, cmd)
	}
	return bad("Command not valid before login")
}

// literalContinue invites a synchronizing literal the parser has accepted.
// It refuses instead for a command the state does not allow, and for a
// login before TLS: "+" there would invite a credential in the clear
// (ARCHITECTURE.md invariant 1).
func (s *session) literalContinue(cmd *command) error {
	if _, ok := commands[s.state][cmd.name]; !ok {
		return bad("Command not valid before login")
	}
	if s.state == statePlain && (cmd.name == "LOGIN" || cmd.name == "AUTHENTICATE") {
		return refusePlaintextLogin(s, cmd)
	}
	return s.conn.WriteString("+ Ready\r\n")
}

// Handoff is the logged-in backend, once a login has succeeded.
func (s *session) Handoff() *proxy.Handoff { return s.handoff }

// capabilities is the list for the greeting and CAPABILITY.
func (s *session) capabilities() string {
	return strings.Join(advertised(s.h.Caps.Last(), s.state != statePlain), " ")
}

func (s *session) ok(tag, text string) error {
	return s.conn.WriteString(tag + " OK " + text + "\r\n")
}

func isProto(err error) bool {
	var pe *protoError
	return errors.As(err, &pe)
}

func noArgs(cmd *command) error {
	if len(cmd.args) != 0 {
		return bad(cmd.name + " takes no arguments")
	}
	return nil
}

func cmdCapability(s *session, cmd *command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	if err := s.conn.WriteString("* CAPABILITY " + s.capabilities() + "\r\n"); err != nil {
		return err
	}
	return s.ok(cmd.tag, "CAPABILITY completed")
}

func cmdNoop(s *session, cmd *command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	return s.ok(cmd.tag, "NOOP completed")
}

func cmdLogout(s *session, cmd *command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	if err := s.conn.WriteString("* BYE Logging out\r\n"); err != nil {
		return err
	}
	if err := s.ok(cmd.tag, "LOGOUT completed"); err != nil {
		return err
	}
	return proxy.ErrLogout
}
