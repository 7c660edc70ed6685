package pop3

import (
	"errors"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// login logs in to the backend on the client's behalf (ARCHITECTURE.md
// invariant 4: the backend sees only this canonical login) and, on
// success, answers the client and prepares the hand-off. Refusals (the
// backend's, the guard's) come back as errors for reply.
func (s *session) login(user, pass, method string) error {
	h, err := s.ps.Login(s.ctx, user, pass, method, s.h.Idle, func() (*proxy.Conn, string, proxy.LoginResult, error) {
		be, err := s.h.login(s.ctx, s.ps.Peer(), user, pass)
		return be, "+OK Logged in\r\n", loginResult(err), err
	})
	if h != nil {
		s.state, s.handoff = stateLoggedIn, h
	}
	return err
}

// loginResult is the guard's view of a backend login's outcome: a refusal
// of the credentials counts against the client; IN-USE and LOGIN-DELAY,
// which a right password gets too, are a busy mailbox; SYS/TEMP and
// SYS/PERM (RFC 3206), and the known texts of trouble (troubleTexts), are
// backend trouble. A refusal that says nothing more (a bare -ERR, or
// [AUTH]) counts: see ARCHITECTURE.md, "Backend trouble or a wrong
// password".
func loginResult(err error) proxy.LoginResult {
	var br *backendRefusal
	switch {
	case err == nil:
		return proxy.LoginOK
	case errors.Is(err, errUnsendable):
		return proxy.LoginFailed
	case !errors.As(err, &br):
		return proxy.LoginBackendError
	}
	switch br.code {
	case "IN-USE", "LOGIN-DELAY":
		return proxy.LoginBusy
	case "SYS/TEMP", "SYS/PERM":
		return proxy.LoginBackendError
	case "":
		if br.trouble != "" {
			return proxy.LoginBackendError
		}
	}
	return proxy.LoginFailed
}

// sendable reports whether s can go on a backend command line.
func sendable(s string) bool { return s != "" && !strings.ContainsAny(s, "\r\n\x00") }
