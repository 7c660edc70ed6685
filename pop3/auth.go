package pop3

import (
	"encoding/base64"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/mailfront/mailfront/proxy"
)

// refusePlaintext answers USER, PASS, APOP and AUTH before TLS: -ERR [AUTH]
// at once, never a continuation, and the backend is not dialled (ARCHITECTURE.md
// invariant 1). The user name is logged where the command carries one
// (USER, APOP, AUTH PLAIN with an initial response), so operators can find
// the users whose clients still need changing; nothing else is.
func (ss *session) refusePlaintext(req request) (*proxy.Handoff, error) {
	attrs := []any{"command", req.name}
	if user := refusedUser(req); user != "" {
		attrs = append(attrs, "user", user)
	}
	ss.s.Log.Info("plaintext login refused", attrs...)
	text := ss.s.RefusedPlaintext(errPrivacy.text)
	if text == errPrivacy.text {
		return nil, errPrivacy
	}
	r := *errPrivacy
	r.text = text
	return nil, &r
}

// refusedUser is the user name a refused plaintext command carries.
func refusedUser(req request) string {
	switch {
	case req.name == "USER":
		return req.rest
	case req.name == "APOP" && len(req.args) == 2:
		return req.args[0]
	case req.name == "AUTH" && len(req.args) == 2 && strings.EqualFold(req.args[0], "PLAIN"):
		resp, err := decodeResponse(req.args[1])
		if err != nil {
			return ""
		}
		if parts := strings.Split(string(resp), "\x00"); len(parts) == 3 {
			return parts[1]
		}
	}
	return ""
}

// user takes a name for PASS. Every name gets the same +OK: unknown names
// are only found out by the backend, at PASS (RFC 1939 section 7 permits it).
func (ss *session) user(req request) (*proxy.Handoff, error) {
	if req.rest == "" {
		return nil, errMissingArg
	}
	ss.username, ss.state = req.rest, stateUser
	return nil, ss.write("+OK send PASS\r\n")
}

// pass logs in with the name from USER. The password is the rest of the
// line, spaces included.
func (ss *session) pass(req request) (*proxy.Handoff, error) {
	if req.rest == "" {
		return nil, errMissingArg
	}
	user := ss.username
	ss.username, ss.state = "", stateSecure
	return ss.login(user, req.rest, "USER")
}

func (ss *session) passWithoutUser(request) (*proxy.Handoff, error) { return nil, errNoUser }

// apop is refused under TLS: its digest needs the backend's timestamp, which
// mailfront's greeting does not carry.
func (ss *session) apop(request) (*proxy.Handoff, error) { return nil, errAPOP }

// auth runs AUTH (RFC 5034) for PLAIN (RFC 4616) and LOGIN, with or without
// an initial response. Without a mechanism it lists them (the RFC 1734
// form some clients still send).
func (ss *session) auth(req request) (*proxy.Handoff, error) {
	ss.username, ss.state = "", stateSecure
	if len(req.args) == 0 {
		return nil, ss.write("+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n")
	}
	if len(req.args) > 2 {
		return nil, errSyntax
	}
	var ir []byte
	if len(req.args) == 2 {
		var err error
		if ir, err = decodeResponse(req.args[1]); err != nil {
			return nil, err
		}
	}
	switch strings.ToUpper(req.args[0]) {
	case "PLAIN":
		return ss.authPlain(ir)
	case "LOGIN":
		return ss.authLogin(ir)
	}
	return nil, errMechanism
}

func (ss *session) authPlain(ir []byte) (*proxy.Handoff, error) {
	var authzid, user, pass string
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		authzid, user, pass = identity, username, password
		return nil
	})
	resp := ir
	for {
		challenge, done, err := srv.Next(resp)
		if err != nil {
			return nil, errPlainFormat
		}
		if done {
			break
		}
		if resp, err = ss.challenge(challenge); err != nil {
			return nil, err
		}
	}
	if authzid != "" && authzid != user {
		return nil, errAuthzid
	}
	return ss.login(user, pass, "PLAIN")
}

// authLogin runs the LOGIN mechanism: user name, then password, each
// prompted for unless the initial response carried the name.
func (ss *session) authLogin(ir []byte) (*proxy.Handoff, error) {
	user := ir
	if user == nil {
		var err error
		if user, err = ss.challenge([]byte("Username:")); err != nil {
			return nil, err
		}
	}
	pass, err := ss.challenge([]byte("Password:"))
	if err != nil {
		return nil, err
	}
	return ss.login(string(user), string(pass), "LOGIN")
}

// challenge sends a continuation and reads the client's response: "*"
// cancels (RFC 5034 section 4).
func (ss *session) challenge(c []byte) ([]byte, error) {
	if err := ss.write("+ " + base64.StdEncoding.EncodeToString(c) + "\r\n"); err != nil {
		return nil, err
	}
	line, err := ss.readLine()
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
