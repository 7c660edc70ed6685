package guard

import (
	"context"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// TestConnectionsPerNetwork: a network's connections are capped; release
// gives one back, once however often it is called.
func TestConnectionsPerNetwork(t *testing.T) {
	e := newEnv(t, Options{ConnsPerNetwork: 2})
	const net = "192.0.2.1"
	var releases []func()
	for i := range 2 {
		v, reason, release := e.g.Connect("imap", addr(net))
		if v != proxy.Admit {
			t.Fatalf("connection %d: %v %q, want Admit", i+1, v, reason)
		}
		releases = append(releases, release)
	}
	if v, reason := e.connect("imap", net); v != proxy.Refuse || reason != ReasonConnections {
		t.Fatalf("third connection: %v %q, want Refuse %q", v, reason, ReasonConnections)
	}
	if v, _ := e.connect("imap", "192.0.2.2"); v != proxy.Admit {
		t.Fatalf("another network: %v, want Admit", v)
	}
	releases[0]()
	releases[0]() // a second call gives nothing more back
	v, reason, release := e.g.Connect("imap", addr(net))
	if v != proxy.Admit {
		t.Fatalf("after a release: %v %q, want Admit", v, reason)
	}
	if v, reason := e.connect("imap", net); v != proxy.Refuse {
		t.Fatalf("after a double release: %v %q, want Refuse (released once only)", v, reason)
	}
	release()
	releases[1]()
	if got := e.g.Stats().Tables.Networks; got != 0 {
		t.Errorf("all released: %d networks kept, want 0 (nothing left to remember)", got)
	}
}

// TestHandshakeRate: each network has a bucket of HandshakesPerMinute
// handshakes, refilled continuously; Connect spends one on implicit TLS
// listeners, Handshake one for STARTTLS.
func TestHandshakeRate(t *testing.T) {
	e := newEnv(t, Options{HandshakesPerMinute: 3})
	e.g.SetImplicit("imaps", true)
	e.g.SetImplicit("imap", false)
	const net = "2001:db8::1"
	for i := range 3 {
		if v, reason := e.connect("imaps", net); v != proxy.Admit {
			t.Fatalf("implicit connection %d: %v %q, want Admit", i+1, v, reason)
		}
	}
	if v, reason := e.connect("imaps", net); v != proxy.Refuse || reason != ReasonHandshakes {
		t.Fatalf("fourth implicit connection: %v %q, want Refuse %q", v, reason, ReasonHandshakes)
	}
	if v, reason := e.connect("imap", net); v != proxy.Admit {
		t.Fatalf("STARTTLS connection: %v %q, want Admit (no handshake yet)", v, reason)
	}
	if e.g.Handshake(addr(net)) {
		t.Fatal("STARTTLS handshake with an empty bucket allowed")
	}
	if !e.g.Handshake(addr("2001:db8:0:1::1")) {
		t.Fatal("another network's handshake refused")
	}
	e.clk.Advance(20 * time.Second) // a third of a minute: one handshake
	if !e.g.Handshake(addr(net)) {
		t.Fatal("handshake after 20s refused")
	}
	if e.g.Handshake(addr(net)) {
		t.Fatal("second handshake after 20s allowed")
	}
	e.clk.Advance(time.Hour) // the bucket holds a minute's worth, no more
	for i := range 3 {
		if !e.g.Handshake(addr(net)) {
			t.Fatalf("handshake %d after an hour refused", i+1)
		}
	}
	if e.g.Handshake(addr(net)) {
		t.Fatal("fourth handshake after an hour allowed")
	}
	e.g.SetImplicit("imaps", false)
	if v, _ := e.connect("imaps", net); v != proxy.Admit {
		t.Errorf("listener no longer implicit: %v, want Admit", v)
	}
}

// TestTrusted: trusted networks are admitted whatever the caps, never wait
// or get a penalty, are never blocked, and leave no state.
func TestTrusted(t *testing.T) {
	e := newEnv(t, Options{
		Trusted: pfx("192.0.2.0/24", "2001:db8::/48"), Deny: pfx("192.0.2.0/24"),
		ConnsPerNetwork: 1, HandshakesPerMinute: 1, LoginsInFlight: 1, BlockFailures: 1, UserFailures: 1,
	})
	e.g.SetImplicit("imaps", true)
	for _, a := range []string{"192.0.2.1", "::ffff:192.0.2.2", "2001:db8::1"} {
		for i := range 5 {
			if v, _, _ := e.g.Connect("imaps", addr(a)); v != proxy.Admit { // never released
				t.Fatalf("%s connection %d: %v, want Admit", a, i+1, v)
			}
			if !e.g.Handshake(addr(a)) {
				t.Fatalf("%s handshake %d refused", a, i+1)
			}
		}
		var dones []func(proxy.LoginResult) time.Duration
		for i := range 5 {
			done, err := e.g.Login(context.Background(), addr(a), "alice", "wrong")
			if err != nil {
				t.Fatalf("%s login %d: %v", a, i+1, err)
			}
			dones = append(dones, done)
		}
		for _, done := range dones {
			if p := done(proxy.LoginFailed); p != 0 {
				t.Errorf("%s failure: penalty %v, want 0", a, p)
			}
		}
	}
	if st := e.g.Stats(); st.Tables.Networks != 0 || st.Tables.Users != 0 || st.Blocked != 0 || st.Penalised != 0 {
		t.Errorf("trusted traffic left state: %+v", st)
	}
}
