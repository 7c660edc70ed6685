package imap

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/mailfront/mailfront/proxy"
)

// TestProbe checks that a probe teaches the backend's capabilities before
// any client has logged in, with nothing but CAPABILITY (when the greeting
// has no list) and LOGOUT sent to the backend, and that a probe of a
// backend that is down changes nothing.
func TestProbe(t *testing.T) {
	t.Parallel()
	const full = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID LITERAL- IDLE] mailfront ready"
	tests := []struct {
		name, greeting, preCaps, after string
	}{
		{"greeting with capabilities", "* OK [CAPABILITY IMAP4rev1 IDLE LITERAL+ ID] fake ready", "IMAP4rev1 IDLE LITERAL+ ID", full},
		{"greeting without capabilities", "* OK fake ready", "IMAP4rev1 IDLE LITERAL+ ID", full},
		// Cyrus: the greeting names what logging in needs, CAPABILITY
		// the rest; clients are offered the rest.
		{"short greeting list", "* OK [CAPABILITY IMAP4rev1 LITERAL+ ID ENABLE AUTH=PLAIN AUTH=LOGIN SASL-IR] cyrus ready",
			"IMAP4rev1 LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS CONDSTORE MOVE AUTH=PLAIN AUTH=LOGIN SASL-IR",
			"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID LITERAL- ENABLE IDLE NAMESPACE UIDPLUS CONDSTORE MOVE] mailfront ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := startFake(t, func(fb *fakeBackend) { fb.greeting, fb.preCaps = tt.greeting, tt.preCaps })
			e := startProxy(t, proxyConfig{Backend: fb.addr()})
			const before = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID] mailfront ready"
			if got := e.implicitGreeting(t); got != before {
				t.Fatalf("greeting before the probe: got %q, want %q", got, before)
			}
			if err := e.handler.Probe(context.Background()); err != nil {
				t.Fatalf("probe: %v", err)
			}
			fb.ended(0)
			// CAPABILITY always, even after a greeting with a list.
			if got, want := fb.received(0), "mf1 CAPABILITY\r\nmf2 LOGOUT\r\n"; got != want {
				t.Errorf("backend received %q, want %q", got, want)
			}
			if got := e.implicitGreeting(t); got != tt.after {
				t.Errorf("greeting after the probe: got %q, want %q", got, tt.after)
			}
			// A login whose greeting has a (short) list uses it, and
			// the fuller list stays what clients are offered.
			w := e.implicitReady(t)
			w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
			w.expect("a OK ")
			w.relayed()
			if got := e.implicitGreeting(t); got != tt.after {
				t.Errorf("greeting after a login: got %q, want %q", got, tt.after)
			}
		})
	}
	t.Run("backend down", func(t *testing.T) {
		fb := startFake(t, nil)
		e := startProxy(t, proxyConfig{Backend: fb.addr()})
		fb.ln.Close()
		err := e.handler.Probe(context.Background())
		if err == nil || !strings.Contains(err.Error(), "probe backend") {
			t.Fatalf("got %v, want a probe error", err)
		}
		if got := e.handler.Caps.Last(); got != nil {
			t.Errorf("capabilities after a failed probe: got %q, want none", got)
		}
	})
	t.Run("no backend configured", func(t *testing.T) {
		if err := New(Options{}).Probe(context.Background()); err != proxy.ErrNoBackend {
			t.Errorf("got %v, want %v", err, proxy.ErrNoBackend)
		}
	})
}

// implicitGreeting connects over implicit TLS and returns the greeting.
func (e *proxyEnv) implicitGreeting(t *testing.T) string {
	t.Helper()
	c, err := tls.Dial("tcp", e.implicit.Addr().String(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	return newWire(t, c).line()
}
