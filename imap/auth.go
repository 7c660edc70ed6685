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
	s.ps.Outcome = proxy.OutcomePrivacyRequired
	s.log.Info("plaintext login refused", "user", refusedUser(cmd), "command", cmd.name)
	return no("PRIVACYREQUIRED", s.ps.RefusedPlaintext(plaintextRefusal))
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
// is the client's command, for the log.
func (s *session) login(tag, method string, cr credentials) error {
	finish, err := s.ps.BeginLogin(s.ctx, cr.user, cr.pass)
	if err != nil {
		return s.loginRefused(cr, err)
	}
	be, caps, err := s.backendLogin(cr)
	if ferr := finish(loginResult(err)); ferr != nil {
		if be != nil {
			be.Close()
		}
		return ferr
	}
	if err != nil {
		return s.loginFailed(cr, err)
	}
	line := tag + " OK Logged in\r\n"
	if len(caps) > 0 {
		line = tag + " OK [CAPABILITY " + strings.Join(caps, " ") + "] Logged in\r\n"
	}
	if err := s.conn.WriteString(line); err != nil {
		be.Close()
		return err
	}
	s.ps.User = cr.user
	s.log.Info("login", "user", cr, "method", method)
	s.state = stateLoggedIn
	s.handoff = &proxy.Handoff{Backend: be, Idle: s.h.opts.Idle}
	return nil
}

// loginFailed turns a failed backend login into the client's answer. The
// backend's own text never reaches the client. A refused password counts
// towards maxAuthFailures; backend trouble does not (ARCHITECTURE.md invariant 8).
func (s *session) loginFailed(cr credentials, err error) error {
	switch {
	case errors.Is(err, proxy.ErrShutdown):
		return err
	case errors.Is(err, errLoginRefused):
		s.failures++
		s.ps.Outcome = proxy.OutcomeAuthFailed
		s.log.Info("login failed", "user", cr, "outcome", s.ps.Outcome, "failures", s.failures)
		refusal := no("AUTHENTICATIONFAILED", "Authentication failed.")
		if s.failures >= s.ps.Conn.Limits().AuthFailures {
			refusal.then = bye("", "Too many authentication failures", proxy.OutcomeAuthFailed)
		}
		return refusal
	}
	// Not "login failed": fail2ban must never count backend trouble
	// against the client.
	s.ps.Outcome = proxy.OutcomeBackendDown
	s.log.Warn("backend unavailable", "user", cr, "error", err.Error())
	return no("UNAVAILABLE", "Backend unavailable")
}

// loginResult is the guard's view of a backend login's outcome.
func loginResult(err error) proxy.LoginResult {
	switch {
	case err == nil:
		return proxy.LoginOK
	case errors.Is(err, errLoginRefused):
		return proxy.LoginFailed
	}
	return proxy.LoginBackendError
}

// loginRefused answers a login the guard would not let through: the
// network is blocked or has too many logins in flight. The client is told
// to come back later, and the connection ends.
func (s *session) loginRefused(cr credentials, err error) error {
	if errors.Is(err, proxy.ErrShutdown) {
		return err
	}
	s.ps.Outcome = proxy.OutcomeRefused
	s.log.Info("login refused by the guard", "user", cr)
	r := no("UNAVAILABLE", "Too many login attempts from your network; try again later")
	r.then = bye("UNAVAILABLE", "Try again later", proxy.OutcomeRefused)
	return r
}
