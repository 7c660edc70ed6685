package pop3

import (
	"errors"
	"fmt"

	"github.com/mailfront/mailfront/proxy"
)

// effect says what a refusal does to the session besides the -ERR line.
type effect uint8

const (
	countInvalid effect = 1 << iota // counts against Limits.InvalidCommands
	countFailure                    // counts against Limits.AuthFailures
	closeAfter                      // the session ends after the reply
)

// reply is a protocol error: a refusal the client sees as one -ERR line.
// Handlers return replies; session.fail is the one place that writes them.
type reply struct {
	code    string // RFC 2449 section 8 / RFC 3206 response code, without brackets
	text    string
	effect  effect
	outcome proxy.Outcome // recorded on the session when not empty
}

// wire is the reply as sent, without CRLF.
func (r *reply) wire() string {
	if r.code != "" {
		return "-ERR [" + r.code + "] " + r.text
	}
	return "-ERR " + r.text
}

func (r *reply) Error() string { return "pop3: refused: " + r.wire()[len("-ERR "):] }

// Refusals. Texts are mailfront's own: backend wording never reaches a client.
var (
	errSyntax      = &reply{text: "syntax error", effect: countInvalid}
	errNUL         = &reply{text: "NUL byte in command", effect: countInvalid}
	errUnknown     = &reply{text: "unknown command", effect: countInvalid}
	errNotNow      = &reply{text: "command not valid in this state", effect: countInvalid}
	errMissingArg  = &reply{text: "missing argument", effect: countInvalid}
	errNoUser      = &reply{text: "no user name: send USER first", effect: countInvalid}
	errTLSActive   = &reply{text: "TLS already active", effect: countInvalid}
	errNoTLS       = &reply{code: "SYS/PERM", text: "STLS not available", effect: countInvalid}
	errAPOP        = &reply{text: "APOP not supported: use USER and PASS, or AUTH", effect: countInvalid}
	errMechanism   = &reply{text: "unsupported SASL mechanism: use PLAIN or LOGIN", effect: countInvalid}
	errBase64      = &reply{text: "invalid base64 in SASL response", effect: countInvalid}
	errPlainFormat = &reply{text: "malformed PLAIN response", effect: countInvalid}
	errAuthzid     = &reply{code: "AUTH", text: "authorization identity not supported", effect: countInvalid}
	errCancelled   = &reply{text: "authentication cancelled"}
	errAuthFailed  = &reply{code: "AUTH", text: "Authentication failed", effect: countFailure, outcome: proxy.OutcomeAuthFailed}
	errBackendDown = &reply{code: "SYS/TEMP", text: "Backend unavailable", outcome: proxy.OutcomeBackendDown}
	errInUse       = &reply{code: "IN-USE", text: "Mailbox in use", outcome: proxy.OutcomeAuthFailed}
	errLoginDelay  = &reply{code: "LOGIN-DELAY", text: "Login too soon", outcome: proxy.OutcomeAuthFailed}
	// errPrivacy refuses every credential before TLS (ARCHITECTURE.md invariant 1).
	errPrivacy = &reply{code: "AUTH", text: "TLS required: use STLS, or implicit TLS on port 995",
		effect: countInvalid, outcome: proxy.OutcomePrivacyRequired}
	// errGuard answers a login the guard refused: blocked network, or too
	// many logins in flight from it.
	errGuard = &reply{code: "SYS/TEMP", text: "Too many login attempts from your network; try again later",
		effect: closeAfter, outcome: proxy.OutcomeRefused}
)

// Session-ending conditions that are not refusals.
var (
	errLogout     = errors.New("pop3: client quit")
	errClientGone = errors.New("pop3: client went away")
	errTLSFailed  = errors.New("pop3: stls failed")
)

// fail is the one place where errors meet the wire: it answers the client,
// records the outcome and reports whether the session must end, with the
// error to hand the engine.
func (ss *session) fail(err error) (end bool, ret error) {
	var r *reply
	var le *proxy.LimitError
	switch {
	case errors.As(err, &r):
		r = ss.count(r)
		ss.setOutcome(r.outcome, r.effect&closeAfter != 0)
		ss.writeLine(r.wire())
		if r.effect&closeAfter != 0 {
			return true, r
		}
		return false, nil
	case errors.Is(err, errLogout):
		ss.setOutcome(proxy.OutcomeLogout, false)
		return true, nil
	case errors.Is(err, errClientGone):
		ss.setOutcome(proxy.OutcomeClientClosed, false)
		return true, err
	case errors.Is(err, errTLSFailed):
		ss.setOutcome(proxy.OutcomeTLSFailed, true)
		return true, err
	case errors.As(err, &le):
		ss.writeLine(limitText(le))
		ss.setOutcome(proxy.OutcomeLimit, true)
	case errors.Is(err, proxy.ErrIdle), errors.Is(err, proxy.ErrTotalTime):
		ss.writeLine("-ERR timeout")
		ss.setOutcome(proxy.OutcomeTimeout, true)
	case errors.Is(err, proxy.ErrShutdown):
		ss.writeLine("-ERR [SYS/TEMP] server shutting down")
		ss.setOutcome(proxy.OutcomeShutdown, true)
	default:
		ss.s.Log.Error("internal error", "error", err)
		ss.writeLine("-ERR internal error")
		ss.setOutcome(proxy.OutcomeInternal, true)
	}
	return true, err
}

// count applies a refusal's counters and escalates it to a closing reply
// when a limit is crossed.
func (ss *session) count(r *reply) *reply {
	if r.effect&countInvalid != 0 {
		ss.invalid++
		if max := ss.s.Conn.Limits().InvalidCommands; ss.invalid > max {
			return &reply{text: fmt.Sprintf("too many invalid commands (max %d)", max),
				effect: closeAfter, outcome: proxy.OutcomeProtocolError}
		}
	}
	if r.effect&countFailure != 0 {
		ss.failures++
		if ss.failures >= ss.s.Conn.Limits().AuthFailures {
			return &reply{code: "AUTH", text: "too many authentication failures",
				effect: closeAfter, outcome: proxy.OutcomeAuthFailed}
		}
	}
	return r
}

// tooManyCommands ends a session that sent more than Limits.Commands.
func tooManyCommands(max int) *reply {
	return &reply{text: fmt.Sprintf("too many commands (max %d)", max), effect: closeAfter, outcome: proxy.OutcomeLimit}
}

// limitText names the limit a client crossed.
func limitText(le *proxy.LimitError) string {
	if le.Limit == "line length" {
		return fmt.Sprintf("-ERR line too long (max %d bytes)", le.Max)
	}
	return fmt.Sprintf("-ERR %s limit exceeded (max %d)", le.Limit, le.Max)
}

// setOutcome records why the session ends. Outcomes that describe an
// attempt (privacy-required, auth-failed, backend-down) stick through a
// later QUIT or disconnect; force marks outcomes that end the session.
func (ss *session) setOutcome(o proxy.Outcome, force bool) {
	if o == "" {
		return
	}
	if force || ss.s.Outcome == "" || o == proxy.OutcomeAuthFailed ||
		o == proxy.OutcomePrivacyRequired || o == proxy.OutcomeBackendDown {
		ss.s.Outcome = o
	}
}

// isEngineError reports whether err is one the engine's Conn returns for a
// crossed limit, a timeout or shutdown.
func isEngineError(err error) bool {
	var le *proxy.LimitError
	return errors.As(err, &le) || errors.Is(err, proxy.ErrIdle) ||
		errors.Is(err, proxy.ErrTotalTime) || errors.Is(err, proxy.ErrShutdown)
}
