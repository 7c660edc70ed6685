package imap

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// The tests below are ARCHITECTURE.md invariant 5: every pre-login bound ends the
// session with a BYE naming it, and the process keeps serving.

func TestLiteralBombs(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	commands := strings.Repeat("x NOOP\r\n", 100) // must never run
	tests := []struct {
		name    string
		tls     bool
		send    string
		wantBye string
	}{
		{"2^32-1 before TLS", false, "a ID (\"name\" {4294967295}\r\n", "* BYE [TOOBIG] Literal too large (max 8192 bytes)"},
		{"overflow before TLS", false, "a ID (\"name\" {99999999999999999999}\r\n", "* BYE [TOOBIG] Literal too large (max 8192 bytes)"},
		{"2^32-1 login", true, "a LOGIN {4294967295}\r\n", "* BYE [TOOBIG] Literal too large (max 8192 bytes)"},
		{"over the literal limit", true, "a LOGIN alice {8193}\r\n", "* BYE [TOOBIG] Literal too large (max 8192 bytes)"},
		{"overflow login", true, "a LOGIN {99999999999999999999}\r\n", "* BYE [TOOBIG] Literal too large (max 8192 bytes)"},
		{"non-sync over LITERAL-", true, "a LOGIN alice {5000+}\r\n" + commands, "* BYE [TOOBIG] Literal too large (max 4096 bytes)"},
		{"non-sync overflow", true, "a LOGIN {99999999999999999999+}\r\n" + commands, "* BYE [TOOBIG] Literal too large (max 4096 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.ready(t, tt.tls)
			w.send(tt.send)
			got := w.closed()
			if !strings.HasPrefix(got, tt.wantBye+"\r\n") {
				t.Errorf("got %q, want %q then close", got, tt.wantBye)
			}
			if strings.Contains(got, "+ ") || strings.Contains(got, "x OK") {
				t.Errorf("got %q: a continuation or a command read from the literal", got)
			}
			e.stillServes(t)
		})
	}
}

func TestNULBytesRejected(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	w := e.implicitReady(t)
	w.send("a NO\x00OP\r\n")
	w.expect("* BAD NUL byte in command")
	w.send("b LOGIN {3}\r\n")
	w.expect("+ Ready")
	w.send("a\x00b x\r\n")
	w.expect("b BAD NUL byte in literal")
	w.send("c NOOP\r\n")
	w.expect("c OK")
	w.send(strings.Repeat("\x00\r\n", 4))
	got := w.closed()
	want := strings.Repeat("* BAD NUL byte in command\r\n", 4) + "* BYE [LIMIT] Too many invalid commands (max 5)\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e.stillServes(t)
}

func TestLineTooLong(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	w := e.greeted(t)
	w.send("a NOOP " + strings.Repeat("x", 8200) + "\r\n")
	if got := w.closed(); got != "* BYE [LIMIT] Line too long (max 8192 bytes)\r\n" {
		t.Errorf("got %q, want the line-length BYE", got)
	}
	e.stillServes(t)
}

func TestSilentClientDroppedAtIdleLimit(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	e := startProxy(t, proxyConfig{Limits: proxy.Limits{Idle: idle}})
	start := time.Now()
	w := e.greeted(t)
	if got := w.closed(); got != "* BYE Autologout; idle for too long\r\n" {
		t.Errorf("got %q, want the idle BYE", got)
	}
	if d := time.Since(start); d < idle {
		t.Errorf("dropped after %v, want at least %v", d, idle)
	}
	e.stillServes(t)
}

// TestDrippingClientDroppedAtTotalLimit: a client that keeps sending, never
// idle, still gets the total-time BYE.
func TestDrippingClientDroppedAtTotalLimit(t *testing.T) {
	t.Parallel()
	const total = time.Second
	e := startProxy(t, proxyConfig{Limits: proxy.Limits{Idle: 400 * time.Millisecond, Total: total}})
	start := time.Now()
	w := e.greeted(t)
	stop := make(chan struct{})
	dripped := make(chan struct{})
	go func() {
		defer close(dripped)
		tick := time.NewTicker(10 * time.Millisecond) // the drip rate is the subject
		defer tick.Stop()
		msg := []byte("d NOOP\r\n")
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := w.c.Write(msg[i%len(msg) : i%len(msg)+1]); err != nil {
					return
				}
			}
		}
	}()
	got := w.closed()
	close(stop)
	<-dripped
	if !strings.HasSuffix(got, "* BYE Autologout; session time limit exceeded\r\n") || !strings.HasPrefix(got, "d OK") {
		t.Errorf("got %q, want NOOP replies then the total-time BYE", got)
	}
	if d := time.Since(start); d < total {
		t.Errorf("dropped after %v, want at least %v", d, total)
	}
	e.stillServes(t)
}

func TestTooManyInvalidCommands(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	w := e.implicitReady(t)
	w.send("a SELECT INBOX\r\nb FOO\r\nc LOGIN\r\nd NOOP x\r\ne LIST \"\" *\r\nf BAR\r\ng NOOP\r\n")
	got := w.closed()
	want := "a BAD Command not valid before login\r\n" +
		"b BAD Command not valid before login\r\n" +
		"c BAD LOGIN takes a user name and a password\r\n" +
		"d BAD NOOP takes no arguments\r\n" +
		"e BAD Invalid character in argument\r\n" +
		"f BAD Command not valid before login\r\n" +
		"* BYE [LIMIT] Too many invalid commands (max 5)\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e.stillServes(t)
}

func TestTooManyCommands(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{Limits: proxy.Limits{Commands: 10}})
	w := e.greeted(t)
	var send, want strings.Builder
	for i := range 11 {
		fmt.Fprintf(&send, "n%d NOOP\r\n", i)
		if i < 10 {
			fmt.Fprintf(&want, "n%d OK NOOP completed\r\n", i)
		}
	}
	want.WriteString("* BYE [LIMIT] Too many commands before login (max 10)\r\n")
	w.send(send.String())
	if got := w.closed(); got != want.String() {
		t.Errorf("got %q, want %q", got, want.String())
	}
	e.stillServes(t)
}

// TestLiteralNotInvited: a literal in a command the state does not allow is
// never asked for.
func TestLiteralNotInvited(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	w := e.implicitReady(t)
	w.send("a APPEND INBOX {5}\r\n")
	if got := w.line(); got != "a BAD Command not valid before login" {
		t.Fatalf("got %q, want a BAD and no continuation", got)
	}
	w.send("b NOOP\r\n")
	w.expect("b OK")
}
