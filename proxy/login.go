package proxy

import (
	"context"
	"errors"
	"strings"
	"time"
)

// LoginError is a login the backend did not accept: Result says how
// (LoginFailed, LoginBusy or LoginBackendError) and Err is the handler's
// error for it, which the handler maps to its reply.
type LoginError struct {
	Result LoginResult
	Err    error
}

func (e *LoginError) Error() string { return "proxy: login: " + e.Err.Error() }
func (e *LoginError) Unwrap() error { return e.Err }

// LoginDetail is implemented by an attempt's error that has more to say in
// the login's log line: the backend's response code (POP3 "code",
// "IN-USE"), or why the credentials could not be sent ("reason"). The
// attributes must never hold a credential.
type LoginDetail interface {
	LoginDetail() []any
}

// Attempt logs in to the backend once. It returns the logged-in connection
// and the line that tells the client so (LoginOK), or the backend's verdict
// and why.
type Attempt func() (be *Conn, welcome string, r LoginResult, err error)

// Login runs one login attempt for user: the gate admits it (perhaps after
// the network's penalty, or refuses it with ErrLoginRefused), attempt logs
// in to the backend, and the verdict is reported once to the gate (which
// may make the client wait: the failure penalty), the observer, the
// session's counts and outcome, and the log. The log lines of every login
// are written here, so that their messages and attributes are the same for
// every protocol: "login", "login failed" (a refused password: what
// fail2ban counts), "mailbox busy", "backend unavailable" and "login
// refused by the guard". The password goes to the gate and the attempt,
// nowhere else.
//
// On LoginOK it writes the welcome line to the client and returns the
// hand-off, with idle as the relay's idle limit. Otherwise it returns
// ErrLoginRefused, ErrShutdown (the server stopped meanwhile) or a
// *LoginError.
func (s *Session) Login(ctx context.Context, user, password, method string, idle time.Duration, attempt Attempt) (*Handoff, error) {
	done := func(LoginResult) time.Duration { return 0 }
	if s.Gate != nil {
		var err error
		done, err = s.Gate.Login(ctx, s.Addr, user, password)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ErrShutdown
			}
			s.SetOutcome(OutcomeRefused)
			s.Log.Info("login refused by the guard", "user", user, "method", method)
			if s.Observer != nil {
				s.Observer.LoginRefused(s.Protocol)
			}
			return nil, err
		}
	}
	s.User = user
	start := time.Now() // the backend's latency, not the guard's wait
	be, welcome, r, err := attempt()
	if r == LoginOK && err != nil || r != LoginOK && err == nil {
		r, err = LoginBackendError, errors.Join(err, errors.New("proxy: login attempt gave a result and an error that disagree"))
	}
	if s.Observer != nil {
		s.Observer.Login(s.Protocol, r, time.Since(start))
	}
	wait := done(r)
	s.logLogin(user, method, r, err)
	if werr := s.penalty(ctx, wait); werr != nil {
		if be != nil {
			be.Close()
		}
		return nil, werr
	}
	if r == LoginOK {
		if err := s.Conn.WriteString(welcome); err != nil {
			be.Close()
			return nil, err
		}
		return &Handoff{Backend: be, Idle: idle}, nil
	}
	if errors.Is(err, ErrShutdown) {
		return nil, err
	}
	return nil, &LoginError{Result: r, Err: err}
}

// logLogin writes the login's one log line and records its outcome.
func (s *Session) logLogin(user, method string, r LoginResult, err error) {
	switch r {
	case LoginOK:
		s.Log.Info("login", s.withSource("user", user, "method", method)...)
	case LoginFailed:
		s.failures++
		s.SetOutcome(OutcomeAuthFailed)
		s.Log.Info("login failed", s.loginAttrs(user, method, OutcomeAuthFailed, err)...)
	case LoginBusy:
		s.SetOutcome(OutcomeMailboxBusy)
		s.Log.Info("mailbox busy", s.loginAttrs(user, method, OutcomeMailboxBusy, err)...)
	default:
		if errors.Is(err, ErrShutdown) {
			return // the session's end says so
		}
		// Never "login failed": fail2ban must not count backend trouble
		// against the client (ARCHITECTURE.md invariant 8).
		s.SetOutcome(OutcomeBackendDown)
		s.Log.Warn("backend unavailable", s.withSource("user", user, "method", method, "error", err.Error())...)
	}
}

// loginAttrs are the attributes of a refused login's line: the user and
// the outcome first (fail2ban's filter reads them in this order), then how.
func (s *Session) loginAttrs(user, method string, o Outcome, err error) []any {
	attrs := []any{"user", user, "outcome", string(o), "method", method}
	if o == OutcomeAuthFailed {
		attrs = append(attrs, "failures", s.failures)
	}
	var d LoginDetail
	if errors.As(err, &d) {
		attrs = append(attrs, d.LoginDetail()...)
	}
	return s.withSource(attrs...)
}

// withSource is attrs and, when the backend was dialled from an address
// of the client's own (client_address loopback), that address: the
// backend's logs name it, and this ties it to the client.
func (s *Session) withSource(attrs ...any) []any {
	if s.peer != nil && s.peer.Source.IsValid() {
		attrs = append(attrs, "backend_source", s.peer.Source.String())
	}
	return attrs
}

// penalty waits out the gate's failure penalty before the client hears the
// verdict; it returns ErrShutdown when the server stops meanwhile.
func (s *Session) penalty(ctx context.Context, wait time.Duration) error {
	if wait <= 0 {
		return nil
	}
	if s.Observer != nil {
		s.Observer.GuardDelay(wait)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ErrShutdown
	}
}

// KnownText returns the first of phrases (lower case) that text holds,
// whatever its case, or "": how a protocol recognises the known texts a
// backend refuses a login with when the trouble is its own (Courier's
// "Temporary problem", Cyrus's "generic failure").
func KnownText(text string, phrases []string) string {
	l := strings.ToLower(text)
	for _, p := range phrases {
		if strings.Contains(l, p) {
			return p
		}
	}
	return ""
}
