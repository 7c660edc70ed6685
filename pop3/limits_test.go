package pop3

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// TestLimits: each pre-login bound gives an -ERR naming it and a close, and
// leaves the server healthy (ARCHITECTURE.md invariant 5).
func TestLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		limits  proxy.Limits
		mode    string      // plain or implicit
		drive   func(*wire) // what the client does after the greeting
		want    string      // the last line before the close
		outcome string
	}{
		{"line too long", proxy.Limits{Line: 64}, "plain",
			func(w *wire) { w.send("USER " + strings.Repeat("x", 100)) },
			"-ERR line too long (max 64 bytes)", "limit"},
		{"line too long under TLS", proxy.Limits{Line: 64}, "implicit",
			func(w *wire) { w.send("PASS " + strings.Repeat("x", 100)) },
			"-ERR line too long (max 64 bytes)", "limit"},
		{"too many invalid commands", proxy.Limits{InvalidCommands: 2}, "plain",
			func(w *wire) {
				w.send("FOO", "BAR", "BAZ")
				w.expect("-ERR unknown command")
				w.expect("-ERR unknown command")
			},
			"-ERR too many invalid commands (max 2)", "protocol-error"},
		{"NUL bytes count as invalid", proxy.Limits{InvalidCommands: 1}, "plain",
			func(w *wire) {
				w.send("CAPA\x00", "\x00\x00")
				w.expect("-ERR NUL byte in command")
			},
			"-ERR too many invalid commands (max 1)", "protocol-error"},
		{"plaintext logins count as invalid", proxy.Limits{InvalidCommands: 2}, "plain",
			func(w *wire) {
				w.send("USER a", "USER b", "USER c")
				w.expect(privacyReply)
				w.expect(privacyReply)
			},
			"-ERR too many invalid commands (max 2)", "protocol-error"},
		{"too many commands", proxy.Limits{Commands: 3}, "plain",
			func(w *wire) {
				w.send("CAPA", "CAPA", "CAPA", "CAPA")
				for range 3 {
					w.expect("+OK Capability list follows")
					w.multiline()
				}
			},
			"-ERR too many commands (max 3)", "limit"},
		{"silent client", proxy.Limits{Idle: 200 * time.Millisecond}, "plain",
			func(*wire) {}, "-ERR timeout", "timeout"},
		{"silent client under TLS", proxy.Limits{Idle: 200 * time.Millisecond}, "implicit",
			func(*wire) {}, "-ERR timeout", "timeout"},
		{"partial line", proxy.Limits{Idle: 200 * time.Millisecond}, "plain",
			func(w *wire) { w.write("CA") }, "-ERR timeout", "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := startProxy(t, withLimits(tt.limits), forbidBackend())
			w := f.ready(t, tt.mode)
			tt.drive(w)
			w.expect(tt.want)
			w.closed()
			f.logs.WaitFor(t, 1, "session end", "outcome="+tt.outcome)
			// The server is still healthy.
			h := f.greeted(t)
			h.send("QUIT")
			h.expect("+OK mailfront signing off")
		})
	}
}

// TestDrippingClient: a client that keeps sending just often enough to
// dodge the idle limit is dropped at the total pre-login time limit.
func TestDrippingClient(t *testing.T) {
	t.Parallel()
	const total = time.Second
	f := startProxy(t, withLimits(proxy.Limits{Idle: 300 * time.Millisecond, Total: total}), forbidBackend())
	w := f.greeted(t)
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond) // the drip, not a synchronisation
	defer tick.Stop()
	for {
		if _, err := w.conn.Write([]byte("CAPA\r\n")); err != nil {
			break // the server hung up
		}
		if line := w.line(); line == "-ERR timeout" {
			break
		}
		w.multiline()
		<-tick.C
	}
	w.closed()
	if d := time.Since(start); d < total-100*time.Millisecond || d > total+3*time.Second {
		t.Fatalf("dropped after %v, want about the %v total limit", d, total)
	}
	f.logs.WaitFor(t, 1, "session end", "outcome=timeout", "session time limit")
}

func TestShutdownSaysGoodbye(t *testing.T) {
	t.Parallel()
	f := startProxy(t, forbidBackend())
	plain := f.greeted(t)
	secure := f.tlsReady(t, "implicit")
	secure.send("USER alice")
	secure.expect("+OK send PASS")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		done <- f.srv.Shutdown(ctx)
	}()
	for _, w := range []*wire{plain, secure} {
		w.expect("-ERR [SYS/TEMP] server shutting down")
		w.closed()
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	f.logs.WaitFor(t, 2, "session end", "outcome=shutdown")
}
