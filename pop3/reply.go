package pop3

import (
	"errors"
	"strconv"

	"github.com/mailfront/mailfront/proxy"
)

// protoError is a refusal the client sees as one -ERR line, returned as a
// value by the parser and the command handlers. (*session).Reply and
// goodbye put them on the wire; nothing else writes a refusal.
type protoError struct {
	code    string // RFC 2449 section 8 / RFC 3206 response code, without brackets
	text    string // mailfront's own words, never a backend's or a credential
	invalid bool   // counts against Limits.InvalidCommands
	close   bool   // the session ends after the reply
	outcome proxy.Outcome
}

// line is the reply as sent.
func (e *protoError) line() string {
	if e.code != "" {
		return "-ERR [" + e.code + "] " + e.text + "\r\n"
	}
	return "-ERR " + e.text + "\r\n"
}

func (e *protoError) Error() string { return "pop3: refused: " + e.text }

// Refusals. Texts are mailfront's own: backend wording never reaches a client.
var (
	errSyntax      = &protoError{text: "syntax error", invalid: true}
	errNUL         = &protoError{text: "NUL byte in command", invalid: true}
	errUnknown     = &protoError{text: "unknown command", invalid: true}
	errNotNow      = &protoError{text: "command not valid in this state", invalid: true}
	errMissingArg  = &protoError{text: "missing argument", invalid: true}
	errNoUser      = &protoError{text: "no user name: send USER first", invalid: true}
	errTLSActive   = &protoError{text: "TLS already active", invalid: true}
	errNoTLS       = &protoError{code: "SYS/PERM", text: "STLS not available", invalid: true}
	errAPOP        = &protoError{text: "APOP not supported: use USER and PASS, or AUTH", invalid: true}
	errMechanism   = &protoError{text: "unsupported SASL mechanism: use PLAIN or LOGIN", invalid: true}
	errBase64      = &protoError{text: "invalid base64 in SASL response", invalid: true}
	errPlainFormat = &protoError{text: "malformed PLAIN response", invalid: true}
	errAuthzid     = &protoError{code: "AUTH", text: "authorization identity not supported", invalid: true}
	errCancelled   = &protoError{text: "authentication cancelled"}
	errAuthFailed  = &protoError{code: "AUTH", text: "Authentication failed"}
	errTooManyAuth = &protoError{code: "AUTH", text: "too many authentication failures", close: true, outcome: proxy.OutcomeAuthFailed}
	errBackendDown = &protoError{code: "SYS/TEMP", text: "Backend unavailable"}
	// errBackendPerm answers a login the backend cannot take until its
	// operator acts: it said SYS/PERM, or it offers no login mailfront
	// has.
	errBackendPerm = &protoError{code: "SYS/PERM", text: "Backend unavailable: its operator must act"}
	errInUse       = &protoError{code: "IN-USE", text: "Mailbox in use"}
	errLoginDelay  = &protoError{code: "LOGIN-DELAY", text: "Login too soon"}
	// errPrivacy refuses every credential before TLS (ARCHITECTURE.md
	// invariant 1).
	errPrivacy = &protoError{code: "AUTH", text: PlaintextRefusal(995), invalid: true}
	// errGuard answers a login the guard refused: blocked network, or too
	// many logins in flight from it.
	errGuard = &protoError{code: "SYS/TEMP", text: "Too many login attempts from your network; try again later",
		close: true, outcome: proxy.OutcomeRefused}
)

// goodbyes are POP3's last lines for the ends the engine causes.
var goodbyes = proxy.Goodbyes{
	Limits: map[proxy.LimitKind]string{
		proxy.LimitLine:            "-ERR line too long (max %d bytes)\r\n",
		proxy.LimitLiteral:         "-ERR literal too large (max %d bytes)\r\n", // IMAP's; never raised here
		proxy.LimitCommands:        "-ERR too many commands (max %d)\r\n",
		proxy.LimitInvalidCommands: "-ERR too many invalid commands (max %d)\r\n",
	},
	Idle:     "-ERR timeout\r\n",
	Total:    "-ERR timeout\r\n",
	Shutdown: "-ERR [SYS/TEMP] server shutting down\r\n",
	CrossProtocol: map[string]string{
		"proxy": "-ERR PROXY header refused: this address is not a trusted load balancer\r\n",
		"tls":   "-ERR this port speaks plaintext POP3 with STLS, not TLS\r\n",
		"":      "-ERR this is a POP3 server\r\n",
	},
}

// goodbye maps an error that ends the session to the -ERR line the client
// gets (empty when nothing can or should be written) and the session's
// outcome (empty to leave it to the engine). With goodbyes, it is the one
// place where what ends a session reaches the wire.
func goodbye(err error) (line string, o proxy.Outcome) {
	var pe *protoError
	if errors.As(err, &pe) { // a closing refusal, already written
		return "", pe.outcome
	}
	line, o, _ = goodbyes.For(err)
	return line, o
}

// Goodbye implements proxy.Dialogue.
func (s *session) Goodbye(err error) (string, proxy.Outcome) { return goodbye(err) }

// loginRefusal is the client's answer to a login the backend or the guard
// did not accept; backend wording never reaches the client. A refused
// password is counted (proxy.Session.Login) and the last one allowed ends
// the connection; backend trouble is not (ARCHITECTURE.md invariant 8).
func (s *session) loginRefusal(err error) error {
	var le *proxy.LoginError
	var br *backendRefusal
	switch {
	case errors.Is(err, proxy.ErrLoginRefused):
		return errGuard
	case !errors.As(err, &le):
		return err
	case le.Result == proxy.LoginFailed && s.ps.TooManyFailures():
		return errTooManyAuth
	case le.Result == proxy.LoginFailed:
		return errAuthFailed
	case le.Result == proxy.LoginBusy && errors.As(err, &br) && br.code == "LOGIN-DELAY":
		return errLoginDelay
	case le.Result == proxy.LoginBusy:
		return errInUse
	case errors.Is(err, errNoLoginMethod), errors.As(err, &br) && br.code == "SYS/PERM":
		return errBackendPerm
	}
	return errBackendDown
}

// Reply answers a command that did not end the session: nil, or an -ERR
// line, refused logins included. A refusal that crosses
// Limits.InvalidCommands is replaced by the limit's goodbye. Any other
// error is returned: it ends the session.
func (s *session) Reply(_ *command, err error) error {
	var pe *protoError
	if err == nil || !errors.As(s.loginRefusal(err), &pe) {
		return err
	}
	if pe.invalid {
		if lerr := s.ps.CountInvalid(); lerr != nil {
			return lerr
		}
	}
	if werr := s.conn.WriteString(pe.line()); werr != nil {
		return werr
	}
	if pe.close {
		return pe
	}
	return nil
}

// PlaintextRefusal is the text refusing a login before TLS on a STLS
// listener when the same server takes implicit TLS on port implicit (0:
// none, or not known).
func PlaintextRefusal(implicit int) string {
	if implicit == 0 {
		return "TLS required: use STLS"
	}
	return "TLS required: use STLS, or implicit TLS on port " + strconv.Itoa(implicit)
}
