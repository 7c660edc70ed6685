package guard

import (
	"testing"

	"github.com/mailfront/mailfront/proxy"
)

// TestGrouping: addresses share state by network: /32 for IPv4 and /64
// for IPv6 unless configured, IPv4-mapped IPv6 as IPv4, zones ignored.
// Both the connection count and the failure record are shared.
func TestGrouping(t *testing.T) {
	cases := []struct {
		name   string
		opts   Options
		a, b   string
		shared bool
	}{
		{"one IPv4 address", Options{}, "192.0.2.1", "192.0.2.1", true},
		{"two IPv4 addresses", Options{}, "192.0.2.1", "192.0.2.2", false},
		{"IPv4-mapped IPv6 is IPv4", Options{}, "::ffff:192.0.2.1", "192.0.2.1", true},
		{"one /64", Options{}, "2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe", true},
		{"another /64", Options{}, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"zones ignored", Options{}, "fe80::1%eth0", "fe80::2%eth1", true},
		{"IPv4 /24", Options{IPv4Prefix: 24}, "192.0.2.1", "192.0.2.254", true},
		{"IPv4 /24, next /24", Options{IPv4Prefix: 24}, "192.0.2.1", "192.0.3.1", false},
		{"IPv6 /48", Options{IPv6Prefix: 48}, "2001:db8:1:2::1", "2001:db8:1:ffff::1", true},
		{"IPv6 /128", Options{IPv6Prefix: 128}, "2001:db8::1", "2001:db8::2", false},
		{"IPv4 and IPv6 never", Options{IPv4Prefix: 8, IPv6Prefix: 16}, "10.0.0.1", "::a00:1", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.opts
			o.ConnsPerNetwork, o.BlockFailures = 1, 1
			e := newEnv(t, o)
			v, _, release := e.g.Connect("imap", addr(c.a))
			if v != proxy.Admit {
				t.Fatalf("first connection from %s: %v, want Admit", c.a, v)
			}
			want := proxy.Admit
			if c.shared {
				want = proxy.Refuse
			}
			if v, reason := e.connect("imap", c.b); v != want {
				t.Errorf("connection from %s while %s has one: %v %q, want %v", c.b, c.a, v, reason, want)
			}
			release()
			e.fail(c.a, "alice", "guess") // blocks a's network
			if v, reason := e.connect("imap", c.b); v != want || (c.shared && reason != ReasonBlocked) {
				t.Errorf("connection from %s after %s was blocked: %v %q, want %v", c.b, c.a, v, reason, want)
			}
		})
	}
}
