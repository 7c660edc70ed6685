package pop3

import (
	"encoding/base64"
	"strings"

	"github.com/emersion/go-sasl"
)

// refusePlaintext answers USER, PASS, APOP and AUTH before TLS: -ERR [AUTH]
// at once, never a continuation, and the backend is not dialled
// (ARCHITECTURE.md invariant 1). The user name is logged where the command
// carries one (USER, APOP, AUTH PLAIN with an initial response), so
// operators can find the users whose clients still need changing; nothing
// else is.
func refusePlaintext(s *session, cmd *command) error {
	text := s.ps.RefusePlaintext(cmd.name, refusedUser(cmd), errPrivacy.text)
	if text == errPrivacy.text {
		return errPrivacy
	}
	r := *errPrivacy
	r.text = text
	return &r
}

// refusedUser is the user name a refused plaintext command carries.
func refusedUser(cmd *command) string {
	switch {
	case cmd.name == "USER":
		return cmd.rest
	case cmd.name == "APOP" && len(cmd.args) == 2:
		return cmd.args[0]
	case cmd.name == "AUTH" && len(cmd.args) == 2 && strings.EqualFold(cmd.args[0], "PLAIN"):
		resp, err := decodeResponse(cmd.args[1])
		if err != nil {
			return ""
		}
		if parts := strings.Split(string(resp), "\x00"); len(parts) == 3 {
			return parts[1]
		}
	}
	return ""
}

// cmdUser takes a name for PASS. Every name gets the same +OK: unknown
// names are only found out by the backend, at PASS (RFC 1939 section 7
// permits it).
func cmdUser(s *session, cmd *command) error {
	if cmd.rest == "" {
		return errMissingArg
	}
	s.user, s.state = cmd.rest, stateUser
	return s.ok("send PASS")
}

// cmdPass logs in with the name from USER. The password is the rest of the
// line, spaces included.
func cmdPass(s *session, cmd *command) error {
	if cmd.rest == "" {
		return errMissingArg
	}
	user := s.user
	s.user, s.state = "", stateTLS
	return s.login(user, cmd.rest, "USER")
}

func cmdPassWithoutUser(*session, *command) error { return errNoUser }

// cmdAPOP is refused under TLS: its digest needs the backend's timestamp,
// which mailfront's greeting does not carry.
func cmdAPOP(*session, *command) error { return errAPOP }

// cmdAuth runs AUTH (RFC 5034) for PLAIN (RFC 4616) and LOGIN, with or
// without an initial response. Without a mechanism it lists them (the RFC
// 1734 form some clients still send).
func cmdAuth(s *session, cmd *command) error {
	s.user, s.state = "", stateTLS
	if len(cmd.args) == 0 {
		return s.conn.WriteString("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n")
	}
	if len(cmd.args) > 2 {
		return errSyntax
	}
	var ir []byte
	if len(cmd.args) == 2 {
		var err error
		if ir, err = decodeResponse(cmd.args[1]); err != nil {
			return err
		}
	}
	switch strings.ToUpper(cmd.args[0]) {
	case "PLAIN":
		return s.authPlain(ir)
	case "LOGIN":
		return s.authLogin(ir)
	}
	return errMechanism
}

func (s *session) authPlain(ir []byte) error {
	var authzid, user, pass string
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		authzid, user, pass = identity, username, password
		return nil
	})
	resp := ir
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return errPlainFormat
		}
		if done {
			break
		}
		if resp, err = s.challenge(challenge); err != nil {
			return err
		}
	}
	if authzid != "" && authzid != user {
		return errAuthzid
	}
	return s.login(user, pass, "PLAIN")
}

// authLogin runs the LOGIN mechanism: user name, then password, each
// prompted for unless the initial response carried the name.
func (s *session) authLogin(ir []byte) error {
	user := ir
	if user == nil {
		var err error
		if user, err = s.challenge([]byte("Username:")); err != nil {
			return err
		}
	}
	pass, err := s.challenge([]byte("Password:"))
	if err != nil {
		return err
	}
	return s.login(string(user), string(pass), "LOGIN")
}

// challenge sends a continuation and reads the client's response: "*"
// cancels (RFC 5034 section 4).
func (s *session) challenge(c []byte) ([]byte, error) {
	if err := s.conn.WriteString("+ " + base64.StdEncoding.EncodeToString(c) + "\r\n"); err != nil {
		return nil, err
	}
	line, err := s.conn.ReadLine()
	if err != nil {
		return nil, err
	}
	if string(line) == "*" {
		return nil, errCancelled
	}
	return decodeResponse(string(line))
}

// decodeResponse decodes a SASL response; "=" is the empty initial
// response (RFC 5034 section 4).
func decodeResponse(s string) ([]byte, error) {
	if s == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errBase64
	}
	return b, nil
}
