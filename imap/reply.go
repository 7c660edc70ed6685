package imap

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// protoError is a protocol outcome returned by the parser and the command
// handlers as a value: a tagged BAD or NO that leaves the session running,
// or a BYE that ends it. (*session).reply and goodbye put them on the wire;
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

// errLogout ends a session after LOGOUT was answered.
var errLogout = errors.New("imap: client logged out")

// goodbye maps an error that ends the session to the untagged BYE the client
// gets (empty when nothing can or should be written) and the session's
// outcome (empty to leave it to the engine). This is the one place where
// limits, timeouts and shutdown reach the wire.
func goodbye(err error) (line string, o proxy.Outcome) {
	var pe *protoError
	var le *proxy.LimitError
	switch {
	case errors.Is(err, errLogout):
		return "", proxy.OutcomeLogout
	case errors.As(err, &pe) && pe.status == "BYE":
		return pe.line("*"), pe.outcome
	case errors.As(err, &le):
		return limitBye(le)
	case errors.Is(err, proxy.ErrIdle):
		return "* BYE Autologout; idle for too long\r\n", proxy.OutcomeTimeout
	case errors.Is(err, proxy.ErrTotalTime):
		return "* BYE Autologout; session time limit exceeded\r\n", proxy.OutcomeTimeout
	case errors.Is(err, proxy.ErrShutdown):
		return "* BYE [UNAVAILABLE] Server shutting down\r\n", proxy.OutcomeShutdown
	}
	return "", ""
}

// limitBye names the limit that was hit.
func limitBye(le *proxy.LimitError) (string, proxy.Outcome) {
	switch le.Limit {
	case "line length":
		return fmt.Sprintf("* BYE [LIMIT] Line too long (max %d bytes)\r\n", le.Max), proxy.OutcomeLimit
	case "literal size":
		// RFC 7888 section 4: TOOBIG for a literal over the server's limit.
		return fmt.Sprintf("* BYE [TOOBIG] Literal too large (max %d bytes)\r\n", le.Max), proxy.OutcomeLimit
	case "commands":
		return fmt.Sprintf("* BYE [LIMIT] Too many commands before login (max %d)\r\n", le.Max), proxy.OutcomeLimit
	case "invalid commands":
		return fmt.Sprintf("* BYE [LIMIT] Too many invalid commands (max %d)\r\n", le.Max), proxy.OutcomeProtocolError
	}
	return fmt.Sprintf("* BYE [LIMIT] %s limit exceeded (max %d)\r\n", le.Limit, le.Max), proxy.OutcomeLimit
}

// reply answers a command that did not end the session: nil, a tagged BAD
// (counted against Limits.InvalidCommands) or a tagged NO. Any other error
// is returned for end.
func (s *session) reply(tag string, err error) error {
	var pe *protoError
	if err == nil || !errors.As(err, &pe) || pe.status == "BYE" {
		return err
	}
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
	s.invalid++
	if s.invalid > s.lim.InvalidCommands {
		return &proxy.LimitError{Limit: "invalid commands", Max: int64(s.lim.InvalidCommands)}
	}
	return nil
}

// end says goodbye for err, records the outcome and returns what Serve
// returns. Limits, timeouts and shutdown override an earlier outcome; a
// LOGOUT or a vanished client keeps it (a refused login followed by LOGOUT
// is still a refused login).
func (s *session) end(err error) error {
	line, o := goodbye(err)
	if line != "" {
		s.conn.WriteString(line)
	}
	switch {
	case o == proxy.OutcomeLogout:
		if s.ps.Outcome == "" {
			s.ps.Outcome = o
		}
		return nil
	case o != "":
		s.ps.Outcome = o
	}
	return err
}
