package pop3

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct{ line, want string }{
		{"CAPA", ""},
		{"USER alice", "alice"},
		{"PASS " + alicePassword, "[redacted]"},
		{"APOP alice c4c9334bac560ecc979e58001b3e22fb", "[redacted]"},
		{"AUTH PLAIN", "PLAIN"},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldA==", "PLAIN [redacted]"},
		{"XYZ " + strings.Repeat("a", 100), strings.Repeat("a", 64) + "..."},
	}
	for _, tt := range tests {
		req, err := parse([]byte(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		if got := redact(req); got != tt.want {
			t.Errorf("redact(%q): got %q, want %q", tt.line, got, tt.want)
		}
	}
}

// TestTraceHidesPasswords: traces are on in every test (the fixture logs at
// levelTrace) and the fixture fails a test whose logs hold a password; this
// one makes sure traces are really written.
func TestTraceHidesPasswords(t *testing.T) {
	t.Parallel()
	f := startProxy(t)
	w := f.tlsReady(t, "implicit")
	w.send("USER alice", "PASS "+wrongPassword, "PASS")
	w.expect("+OK send PASS")
	w.expect("-ERR [AUTH] Authentication failed")
	w.expect("-ERR no user name: send USER first")
	w.send("USER alice", "PASS")
	w.expect("+OK send PASS")
	w.expect("-ERR missing argument")
	f.logs.WaitFor(t, 1, "msg=command", "name=PASS", "args=[redacted]")
}
