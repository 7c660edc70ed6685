package guard

import (
	"net/netip"
	"testing"

	"github.com/mailfront/mailfront/proxy"
)

// TestAccessLists: the global lists, then the listener's; Deny wins over
// Allow; an empty Allow allows all; trusted networks are always admitted.
func TestAccessLists(t *testing.T) {
	o := Options{
		Allow: pfx("10.0.0.0/8", "2001:db8::/32"),
		Deny:  pfx("10.1.0.0/16", "::ffff:10.4.0.0/112"), // the second is 10.4.0.0/16
		ListenerAllow: map[string][]netip.Prefix{
			"imaps": pfx("10.2.0.0/16"),
		},
		ListenerDeny: map[string][]netip.Prefix{
			"pop3s": pfx("10.3.0.0/16"),
			"imaps": pfx("10.2.9.0/24"),
		},
		Trusted: pfx("10.1.9.9/32", "192.0.2.9/32"),
	}
	open := Options{Deny: pfx("192.0.2.0/24")}
	cases := []struct {
		name     string
		opts     Options
		listener string
		addr     string
		want     proxy.Verdict
	}{
		{"in the global allow list", o, "imap", "10.9.9.9", proxy.Admit},
		{"IPv6 in the allow list", o, "imap", "2001:db8::1", proxy.Admit},
		{"not in the allow list", o, "imap", "192.0.2.1", proxy.Deny},
		{"deny wins over allow", o, "imap", "10.1.2.3", proxy.Deny},
		{"mapped address denied", o, "imap", "::ffff:10.1.2.3", proxy.Deny},
		{"mapped deny prefix", o, "imap", "10.4.0.1", proxy.Deny},
		{"listener allow list admits", o, "imaps", "10.2.0.1", proxy.Admit},
		{"listener allow list refuses", o, "imaps", "10.9.9.9", proxy.Deny},
		{"listener deny wins over its allow", o, "imaps", "10.2.9.1", proxy.Deny},
		{"listener deny list", o, "pop3s", "10.3.0.1", proxy.Deny},
		{"listener deny list, other address", o, "pop3s", "10.9.9.9", proxy.Admit},
		{"listener deny list, other listener", o, "imap", "10.3.0.1", proxy.Admit},
		{"unknown listener: global lists", o, "other", "192.0.2.1", proxy.Deny},
		{"trusted beats deny", o, "imap", "10.1.9.9", proxy.Admit},
		{"trusted beats allow", o, "imaps", "192.0.2.9", proxy.Admit},
		{"no allow list", open, "imap", "198.51.100.1", proxy.Admit},
		{"no allow list, denied", open, "imap", "192.0.2.1", proxy.Deny},
		{"invalid address and no lists", Options{}, "imap", "", proxy.Admit},
		{"invalid address and an allow list", o, "imap", "", proxy.Deny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opts)
			var a netip.Addr
			if c.addr != "" {
				a = addr(c.addr)
			}
			v, reason, release := e.g.Connect(c.listener, a)
			release()
			if v != c.want {
				t.Errorf("Connect(%q, %s): %v %q, want %v", c.listener, c.addr, v, reason, c.want)
			}
			if v == proxy.Deny && reason != ReasonDeny {
				t.Errorf("reason %q, want %q", reason, ReasonDeny)
			}
		})
	}
}
