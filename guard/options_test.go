package guard

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestDefaults: zero options get the documented defaults, and New puts
// in force what WithDefaults returns.
func TestDefaults(t *testing.T) {
	t.Parallel()
	g, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := g.o
	got := []any{o.IPv4Prefix, o.IPv6Prefix, o.BaseDelay, o.MaxDelay, o.HalfLife, o.BlockFailures, o.BlockWindow,
		o.BlockDuration, o.UserFailures, o.UserMaxDelay, o.LoginsInFlight, o.ConnsPerNetwork, o.HandshakesPerMinute, o.MaxEntries}
	want := []any{32, 64, 2 * time.Second, 15 * time.Second, 10 * time.Minute, 20, 10 * time.Minute,
		15 * time.Minute, 10, 5 * time.Second, 32, 2000, 3000, 100000}
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
		{"cap below base", Options{BaseDelay: time.Minute, MaxDelay: time.Second}, []string{"guard: max delay 1s is below base delay 1m0s"}},
		{"too many failures", Options{BlockFailures: 1001}, []string{"guard: block failures 1001 is over 1000"}},
		{"max entries", Options{MaxEntries: -1}, []string{"guard: max entries -1 is negative"}},
		{"bad prefix", Options{Deny: []netip.Prefix{{}}}, []string{`guard: deny[0]: "invalid Prefix" is not a valid prefix`}},
		{"bad listener prefix", Options{ListenerAllow: map[string][]netip.Prefix{"imaps": {{}}}}, []string{`guard: listener "imaps" allow[0]`}},
		{"all at once", Options{IPv4Prefix: 40, HalfLife: -1, UserFailures: 1001}, []string{"ipv4 prefix 40", "half life", "user failures 1001"}},
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

// TestOptionsResolved: WithDefaults resolves what depends on another
// option or turns a rule off as New puts it in force.
func TestOptionsResolved(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		opts      Options
		got, want func(Options) any
	}{
		{"a zero max delay is at least the base delay", Options{BaseDelay: 20 * time.Second},
			func(o Options) any { return o.MaxDelay }, func(Options) any { return 20 * time.Second }},
		{"a zero max delay is the default above a lower base", Options{BaseDelay: time.Second},
			func(o Options) any { return o.MaxDelay }, func(Options) any { return DefaultMaxDelay }},
		{"a zero base delay is at most the max delay", Options{MaxDelay: time.Second},
			func(o Options) any { return o.BaseDelay }, func(Options) any { return time.Second }},
		{"a zero base delay is the default below a higher max", Options{MaxDelay: time.Minute},
			func(o Options) any { return o.BaseDelay }, func(Options) any { return DefaultBaseDelay }},
		{"any negative count is unlimited", Options{ConnsPerNetwork: -2, HandshakesPerMinute: -1, LoginsInFlight: -100, BlockFailures: -5, UserFailures: -1},
			func(o Options) any {
				return []int{o.ConnsPerNetwork, o.HandshakesPerMinute, o.LoginsInFlight, o.BlockFailures, o.UserFailures}
			},
			func(Options) any { return []int{Unlimited, Unlimited, Unlimited, Unlimited, Unlimited} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			o, err := c.opts.WithDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if got, want := fmt.Sprint(c.got(o)), fmt.Sprint(c.want(o)); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
}

// TestOptionsUnlimited: Unlimited turns the counting rules off.
func TestOptionsUnlimited(t *testing.T) {
	e := newEnv(t, Options{ConnsPerNetwork: Unlimited, HandshakesPerMinute: Unlimited, LoginsInFlight: Unlimited, ParallelLogins: Unlimited,
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
