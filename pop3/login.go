package pop3

import (
	"errors"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// login logs in to the backend on the client's behalf (ARCHITECTURE.md invariant 4:
// the backend sees only this canonical login) and, on success, answers the
// client and hands the backend connection to the engine. Failures become
// canonical refusals; backend wording never reaches the client.
func (ss *session) login(user, pass, method string) (*proxy.Handoff, error) {
	if user == "" || pass == "" || !sendable(user) || !sendable(pass) {
		return nil, ss.loginFailed(user, method, errUnsendable)
	}
	finish, err := ss.s.BeginLogin(ss.ctx, user, pass)
	if err != nil {
		if errors.Is(err, proxy.ErrShutdown) {
			return nil, err
		}
		ss.s.Log.Info("login refused by the guard", "user", user, "method", method)
		return nil, errGuard
	}
	be, err := ss.h.login(ss.ctx, user, pass)
	if ferr := finish(loginResult(err)); ferr != nil {
		if be != nil {
			be.Close()
		}
		return nil, ferr
	}
	if err != nil {
		return nil, ss.loginFailed(user, method, err)
	}
	if err := ss.write("+OK Logged in\r\n"); err != nil {
		be.Close()
		return nil, err
	}
	ss.s.User = user
	ss.s.Log.Info("login", "user", user, "method", method)
	return &proxy.Handoff{Backend: be, Idle: ss.h.idle}, nil
}

// loginFailed logs a failed login and picks the client's reply. Only
// refused credentials are logged as "login failed" (for fail2ban); backend
// trouble is a warning and is not counted against the client (ARCHITECTURE.md
// invariant 8). Passwords are never logged.
func (ss *session) loginFailed(user, method string, err error) error {
	var br *backendRefusal
	switch {
	case errors.Is(err, proxy.ErrShutdown):
		return err
	case errors.Is(err, errUnsendable):
		ss.s.Log.Info("login failed", "user", user, "method", method,
			"outcome", string(proxy.OutcomeAuthFailed), "reason", "credentials cannot be sent to the backend")
		return errAuthFailed
	case errors.As(err, &br):
		r := refusalReply(br.code)
		if r == errBackendDown {
			break
		}
		attrs := []any{"user", user, "method", method, "outcome", string(r.outcome)}
		if br.code != "" {
			attrs = append(attrs, "code", br.code)
		}
		ss.s.Log.Info("login failed", attrs...)
		return r
	}
	ss.s.Log.Warn("backend unavailable", "user", user, "error", err)
	return errBackendDown
}

// refusalReply maps a backend's -ERR response code (RFC 2449 section 8,
// RFC 3206) to mailfront's canonical reply.
func refusalReply(code string) *reply {
	switch strings.ToUpper(code) {
	case "IN-USE":
		return errInUse
	case "LOGIN-DELAY":
		return errLoginDelay
	case "SYS/TEMP":
		return errBackendDown
	}
	return errAuthFailed
}

// sendable reports whether s can go on a backend command line.
func sendable(s string) bool { return !strings.ContainsAny(s, "\r\n\x00") }

// loginResult is the guard's view of a backend login's outcome: only a
// refusal of the credentials counts against the client (not IN-USE or
// LOGIN-DELAY, which a right password gets too).
func loginResult(err error) proxy.LoginResult {
	var br *backendRefusal
	switch {
	case err == nil:
		return proxy.LoginOK
	case errors.As(err, &br) && refusalReply(br.code) == errAuthFailed:
		return proxy.LoginFailed
	}
	return proxy.LoginBackendError
}
