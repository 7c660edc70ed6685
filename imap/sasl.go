package imap

import (
	"bytes"
	"encoding/base64"

	"github.com/emersion/go-sasl"
)

// SASL LOGIN prompts (draft-murchison-sasl-login): "Username:" and
// "Password:" in base64.
const (
	promptUser = "VXNlcm5hbWU6"
	promptPass = "UGFzc3dvcmQ6"
)

// saslPlain runs PLAIN (RFC 4616). An authorization identity other than the
// user itself is refused: mailfront cannot prove to the backend that the
// user may act for someone else.
func (s *session) saslPlain(ir []byte) (credentials, error) {
	resp := ir
	if resp == nil {
		var err error
		if resp, err = s.saslResponse(""); err != nil {
			return credentials{}, err
		}
	}
	return decodePlainResponse(resp)
}

// saslLogin runs the LOGIN mechanism; an initial response is the user name.
func (s *session) saslLogin(ir []byte) (credentials, error) {
	user := ir
	if user == nil {
		var err error
		if user, err = s.saslResponse(promptUser); err != nil {
			return credentials{}, err
		}
	}
	pass, err := s.saslResponse(promptPass)
	if err != nil {
		return credentials{}, err
	}
	if bytes.IndexByte(user, 0) >= 0 || bytes.IndexByte(pass, 0) >= 0 {
		return credentials{}, bad("Invalid LOGIN response")
	}
	return credentials{user: string(user), pass: string(pass)}, nil
}

// saslResponse sends a continuation with challenge (base64) and reads the
// client's response, bounded by the line limit. "*" cancels (RFC 9051
// section 6.2.2).
func (s *session) saslResponse(challenge string) ([]byte, error) {
	if err := s.conn.WriteString("+ " + challenge + "\r\n"); err != nil {
		return nil, err
	}
	line, err := s.conn.ReadLine()
	if err != nil {
		return nil, err
	}
	if string(line) == "*" {
		return nil, bad("AUTHENTICATE cancelled")
	}
	return decodeSASL(line)
}

// decodeSASL decodes a base64 SASL response; "=" is the empty response
// (RFC 4959 section 3). The result is never nil.
func decodeSASL(b []byte) ([]byte, error) {
	if string(b) == "=" {
		return []byte{}, nil
	}
	v, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		return nil, bad("Invalid base64 in SASL response")
	}
	return v, nil
}

// decodePlain decodes a base64 PLAIN initial response.
func decodePlain(b64 []byte) (credentials, error) {
	resp, err := decodeSASL(b64)
	if err != nil {
		return credentials{}, err
	}
	return decodePlainResponse(resp)
}

// decodePlainResponse splits a PLAIN message: authzid NUL authcid NUL passwd.
func decodePlainResponse(resp []byte) (credentials, error) {
	var cr credentials
	var authz string
	srv := sasl.NewPlainServer(func(identity, user, pass string) error {
		authz, cr = identity, credentials{user: user, pass: pass}
		return nil
	})
	if _, done, err := srv.Next(resp); err != nil || !done {
		return credentials{}, bad("Invalid PLAIN response")
	}
	if authz != "" && authz != cr.user {
		return credentials{}, no("AUTHORIZATIONFAILED", "Authorization identity not supported")
	}
	return cr, nil
}
