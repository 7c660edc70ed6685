package imap

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

func TestAdvertisedCapabilities(t *testing.T) {
	t.Parallel()
	dovecot := strings.Fields("IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN AUTH=SCRAM-SHA-256")
	tests := []struct {
		name    string
		backend []string
		tls     bool
		want    string
	}{
		{"plaintext, backend unknown", nil, false, "IMAP4rev1 STARTTLS LOGINDISABLED ID"},
		{"tls, backend unknown", nil, true, "IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID"},
		{"plaintext, dovecot-like backend", dovecot, false, "IMAP4rev1 STARTTLS LOGINDISABLED ID LITERAL- ENABLE IDLE"},
		{"tls, dovecot-like backend", dovecot, true, "IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID LITERAL- ENABLE IDLE"},
		{"tls, rev2 backend with LITERAL-", []string{"IMAP4rev2", "LITERAL-", "UNAUTHENTICATE", "LOGINDISABLED"}, true,
			"IMAP4rev1 IMAP4rev2 AUTH=PLAIN AUTH=LOGIN SASL-IR ID LITERAL-"},
		{"tls, minimal backend", []string{"IMAP4rev1"}, true, "IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(advertised(tt.backend, tt.tls), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAfterLoginCapabilities(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, backend, want string
	}{
		{"dovecot", "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT LITERAL+ MOVE CONDSTORE AUTH=PLAIN STARTTLS",
			"IMAP4rev1 ID ENABLE IDLE SORT LITERAL+ MOVE CONDSTORE"},
		{"imapmem", "IMAP4rev1 SASL-IR LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT NAMESPACE UIDPLUS MOVE LITERAL+",
			"IMAP4rev1 LITERAL- UNSELECT ENABLE IDLE UTF8=ACCEPT NAMESPACE UIDPLUS MOVE LITERAL+"},
		{"rev2 with unauthenticate", "IMAP4rev2 UNAUTHENTICATE LOGINDISABLED auth=plain", "IMAP4rev2"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(afterLogin(strings.Fields(tt.backend)), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCapabilityCacheTTL: the handler's Options reach its cache (the
// cache's own boundaries are proxy.TestCapCache's).
func TestCapabilityCacheTTL(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	h := New(Options{CapabilityTTL: time.Minute, Now: func() time.Time { return now }})
	if got, fresh := h.Caps.Fresh(); got != nil || fresh {
		t.Fatalf("fresh handler: got %q, %v; want nil", got, fresh)
	}
	h.Caps.Put([]string{"IMAP4rev1", "IDLE"})
	now = now.Add(time.Minute - time.Second)
	if got, fresh := h.Caps.Fresh(); len(got) != 2 || !fresh {
		t.Fatalf("within the TTL: got %q, %v; want the learnt list", got, fresh)
	}
	now = now.Add(time.Second)
	if _, fresh := h.Caps.Fresh(); fresh {
		t.Fatal("at the TTL: got fresh, want stale")
	}
}

// TestCapabilitiesEndToEnd checks the greeting and CAPABILITY in each TLS
// state, before the backend's capabilities are known, after a login taught
// them, and with the backend down once they have expired.
func TestCapabilitiesEndToEnd(t *testing.T) {
	t.Parallel()
	fb := startFake(t, func(fb *fakeBackend) {
		fb.greeting = "* OK [CAPABILITY IMAP4rev1 LITERAL+ IDLE STARTTLS AUTH=PLAIN ID] fake"
		fb.preCaps = "IMAP4rev1 LITERAL+ IDLE STARTTLS AUTH=PLAIN ID"
	})
	var clock atomic.Int64
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	e := startProxy(t, proxyConfig{Backend: fb.addr(), Options: Options{Now: now}})
	const (
		plainBase = "IMAP4rev1 STARTTLS LOGINDISABLED ID"
		tlsBase   = "IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID"
		plainFull = "IMAP4rev1 STARTTLS LOGINDISABLED ID LITERAL- IDLE"
		tlsFull   = "IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID LITERAL- IDLE"
	)
	check := func(t *testing.T, wantPlain, wantTLS string) {
		t.Helper()
		w := e.dialPlain(t)
		if got := w.line(); got != "* OK [CAPABILITY "+wantPlain+"] mailfront ready" {
			t.Errorf("plaintext greeting: got %q, want caps %q", got, wantPlain)
		}
		w.send("c CAPABILITY\r\n")
		if got := w.tagged("c"); got[0] != "* CAPABILITY "+wantPlain {
			t.Errorf("plaintext CAPABILITY: got %q, want %q", got[0], wantPlain)
		}
		w.send("s STARTTLS\r\n")
		w.expect("s OK")
		w.upgrade(e.client)
		w.send("c CAPABILITY\r\n")
		if got := w.tagged("c"); got[0] != "* CAPABILITY "+wantTLS {
			t.Errorf("after STARTTLS: got %q, want %q", got[0], wantTLS)
		}
		iw := e.implicitReady(t)
		iw.send("c CAPABILITY\r\n")
		if got := iw.tagged("c"); got[0] != "* CAPABILITY "+wantTLS {
			t.Errorf("implicit TLS: got %q, want %q", got[0], wantTLS)
		}
	}
	t.Run("backend caps absent", func(t *testing.T) { check(t, plainBase, tlsBase) })
	if err := e.handler.Probe(context.Background()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	t.Run("backend caps present", func(t *testing.T) { check(t, plainFull, tlsFull) })
	fb.ln.Close()
	clock.Add(int64(proxy.DefaultCapabilityTTL + time.Second))
	// The last list learnt stays advertised while the backend is away, so
	// the list a client sees does not flap.
	t.Run("backend down, cache expired", func(t *testing.T) {
		check(t, plainFull, tlsFull)
		w := e.implicitReady(t)
		w.send("l LOGIN alice x\r\n")
		w.expect("l NO [UNAVAILABLE] ")
	})
}

// TestCapabilityEdit: a listener's capabilities key adds to and removes
// from what clients are offered, before login (greeting, CAPABILITY) and
// in the login's OK.
func TestCapabilityEdit(t *testing.T) {
	t.Parallel()
	fb := startFake(t, func(fb *fakeBackend) {
		fb.preCaps = "IMAP4rev1 IDLE UIDPLUS"
		fb.postCaps = "IMAP4rev1 IDLE UIDPLUS MOVE"
	})
	e := startProxy(t, proxyConfig{Backend: fb.addr(), Options: Options{
		Capabilities: proxy.CapabilityEdit{Add: []string{"NAMESPACE"}, Remove: []string{"uidplus"}},
	}})
	if err := e.handler.Probe(context.Background()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	const want = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=LOGIN SASL-IR ID IDLE NAMESPACE] mailfront ready"
	if got := e.implicitGreeting(t); got != want {
		t.Errorf("greeting: got %q, want %q", got, want)
	}
	w := e.implicitReady(t)
	w.send("a LOGIN alice " + quote(testPassword) + "\r\n")
	w.expect("a OK [CAPABILITY IMAP4rev1 IDLE MOVE NAMESPACE] Logged in")
	w.relayed()
}
