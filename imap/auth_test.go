package imap

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// step is one exchange: what the client sends and the line it expects back
// (a prefix).
type step struct{ send, want string }

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	canonical := `mf1 LOGIN "alice" ` + quote(testPassword) + "\r\n"
	tests := []struct {
		name      string
		steps     []step
		wantLogin bool // the backend saw the canonical login
	}{
		{"PLAIN with SASL-IR", []step{
			{"a AUTHENTICATE PLAIN " + plainIR("", testUser, testPassword) + "\r\n", "a OK [CAPABILITY "},
		}, true},
		{"PLAIN with continuation", []step{
			{"a AUTHENTICATE PLAIN\r\n", "+ "},
			{plainIR("", testUser, testPassword) + "\r\n", "a OK [CAPABILITY "},
		}, true},
		{"PLAIN authzid is the user", []step{
			{"a AUTHENTICATE plain " + plainIR(testUser, testUser, testPassword) + "\r\n", "a OK "},
		}, true},
		{"PLAIN other authzid", []step{
			{"a AUTHENTICATE PLAIN " + plainIR("root", testUser, testPassword) + "\r\n", "a NO [AUTHORIZATIONFAILED] "},
		}, false},
		{"PLAIN empty initial response", []step{
			{"a AUTHENTICATE PLAIN =\r\n", "a BAD "},
		}, false},
		{"PLAIN malformed", []step{
			{"a AUTHENTICATE PLAIN " + b64("alice") + "\r\n", "a BAD Invalid PLAIN response"},
		}, false},
		{"PLAIN bad base64", []step{
			{"a AUTHENTICATE PLAIN\r\n", "+ "},
			{"!!!\r\n", "a BAD Invalid base64"},
		}, false},
		{"PLAIN cancelled", []step{
			{"a AUTHENTICATE PLAIN\r\n", "+ "},
			{"*\r\n", "a BAD AUTHENTICATE cancelled"},
		}, false},
		{"LOGIN", []step{
			{"a AUTHENTICATE LOGIN\r\n", "+ VXNlcm5hbWU6"},
			{b64(testUser) + "\r\n", "+ UGFzc3dvcmQ6"},
			{b64(testPassword) + "\r\n", "a OK [CAPABILITY "},
		}, true},
		{"LOGIN with initial user", []step{
			{"a AUTHENTICATE LOGIN " + b64(testUser) + "\r\n", "+ UGFzc3dvcmQ6"},
			{b64(testPassword) + "\r\n", "a OK "},
		}, true},
		{"LOGIN cancelled at password", []step{
			{"a AUTHENTICATE LOGIN\r\n", "+ VXNlcm5hbWU6"},
			{b64(testUser) + "\r\n", "+ UGFzc3dvcmQ6"},
			{"*\r\n", "a BAD AUTHENTICATE cancelled"},
		}, false},
		{"LOGIN NUL in user", []step{
			{"a AUTHENTICATE LOGIN " + b64("al\x00ice") + "\r\n", "+ UGFzc3dvcmQ6"},
			{b64(testPassword) + "\r\n", "a BAD Invalid LOGIN response"},
		}, false},
		{"unknown mechanism", []step{
			{"a AUTHENTICATE SCRAM-SHA-256\r\n", "a NO Unsupported authentication mechanism"},
		}, false},
		{"quoted initial response", []step{
			{"a AUTHENTICATE PLAIN \"x\"\r\n", "a BAD "},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := startFake(t, nil)
			e := startProxy(t, proxyConfig{Backend: fb.addr()})
			w := e.implicitReady(t)
			for _, s := range tt.steps {
				w.send(s.send)
				w.expect(s.want)
			}
			defer func() { checkNoSecrets(t, e.logs.String()) }()
			if !tt.wantLogin {
				w.send("z NOOP\r\n")
				w.expect("z OK NOOP completed")
				if n := e.dials.Load(); n != 0 {
					t.Errorf("backend dialled %d times, want 0", n)
				}
				return
			}
			w.relayed()
			if got := fb.received(0); got != canonical+"r NOOP\r\n" {
				t.Errorf("backend received %q, want %q", got, canonical+"r NOOP\r\n")
			}
		})
	}
}

// TestSASLLineBounded: a SASL response is one line, bounded by the line
// limit like a command.
func TestSASLLineBounded(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	w := e.implicitReady(t)
	w.send("a AUTHENTICATE PLAIN\r\n")
	w.expect("+ ")
	w.send(strings.Repeat("QUFB", 2100) + "\r\n")
	if got := w.closed(); got != "* BYE [LIMIT] Line too long (max 8192 bytes)\r\n" {
		t.Errorf("got %q, want the line-length BYE", got)
	}
}

func TestLoginSyntax(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	tests := []struct{ send, want string }{
		{"a LOGIN alice\r\n", "a BAD LOGIN takes a user name and a password"},
		{"a LOGIN alice b c\r\n", "a BAD LOGIN takes a user name and a password"},
		{"a LOGIN (alice) b\r\n", "a BAD LOGIN takes a user name and a password"},
		{"a AUTHENTICATE\r\n", "a BAD AUTHENTICATE takes a mechanism"},
		{"a AUTHENTICATE \"PLAIN\"\r\n", "a BAD AUTHENTICATE takes a mechanism"},
		{"a ID\r\n", "a BAD ID takes one argument"},
		{"a ID (\"name\")\r\n", "a BAD Invalid ID parameter list"},
		{"a ID (name \"x\")\r\n", "a BAD Invalid ID field name"},
		{fmt.Sprintf("a ID (\"name\" %q)\r\n", strings.Repeat("v", 1025)), "a BAD Invalid ID field value"},
	}
	for _, tt := range tests {
		w := e.implicitReady(t)
		w.send(tt.send)
		if got := w.line(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.send, got, tt.want)
		}
	}
}

// checkNoSecrets is ARCHITECTURE.md invariant 6 for the logs of one test, traces
// included: neither the password nor any encoding of it appears.
func checkNoSecrets(t *testing.T, logs string) {
	t.Helper()
	for _, secret := range []string{testPassword, quote(testPassword), b64(testPassword),
		plainIR("", testUser, testPassword), plainIR(testUser, testUser, testPassword)} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the password (as %q)", secret)
		}
	}
}
