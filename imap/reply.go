package imap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// protoError is a protocol outcome returned by the parser and the command
// handlers as a value: a tagged BAD or NO that leaves the session running,
// or a BYE that ends it. (*session).Reply and goodbye put them on the wire;
// nothing else writes a refusal.
type protoError struct {
	status  string // "BAD", "NO" or "BYE"
	code    string // response code without brackets (RFC 5530), or ""
	text    string // human-readable text, never a backend's or a credential
	outcome proxy.Outcome
	then    error // for a tagged reply: end the session with this after it
}

func (e *protoError) Error() string {
	return fmt.Sprintf("imap: %s: %s", strings.ToLower(e.status), e.text)
}

// line is the response for tag ("*" for untagged).
func (e *protoError) line(tag string) string {
	if e.code != "" {
		return fmt.Sprintf("%s %s [%s] %s\r\n", tag, e.status, e.code, e.text)
	}
	return fmt.Sprintf("%s %s %s\r\n", tag, e.status, e.text)
}

func bad(text string) *protoError { return &protoError{status: "BAD", text: text} }

func no(code, text string) *protoError { return &protoError{status: "NO", code: code, text: text} }

func bye(code, text string, o proxy.Outcome) *protoError {
	return &protoError{status: "BYE", code: code, text: text, outcome: o}
}

// goodbyes are IMAP's last lines for the ends the engine causes.
var goodbyes = proxy.Goodbyes{
	Limits: map[proxy.LimitKind]string{
		proxy.LimitLine: "* BYE [LIMIT] Line too long (max %d bytes)\r\n",
		// RFC 7888 section 4: TOOBIG for a literal over the server's limit.
		proxy.LimitLiteral:         "* BYE [TOOBIG] Literal too large (max %d bytes)\r\n",
		proxy.LimitCommands:        "* BYE [LIMIT] Too many commands before login (max %d)\r\n",
		proxy.LimitInvalidCommands: "* BYE [LIMIT] Too many invalid commands (max %d)\r\n",
	},
	Idle:     "* BYE Autologout; idle for too long\r\n",
	Total:    "* BYE Autologout; session time limit exceeded\r\n",
	Shutdown: "* BYE [UNAVAILABLE] Server shutting down\r\n",
	CrossProtocol: map[string]string{
		"proxy": "* BYE PROXY header refused: this address is not a trusted load balancer\r\n",
		"tls":   "* BYE This port speaks plaintext IMAP with STARTTLS, not TLS\r\n",
		"":      "* BYE This is an IMAP server\r\n",
	},
}

// goodbye maps an error that ends the session to the untagged BYE the client
// gets (empty when nothing can or should be written) and the session's
// outcome (empty to leave it to the engine). With goodbyes, it is the one
// place where what ends a session reaches the wire.
func goodbye(err error) (line string, o proxy.Outcome) {
	var pe *protoError
	if errors.As(err, &pe) && pe.status == "BYE" {
		return pe.line("*"), pe.outcome
	}
	line, o, _ = goodbyes.For(err)
	return line, o
}

// Goodbye implements proxy.Dialogue.
func (s *session) Goodbye(err error) (string, proxy.Outcome) { return goodbye(err) }

// loginRefusal is the client's answer to a login the backend or the guard
// did not accept. The backend's own text never reaches the client. A
// refused password is counted (proxy.Session.Login) and the last one
// allowed ends the connection; backend trouble is not (ARCHITECTURE.md
// invariant 8).
func (s *session) loginRefusal(err error) error {
	var le *proxy.LoginError
	switch {
	case errors.Is(err, proxy.ErrLoginRefused):
		// The network is blocked or has too many logins in flight: come
		// back later, and the connection ends.
		r := no("UNAVAILABLE", "Too many login attempts from your network; try again later")
		r.then = bye("UNAVAILABLE", "Try again later", proxy.OutcomeRefused)
		return r
	case !errors.As(err, &le):
		return err
	case le.Result == proxy.LoginFailed:
		r := no("AUTHENTICATIONFAILED", "Authentication failed.")
		if s.ps.TooManyFailures() {
			r.then = bye("", "Too many authentication failures", proxy.OutcomeAuthFailed)
		}
		return r
	case le.Result == proxy.LoginBusy:
		return no("INUSE", "Mailbox in use; try again later")
	}
	// The user's own business, in the backend's code: their password
	// expired, or their account needs an administrator.
	var br *backendRefusal
	if errors.As(err, &br) {
		switch br.code {
		case "EXPIRED":
			return no("EXPIRED", "The backend says your password or account has expired")
		case "CONTACTADMIN":
			return no("CONTACTADMIN", "The backend refuses this login: contact your administrator")
		}
	}
	return no("UNAVAILABLE", "Backend unavailable")
}

// Reply answers a command that did not end the session: nil, a tagged BAD
// (counted against Limits.InvalidCommands) or a tagged NO, refused logins
// included. Any other error is returned: it ends the session.
func (s *session) Reply(cmd *command, err error) error {
	var pe *protoError
	if err == nil || !errors.As(s.loginRefusal(err), &pe) || pe.status == "BYE" {
		return err
	}
	tag := cmd.tag
	if tag == "" {
		tag = "*"
	}
	if werr := s.conn.WriteString(pe.line(tag)); werr != nil {
		return werr
	}
	if pe.then != nil {
		return pe.then
	}
	if pe.status != "BAD" {
		return nil
	}
	return s.ps.CountInvalid()
}
