package imap

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Bounds on what mailfront reads from a backend during login. The backend's
// line limit is the engine's (64 KiB); a literal in an untagged response
// (an ID reply, say) is read and dropped.
const (
	backendLiteralMax = 64 << 10
	backendParts      = 16 // literals in one response
)

// errBackendProtocol means the backend said something mailfront cannot use.
var errBackendProtocol = errors.New("imap: backend protocol error")

// response is one backend response (RFC 9051 section 7).
type response struct {
	tag    string // "*" untagged, "+" continuation, or a command tag
	status string // OK, NO, BAD, BYE or PREAUTH; "" for data and continuations
	code   string // response code contents: "CAPABILITY IMAP4rev1 IDLE"
	text   string
	data   string // untagged data after "* ": "CAPABILITY IMAP4rev1 IDLE"
}

var statuses = []string{"OK", "NO", "BAD", "BYE", "PREAUTH"}

// parseResponse parses one response line (literals already folded).
func parseResponse(line []byte) (*response, error) {
	if len(line) == 0 {
		return nil, fmt.Errorf("%w: empty line", errBackendProtocol)
	}
	if line[0] == '+' && (len(line) == 1 || line[1] == ' ') {
		return &response{tag: "+", text: strings.TrimPrefix(string(line[1:]), " ")}, nil
	}
	tag, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(tag) == 0 || (string(tag) != "*" && !validTag(tag)) {
		return nil, fmt.Errorf("%w: malformed response", errBackendProtocol)
	}
	r := &response{tag: string(tag)}
	word, after, _ := bytes.Cut(rest, []byte(" "))
	status := strings.ToUpper(string(word))
	if !isStatus(status) {
		if r.tag != "*" {
			return nil, fmt.Errorf("%w: tagged response without status", errBackendProtocol)
		}
		r.data = string(rest)
		return r, nil
	}
	r.status = status
	if len(after) > 0 && after[0] == '[' {
		code, text, ok := bytes.Cut(after[1:], []byte("]"))
		if !ok {
			return nil, fmt.Errorf("%w: unterminated response code", errBackendProtocol)
		}
		r.code = string(code)
		after = bytes.TrimPrefix(text, []byte(" "))
	}
	r.text = string(after)
	return r, nil
}

func isStatus(s string) bool {
	for _, st := range statuses {
		if s == st {
			return true
		}
	}
	return false
}

func validTag(b []byte) bool {
	for _, c := range b {
		if !isTagChar(c) {
			return false
		}
	}
	return true
}

// capabilities returns the capability list a response carries, in its
// response code ([CAPABILITY ...]) or as untagged CAPABILITY data, and
// whether it had one.
func (r *response) capabilities() ([]string, bool) {
	for _, s := range []string{r.code, r.data} {
		name, rest, _ := strings.Cut(s, " ")
		if strings.EqualFold(name, "CAPABILITY") {
			return parseCaps(rest), true
		}
	}
	return nil, false
}

// literalAtEnd returns the size of a synchronizing literal "{n}" ending
// line, or -1 when there is none. A literal over backendLiteralMax is an
// error.
func literalAtEnd(line []byte) (int, error) {
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return -1, nil
	}
	n, sync, err := literalSize(line[i:], backendLiteralMax, backendLiteralMax)
	switch {
	case isProto(err), err == nil && !sync:
		return -1, nil
	case err != nil:
		return 0, fmt.Errorf("%w: %w", errBackendProtocol, err)
	}
	return n, nil
}
