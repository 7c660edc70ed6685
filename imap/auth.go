package imap

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// credentials are what a client logged in with. They format and log as the
// user name only, so a password cannot reach a log line or an error by
// accident (ARCHITECTURE.md invariant 6).
type credentials struct {
	user, pass string
}

// LogValue implements slog.LogValuer.
func (c credentials) LogValue() slog.Value { return slog.StringValue(c.user) }

// Format implements fmt.Formatter for every verb.
func (c credentials) Format(f fmt.State, _ rune) { fmt.Fprintf(f, "user %q", c.user) }

// refusePlaintextLogin answers LOGIN and AUTHENTICATE before TLS (RFC 9051
// section 6.2.3, RFC 2595 section 3.2, ARCHITECTURE.md invariant 1): a tagged NO
// [PRIVACYREQUIRED] straight away, so the client never gets a continuation
// to send a secret after, and the backend is never dialled.
func refusePlaintextLogin(s *session, cmd *command) error {
	return no("PRIVACYREQUIRED", s.ps.RefusePlaintext(cmd.name, refusedUser(cmd), plaintextRefusal))
}

// refusedUser is the user name in a refused plaintext login, when the
// command carries one.
func refusedUser(cmd *command) string {
	if len(cmd.args) == 0 {
		return ""
	}
	if cmd.name == "LOGIN" {
		u, _ := cmd.args[0].astring()
		return u
	}
	if len(cmd.args) != 2 || !strings.EqualFold(string(cmd.args[0].val), "PLAIN") {
		return ""
	}
	if cr, err := decodePlain(cmd.args[1].val); err == nil {
		return cr.user
	}
	return ""
}

// cmdLogin handles LOGIN user password (RFC 9051 section 6.2.3).
func cmdLogin(s *session, cmd *command) error {
	if len(cmd.args) != 2 {
		return bad("LOGIN takes a user name and a password")
	}
	user, ok1 := cmd.args[0].astring()
	pass, ok2 := cmd.args[1].astring()
	if !ok1 || !ok2 {
		return bad("LOGIN takes a user name and a password")
	}
	return s.login(cmd.tag, "LOGIN", credentials{user: user, pass: pass})
}

// cmdAuthenticate handles AUTHENTICATE PLAIN and LOGIN, with or without an
// initial response (RFC 9051 section 6.2.2, RFC 4959).
func cmdAuthenticate(s *session, cmd *command) error {
	if len(cmd.args) < 1 || len(cmd.args) > 2 || cmd.args[0].kind != tokAtom {
		return bad("AUTHENTICATE takes a mechanism and an optional initial response")
	}
	var ir []byte
	if len(cmd.args) == 2 {
		if cmd.args[1].kind != tokAtom {
			return bad("Invalid initial response")
		}
		var err error
		if ir, err = decodeSASL(cmd.args[1].val); err != nil {
			return err
		}
	}
	var cr credentials
	var err error
	mech := strings.ToUpper(string(cmd.args[0].val))
	switch mech {
	case "PLAIN":
		cr, err = s.saslPlain(ir)
	case "LOGIN":
		cr, err = s.saslLogin(ir)
	default:
		return no("", "Unsupported authentication mechanism")
	}
	if err != nil {
		return err
	}
	return s.login(cmd.tag, "AUTHENTICATE "+mech, cr)
}

// login logs cr in to the backend and, on success, answers the client with
// the backend's post-login capabilities and prepares the hand-off. method
// is the client's command, for the log. Refusals (the backend's, the
// guard's) come back as errors for reply.
func (s *session) login(tag, method string, cr credentials) error {
	h, err := s.ps.Login(s.ctx, cr.user, cr.pass, method, s.h.Idle, func() (*proxy.Conn, string, proxy.LoginResult, error) {
		be, caps, err := s.backendLogin(cr)
		return be, loggedIn(tag, caps), loginResult(err), err
	})
	if h != nil {
		// RFC 9051 section 7.1.5: a BYE when the server closes, so the
		// client reconnects at once (the relay says it only between
		// responses).
		h.Goodbye = shutdownBye
		s.state, s.handoff = stateLoggedIn, h
	}
	return err
}

// shutdownBye ends a relayed session at the end of the shutdown drain.
var shutdownBye = []byte(goodbyes.Shutdown)

// loggedIn is the tagged OK to a login, with the backend's post-login
// capabilities when it told them.
func loggedIn(tag string, caps []string) string {
	if len(caps) == 0 {
		return tag + " OK Logged in\r\n"
	}
	return tag + " OK [CAPABILITY " + strings.Join(caps, " ") + "] Logged in\r\n"
}

// loginResult is the guard's view of a backend login's outcome: a
// refusal says what it is (backendRefusal.result); anything else,
// a BYE during the login included, is backend trouble.
func loginResult(err error) proxy.LoginResult {
	var br *backendRefusal
	switch {
	case err == nil:
		return proxy.LoginOK
	case errors.As(err, &br):
		return br.result()
	}
	return proxy.LoginBackendError
}
