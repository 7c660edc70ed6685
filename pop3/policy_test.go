package pop3

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

const privacyReply = "-ERR [AUTH] TLS required: use STLS, or implicit TLS on port 995"

// apopTimestamp is the msg-id of RFC 1939 section 7.
var apopTimestamp = regexp.MustCompile(`<[^>]*@[^>]*>`)

func TestGreeting_NoAPOPTimestamp(t *testing.T) {
	t.Parallel()
	f := startProxy(t, forbidBackend())
	for _, mode := range []string{"starttls", "implicit"} {
		t.Run(mode, func(t *testing.T) {
			w := f.dialPlain
			if mode == "implicit" {
				w = f.dialTLS
			}
			got := w(t).line()
			if got != greeting {
				t.Fatalf("got greeting %q, want %q", got, greeting)
			}
			if apopTimestamp.MatchString(got) || strings.Contains(got, "pop3mem") {
				t.Fatalf("got greeting %q, want no APOP timestamp and no backend banner", got)
			}
		})
	}
}

func TestPlaintextLoginRefused(t *testing.T) {
	t.Parallel()
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + alicePassword))
	tests := []struct {
		name  string
		steps []string // each is refused with privacyReply
	}{
		{"USER", []string{"USER alice"}},
		{"PASS", []string{"PASS " + alicePassword}},
		{"USER then PASS", []string{"USER alice", "PASS " + alicePassword}},
		{"APOP", []string{"APOP alice c4c9334bac560ecc979e58001b3e22fb"}},
		{"AUTH PLAIN", []string{"AUTH PLAIN"}},
		{"AUTH PLAIN with initial response", []string{"AUTH PLAIN " + plain}},
		{"AUTH LOGIN", []string{"AUTH LOGIN"}},
		{"AUTH without mechanism", []string{"AUTH"}},
		{"lower case", []string{"user alice", "pass " + alicePassword}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startProxy(t, forbidBackend())
			w := f.greeted(t)
			for _, cmd := range tt.steps {
				w.send(cmd)
				w.expect(privacyReply) // never "+ ", never forwarded
			}
			w.send("QUIT")
			w.expect("+OK mailfront signing off")
			w.closed()
			f.logs.WaitFor(t, 1, "session end", "outcome=privacy-required")
			f.logs.WaitFor(t, 1, "plaintext login refused")
			switch tt.name {
			case "USER", "APOP", "AUTH PLAIN with initial response":
				f.logs.WaitFor(t, 1, "plaintext login refused", "user=alice")
			}
			if n := f.dials.Load(); n != 0 {
				t.Fatalf("got %d backend dials, want 0", n)
			}
		})
	}
}

// TestSTLSInjection_CVE_2011_0411: commands pipelined after STLS in the
// plaintext phase must never run inside TLS (CVE-2011-0411, Postfix and
// many POP3/IMAP servers).
func TestSTLSInjection_CVE_2011_0411(t *testing.T) {
	t.Parallel()
	injections := []struct{ name, payload string }{
		{"CAPA", "CAPA\r\n"},
		{"login", "USER alice\r\nPASS " + alicePassword + "\r\n"},
	}
	for _, inj := range injections {
		for _, split := range []bool{false, true} {
			name := inj.name + "/one write"
			if split {
				name = inj.name + "/two writes"
			}
			t.Run(name, func(t *testing.T) {
				f := startProxy(t, forbidBackend())
				w := f.greeted(t)
				if split {
					w.write("STLS\r\n")
					w.write(inj.payload) // a second segment, without waiting for the reply
				} else {
					w.write("STLS\r\n" + inj.payload)
				}
				w.expect("+OK Begin TLS negotiation")
				if err := w.upgrade(f.clientTLS); err != nil {
					// The injected bytes reached the handshake: closing is allowed.
					t.Logf("handshake failed (allowed): %v", err)
					return
				}
				w.send("QUIT")
				if got := w.line(); got != "+OK mailfront signing off" {
					t.Fatalf("got %q as the first reply under TLS, want QUIT's: the injected command ran", got)
				}
				if !split {
					f.logs.WaitFor(t, 1, "discarded bytes sent before tls handshake")
				}
			})
		}
	}
}

func TestSTLSRefused(t *testing.T) {
	t.Parallel()
	f := startProxy(t, forbidBackend())
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			w := f.tlsReady(t, mode)
			w.send("STLS")
			w.expect("-ERR TLS already active")
			w.send("CAPA")
			w.expect("+OK Capability list follows")
			w.multiline()
		})
	}
}

// TestCrossProtocol: a first line in another protocol (a browser's
// request, an SMTP client, a TLS client on the STLS port) gets one -ERR and
// a close, before anything else is read; as a later line it is just an
// unknown command.
func TestCrossProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, mode, send, want string
	}{
		{"http", "plain", "GET / HTTP/1.1\r\nHost: mail.example.com\r\n", "-ERR this is a POP3 server"},
		{"http under TLS", "implicit", "POST /x HTTP/1.1\r\n", "-ERR this is a POP3 server"},
		{"smtp", "plain", "EHLO mail.example.com\r\n", "-ERR this is a POP3 server"},
		{"tls client hello", "plain", "\x16\x03\x01\x00\xf4\x01\x00\x00\xf0", "-ERR this port speaks plaintext POP3 with STLS, not TLS"},
	}
	f := startProxy(t, forbidBackend())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.ready(t, tt.mode)
			w.write(tt.send)
			w.expect(tt.want)
			w.closed()
		})
	}
	f.logs.WaitFor(t, len(tests), "session end", "outcome=protocol-error")
	t.Run("not the first line", func(t *testing.T) {
		w := f.greeted(t)
		w.send("CAPA", "GET / HTTP/1.1")
		w.expect("+OK Capability list follows")
		w.multiline()
		w.expect("-ERR unknown command")
		w.send("QUIT")
		w.expect("+OK mailfront signing off")
	})
}

func TestCommandsBeforeLogin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, mode, cmd, want string
	}{
		{"NOOP before TLS", "plain", "NOOP", "-ERR command not valid in this state"},
		{"NOOP under TLS", "implicit", "NOOP", "-ERR command not valid in this state"},
		{"STAT under TLS", "stls", "STAT", "-ERR command not valid in this state"},
		{"unknown", "plain", "XYZZY", "-ERR unknown command"},
		{"empty line", "plain", "", "-ERR syntax error"},
		{"APOP under TLS", "implicit", "APOP alice c4c9334bac560ecc979e58001b3e22fb", "-ERR APOP not supported: use USER and PASS, or AUTH"},
		{"PASS without USER", "implicit", "PASS " + alicePassword, "-ERR no user name: send USER first"},
		{"USER without name", "implicit", "USER", "-ERR missing argument"},
		{"NUL", "plain", "CA\x00PA", "-ERR NUL byte in command"},
	}
	f := startProxy(t, forbidBackend())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.ready(t, tt.mode)
			w.send(tt.cmd)
			w.expect(tt.want)
			w.send("QUIT") // the session goes on
			w.expect("+OK mailfront signing off")
			w.closed()
		})
	}
}

func TestQuitBeforeLogin(t *testing.T) {
	t.Parallel()
	f := startProxy(t, forbidBackend())
	w := f.greeted(t)
	w.send("QUIT")
	w.expect("+OK mailfront signing off")
	w.closed()
	f.logs.WaitFor(t, 1, "session end", "outcome=logout")
}

func TestCAPA(t *testing.T) {
	t.Parallel()
	base := []string{"USER", "SASL PLAIN LOGIN", "RESP-CODES", "AUTH-RESP-CODE", "IMPLEMENTATION mailfront"}
	learned := []string{"USER", "SASL PLAIN LOGIN", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "TOP", "UIDL", "IMPLEMENTATION mailfront"}
	tests := []struct {
		name       string
		mode       string // plain, stls, implicit
		afterLogin bool   // a login has taught mailfront the backend's capabilities
		want       []string
	}{
		{"before STLS", "plain", false, []string{"STLS", "RESP-CODES", "AUTH-RESP-CODE", "IMPLEMENTATION mailfront"}},
		{"before STLS, backend known", "plain", true, []string{"STLS", "RESP-CODES", "AUTH-RESP-CODE", "IMPLEMENTATION mailfront"}},
		{"after STLS", "stls", false, base},
		{"implicit TLS", "implicit", false, base},
		{"after STLS, backend known", "stls", true, learned},
		{"implicit TLS, backend known", "implicit", true, learned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startProxy(t)
			if tt.afterLogin {
				lw := f.tlsReady(t, "implicit")
				lw.send("USER alice", "PASS "+alicePassword)
				lw.expect("+OK send PASS")
				lw.expect("+OK Logged in")
			}
			w := f.ready(t, tt.mode)
			w.send("CAPA")
			w.expect("+OK Capability list follows")
			if got := w.multiline(); strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got CAPA %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCAPADoesNotDialBackend: CAPA before login comes from the cache; the
// backend never sees a connection without a login.
func TestCAPADoesNotDialBackend(t *testing.T) {
	t.Parallel()
	f := startProxy(t, forbidBackend())
	w := f.tlsReady(t, "implicit")
	w.send("CAPA")
	w.expect("+OK Capability list follows")
	w.multiline()
}
