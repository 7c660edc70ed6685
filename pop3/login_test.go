package pop3

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/pop3client"
	"github.com/mailfront/mailfront/internal/pop3mem"
	"github.com/mailfront/mailfront/proxy"
)

// client is an internal/pop3client connection under TLS, by mode.
func (f *fixture) client(t *testing.T, mode string) *pop3client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var c *pop3client.Client
	var err error
	f.sessions.Add(1)
	if mode == "implicit" {
		c, err = pop3client.DialTLS(ctx, f.implicit.Addr().String(), f.clientTLS)
	} else {
		c, err = pop3client.Dial(ctx, f.starttls.Addr().String())
		if err == nil {
			err = c.STLS(f.clientTLS)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = ioTimeout
	t.Cleanup(func() { c.Close() })
	return c
}

// bigMessage is about size bytes of CRLF lines, some starting with a dot.
func bigMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("Subject: big\r\nMessage-ID: <big@test.invalid>\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		if i%7 == 0 {
			b.WriteString(".")
		}
		fmt.Fprintf(&b, "%08d %s\r\n", i, strings.Repeat("abcdefghij", 7))
	}
	return b.Bytes()
}

func TestLoginRetrieve5MB(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			f := startProxy(t)
			big := bigMessage(5 << 20)
			f.mem.AddMessage("alice", big)
			c := f.client(t, mode)
			if err := c.Login("alice", alicePassword); err != nil {
				t.Fatal(err)
			}
			want := f.mem.Messages("alice")
			var size int64
			for _, m := range want {
				size += int64(len(m))
			}
			n, got, err := c.Stat()
			if err != nil || n != 3 || got != size {
				t.Fatalf("got STAT %d %d, %v; want 3 %d", n, got, err, size)
			}
			msg, err := c.Retr(3)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(msg, big) {
				t.Fatalf("RETR 3: got %d bytes, want the %d sent, byte for byte", len(msg), len(big))
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestCanonicalLogin: the backend sees mailfront's own login and then the
// client's post-login stream: commands pipelined after PASS are forwarded
// exactly once (ARCHITECTURE.md invariant 4).
func TestCanonicalLogin_PipelinedForwardedOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			f := startProxy(t)
			w := f.tlsReady(t, mode)
			w.send("CAPA")
			w.expect("+OK Capability list follows")
			w.multiline()
			w.send("USER alice", "PASS "+alicePassword, "STAT", "LIST", "QUIT")
			w.expect("+OK send PASS")
			w.expect("+OK Logged in")
			w.expectPrefix("+OK 2 ")
			w.expect("+OK listing follows")
			if got := w.multiline(); len(got) != 2 {
				t.Fatalf("got LIST %q, want 2 messages", got)
			}
			w.expect("+OK pop3mem signing off")
			w.closed()
			got := f.mem.Received()
			want := []string{"CAPA", "USER alice", "PASS " + alicePassword, "STAT", "LIST", "QUIT"}
			if len(got) != 1 || !slices.Equal(got[0], want) {
				t.Fatalf("backend received %q, want one connection with %q", got, want)
			}
		})
	}
}

func TestAUTH(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	plain := b64("\x00alice\x00" + alicePassword)
	tests := []struct {
		name  string
		steps []string // alternating: client line, server reply
	}{
		{"PLAIN initial response", []string{"AUTH PLAIN " + plain, "+OK Logged in"}},
		{"PLAIN continuation", []string{"AUTH PLAIN", "+ ", plain, "+OK Logged in"}},
		{"PLAIN lower case", []string{"auth plain " + plain, "+OK Logged in"}},
		{"PLAIN same authzid", []string{"AUTH PLAIN " + b64("alice\x00alice\x00"+alicePassword), "+OK Logged in"}},
		{"PLAIN other authzid", []string{"AUTH PLAIN " + b64("bob\x00alice\x00"+alicePassword), "-ERR [AUTH] authorization identity not supported"}},
		{"PLAIN wrong password", []string{"AUTH PLAIN " + b64("\x00alice\x00"+wrongPassword), "-ERR [AUTH] Authentication failed"}},
		{"PLAIN empty initial response", []string{"AUTH PLAIN =", "-ERR malformed PLAIN response"}},
		{"PLAIN malformed", []string{"AUTH PLAIN " + b64("alice"), "-ERR malformed PLAIN response"}},
		{"PLAIN cancel", []string{"AUTH PLAIN", "+ ", "*", "-ERR authentication cancelled"}},
		{"LOGIN", []string{"AUTH LOGIN", "+ VXNlcm5hbWU6", b64("alice"), "+ UGFzc3dvcmQ6", b64(alicePassword), "+OK Logged in"}},
		{"LOGIN initial response", []string{"AUTH LOGIN " + b64("alice"), "+ UGFzc3dvcmQ6", b64(alicePassword), "+OK Logged in"}},
		{"LOGIN cancel", []string{"AUTH LOGIN", "+ VXNlcm5hbWU6", b64("alice"), "+ UGFzc3dvcmQ6", "*", "-ERR authentication cancelled"}},
		{"LOGIN wrong password", []string{"AUTH LOGIN", "+ VXNlcm5hbWU6", b64("alice"), "+ UGFzc3dvcmQ6", b64(wrongPassword), "-ERR [AUTH] Authentication failed"}},
		{"bad base64", []string{"AUTH PLAIN !!!", "-ERR invalid base64 in SASL response"}},
		{"bad base64 in continuation", []string{"AUTH LOGIN", "+ VXNlcm5hbWU6", "%%%", "-ERR invalid base64 in SASL response"}},
		{"unknown mechanism", []string{"AUTH CRAM-MD5", "-ERR unsupported SASL mechanism: use PLAIN or LOGIN"}},
		{"too many arguments", []string{"AUTH PLAIN a b", "-ERR syntax error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startProxy(t)
			w := f.tlsReady(t, "implicit")
			for i := 0; i < len(tt.steps); i += 2 {
				w.send(tt.steps[i])
				w.expect(tt.steps[i+1])
			}
			if tt.steps[len(tt.steps)-1] == "+OK Logged in" {
				w.send("STAT")
				w.expectPrefix("+OK 2 ")
				return
			}
			if f.mem.Connections() > 0 && !strings.Contains(tt.name, "wrong") {
				t.Fatalf("backend dialled %d times for a refused AUTH, want 0", f.mem.Connections())
			}
			w.send("AUTH") // the session goes on
			w.expect("+OK")
			if got := w.multiline(); !slices.Equal(got, []string{"PLAIN", "LOGIN"}) {
				t.Fatalf("got mechanisms %q, want PLAIN LOGIN", got)
			}
		})
	}
}

func TestWrongPassword3Times(t *testing.T) {
	t.Parallel()
	f := startProxy(t)
	w := f.tlsReady(t, "stls")
	for i := 1; i <= proxy.DefaultAuthFailures; i++ {
		w.send("USER alice", "PASS "+wrongPassword)
		w.expect("+OK send PASS")
		if i < proxy.DefaultAuthFailures {
			w.expect("-ERR [AUTH] Authentication failed")
		} else {
			w.expect("-ERR [AUTH] too many authentication failures")
		}
	}
	w.closed()
	f.logs.WaitFor(t, 1, "session end", "outcome=auth-failed")
	if n := f.logs.Count("login failed", "user=alice", "outcome=auth-failed"); n != proxy.DefaultAuthFailures {
		t.Fatalf("got %d 'login failed' lines for alice, want %d", n, proxy.DefaultAuthFailures)
	}
}

func TestUnknownUserLikeKnown(t *testing.T) {
	t.Parallel()
	f := startProxy(t)
	replies := func(user string) []string {
		w := f.tlsReady(t, "implicit")
		w.send("USER "+user, "PASS "+wrongPassword, "QUIT")
		return []string{w.line(), w.line(), w.line()}
	}
	known, unknown := replies("alice"), replies("nobody-here")
	if !slices.Equal(known, unknown) {
		t.Fatalf("got %q for an unknown user, want %q as for a known one", unknown, known)
	}
	if known[0] != "+OK send PASS" || known[1] != "-ERR [AUTH] Authentication failed" {
		t.Fatalf("got %q, want +OK then -ERR [AUTH]", known)
	}
}

// TestCredentialInjectionRefused: credentials that would smuggle a command
// onto the backend's command line are refused without reaching it.
func TestCredentialInjectionRefused(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name  string
		steps []string
	}{
		{"CRLF in PLAIN password", []string{"AUTH PLAIN " + b64("\x00alice\x00"+alicePassword+"\r\nDELE 1"), "-ERR [AUTH] Authentication failed"}},
		{"LF in PLAIN user", []string{"AUTH PLAIN " + b64("\x00alice\nDELE 1\x00"+alicePassword), "-ERR [AUTH] Authentication failed"}},
		{"NUL in LOGIN password", []string{"AUTH LOGIN " + b64("alice"), "+ UGFzc3dvcmQ6", b64("pw\x00x"), "-ERR [AUTH] Authentication failed"}},
		{"CR in LOGIN user", []string{"AUTH LOGIN " + b64("alice\rDELE 1"), "+ UGFzc3dvcmQ6", b64(alicePassword), "-ERR [AUTH] Authentication failed"}},
		{"empty user", []string{"AUTH PLAIN " + b64("\x00\x00"+alicePassword), "-ERR [AUTH] Authentication failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startProxy(t, forbidBackend())
			w := f.tlsReady(t, "implicit")
			for i := 0; i < len(tt.steps); i += 2 {
				w.send(tt.steps[i])
				w.expect(tt.steps[i+1])
			}
		})
	}
	t.Run("space in USER name", func(t *testing.T) {
		f := startProxy(t, forbidBackend())
		w := f.tlsReady(t, "implicit")
		w.send("USER alice DELE 1", "PASS "+alicePassword)
		w.expect("+OK send PASS")
		w.expect("-ERR [AUTH] Authentication failed")
	})
	t.Run("space in name, AUTH PLAIN backend", func(t *testing.T) {
		// Once the backend is known to take AUTH PLAIN only, the name
		// travels inside SASL, where spaces are harmless.
		f := startProxy(t, withBackend(pop3mem.Options{NoUSER: true}))
		w := f.tlsReady(t, "implicit")
		w.send("AUTH PLAIN " + b64("\x00alice\x00"+alicePassword))
		w.expect("+OK Logged in")
		w.send("QUIT")
		w.expect("+OK pop3mem signing off")
		w2 := f.tlsReady(t, "implicit")
		w2.send("AUTH PLAIN " + b64("\x00al ice\x00"+alicePassword))
		w2.expect("-ERR [AUTH] Authentication failed") // refused by the backend, not by mailfront
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		f.mem.Wait(ctx, func(r [][]string) bool { return len(r) == 2 && slices.Contains(r[1], "AUTH PLAIN") })
	})
}

func TestBackendLoginMethod(t *testing.T) {
	t.Parallel()
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + alicePassword))
	tests := []struct {
		name string
		mem  pop3mem.Options
		want []string // what the backend receives before the client's QUIT
	}{
		{"USER in CAPA", pop3mem.Options{}, []string{"CAPA", "USER alice", "PASS " + alicePassword}},
		{"no USER: AUTH PLAIN", pop3mem.Options{NoUSER: true}, []string{"CAPA", "AUTH PLAIN", plain}},
		{"no CAPA: USER", pop3mem.Options{NoCAPA: true}, []string{"CAPA", "USER alice", "PASS " + alicePassword}},
	}
	for _, tt := range tests {
		for _, client := range []string{"USER", "AUTH PLAIN"} {
			t.Run(tt.name+"/client "+client, func(t *testing.T) {
				f := startProxy(t, withBackend(tt.mem))
				w := f.tlsReady(t, "implicit")
				if client == "USER" {
					w.send("USER alice", "PASS "+alicePassword)
					w.expect("+OK send PASS")
				} else {
					w.send("AUTH PLAIN " + plain)
				}
				w.expect("+OK Logged in")
				w.send("QUIT")
				w.expect("+OK pop3mem signing off")
				w.closed()
				want := append(slices.Clone(tt.want), "QUIT")
				if got := f.mem.Received(); len(got) != 1 || !slices.Equal(got[0], want) {
					t.Fatalf("backend received %q, want %q", got, want)
				}
			})
		}
	}
}

func TestBackendInUse(t *testing.T) {
	t.Parallel()
	f := startProxy(t, withBackend(pop3mem.Options{Lock: true}))
	first := f.client(t, "implicit")
	if err := first.Login("alice", alicePassword); err != nil {
		t.Fatal(err)
	}
	w := f.tlsReady(t, "implicit")
	for range proxy.DefaultAuthFailures { // not counted as failed passwords
		w.send("USER alice", "PASS "+alicePassword)
		w.expect("+OK send PASS")
		w.expect("-ERR [IN-USE] Mailbox in use")
	}
	first.Quit()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	// The lock goes when the first session's QUIT reaches the backend.
	f.mem.Wait(ctx, func(r [][]string) bool { return len(r) > 0 && slices.Contains(r[0], "QUIT") })
	w.send("USER alice", "PASS "+alicePassword)
	w.expect("+OK send PASS")
	w.expect("+OK Logged in")
}

// TestCapabilityCache: the backend's CAPA is asked on a login connection
// when the cache is cold or older than the TTL, and not otherwise.
func TestCapabilityCache(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Unix(1_000_000, 0).UnixNano())
	f := startProxy(t, withClock(func() time.Time { return time.Unix(0, now.Load()) }))
	login := func() {
		c := f.client(t, "implicit")
		if err := c.Login("alice", alicePassword); err != nil {
			t.Fatal(err)
		}
		c.Quit()
	}
	login()
	login()
	now.Add(int64(proxy.DefaultCapabilityTTL + time.Second))
	login()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	f.mem.Wait(ctx, func(r [][]string) bool { return len(r) == 3 && slices.Contains(r[2], "QUIT") })
	var first []string
	for _, conn := range f.mem.Received() {
		first = append(first, conn[0])
	}
	if want := []string{"CAPA", "USER alice", "CAPA"}; !slices.Equal(first, want) {
		t.Fatalf("got first backend commands %q, want %q", first, want)
	}
}

func TestPostLoginIdle(t *testing.T) {
	t.Parallel()
	f := startProxy(t, withIdle(300*time.Millisecond))
	w := f.tlsReady(t, "implicit")
	w.send("USER alice", "PASS "+alicePassword)
	w.expect("+OK send PASS")
	w.expect("+OK Logged in")
	start := time.Now()
	w.closed()
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("relay closed after %v, want the 300ms idle limit", d)
	}
}
