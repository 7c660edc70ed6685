package guard

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestDefaults: zero options get the documented defaults.
func TestDefaults(t *testing.T) {
	g, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := g.o
	got := []any{o.IPv4Prefix, o.IPv6Prefix, o.BaseDelay, o.MaxDelay, o.HalfLife, o.BlockFailures, o.BlockWindow,
		o.BlockDuration, o.UserFailures, o.UserMaxDelay, o.LoginsInFlight, o.ConnsPerNetwork, o.HandshakesPerMinute, o.MaxEntries}
	want := []any{32, 64, 2 * time.Second, 15 * time.Second, 10 * time.Minute, 20, 10 * time.Minute,
		15 * time.Minute, 10, 5 * time.Second, 5, 100, 60, 100000}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("default %d: got %v, want %v", i, got[i], want[i])
		}
	}
	if o.Now == nil || o.After == nil || o.Log == nil {
		t.Error("clock or logger left nil")
	}
}

// TestOptionsErrors: New reports every bad option at once.
func TestOptionsErrors(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		want []string // substrings of the error, in order
	}{
		{"ipv4 prefix", Options{IPv4Prefix: 33}, []string{"guard: ipv4 prefix 33 is not between 1 and 32"}},
		{"ipv6 prefix", Options{IPv6Prefix: -1}, []string{"guard: ipv6 prefix -1 is not between 1 and 128"}},
		{"negative delay", Options{BaseDelay: -time.Second}, []string{"guard: base delay -1s is negative"}},
		{"cap below base", Options{BaseDelay: time.Minute}, []string{"guard: max delay 15s is below base delay 1m0s"}},
		{"negative count", Options{ConnsPerNetwork: -2}, []string{"guard: connections per network -2 is negative (use -1 for unlimited)"}},
		{"too many failures", Options{BlockFailures: 1001}, []string{"guard: block failures 1001 is over 1000"}},
		{"max entries", Options{MaxEntries: -1}, []string{"guard: max entries -1 is negative"}},
		{"bad prefix", Options{Deny: []netip.Prefix{{}}}, []string{`guard: deny[0]: "invalid Prefix" is not a valid prefix`}},
		{"bad listener prefix", Options{ListenerAllow: map[string][]netip.Prefix{"imaps": {{}}}}, []string{`guard: listener "imaps" allow[0]`}},
		{"all at once", Options{IPv4Prefix: 40, HalfLife: -1, UserFailures: -5}, []string{"ipv4 prefix 40", "half life", "user failures -5"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.opts)
			if err == nil {
				t.Fatalf("got no error, want %q", c.want)
			}
			msg := err.Error()
			for _, w := range c.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", err, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

// TestOptionsUnlimited: Unlimited turns the counting rules off.
func TestOptionsUnlimited(t *testing.T) {
	e := newEnv(t, Options{ConnsPerNetwork: Unlimited, HandshakesPerMinute: Unlimited, LoginsInFlight: Unlimited,
		BlockFailures: Unlimited, UserFailures: Unlimited})
	e.g.SetImplicit("imaps", true)
	const net = "192.0.2.1"
	for i := range 500 {
		if v, reason, _ := e.g.Connect("imaps", addr(net)); v != 0 {
			t.Fatalf("connection %d: %v %q", i, v, reason)
		}
		if !e.g.Handshake(addr(net)) {
			t.Fatalf("handshake %d refused", i)
		}
		if _, err := e.g.Login(t.Context(), addr("198.51.100.1"), "alice", "pw"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	for i := range 50 {
		e.fail(netN(i), "alice", "guess"+netN(i))
		e.fail("192.0.2.9", "bob", "guess"+netN(i))
	}
	if st := e.g.Stats(); st.Blocked != 0 || st.DelayedUsers != 0 || st.Tables.Users != 0 {
		t.Errorf("with blocks and user delays off: %+v", st)
	}
}
