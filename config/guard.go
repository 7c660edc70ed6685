package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Guard slows and stops password guessing, by client network and by user.
// Zero means package guard's default, named on each field (proxy's for
// failures_per_connection); a negative count turns its rule off where the
// field says so and is an error elsewhere.
type Guard struct {
	// Enabled turns the guard on; absent means on.
	Enabled *bool `yaml:"enabled"`
	// Trusted networks (webmail, monitoring) are exempt from the guard and
	// from the per-network limits. CIDRs; a bare address is one host.
	Trusted []string `yaml:"trusted"`
	// IPv4Prefix and IPv6Prefix group client addresses into networks
	// (zero: guard.DefaultIPv4Prefix, guard.DefaultIPv6Prefix).
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
	// BaseDelay is the first failed login's penalty for its network,
	// doubling with each failure up to MaxDelay (zero:
	// guard.DefaultBaseDelay, guard.DefaultMaxDelay).
	BaseDelay time.Duration `yaml:"base_delay"`
	MaxDelay  time.Duration `yaml:"max_delay"`
	// HalfLife is how fast a network's penalty fades (zero:
	// guard.DefaultHalfLife). A successful login halves it too.
	HalfLife time.Duration `yaml:"half_life"`
	// FailuresPerConnection is how many refused logins one connection
	// gets before BYE / -ERR and a close (zero: proxy.DefaultAuthFailures).
	FailuresPerConnection int `yaml:"failures_per_connection"`
	// Block blocks a network with too many failures.
	Block GuardBlock `yaml:"block"`
	// User slows down a user name failing from many networks.
	User GuardUser `yaml:"user"`
	// LoginsInFlight caps a network's logins waiting or at the backend
	// (zero: guard.DefaultLoginsInFlight; negative: no cap).
	LoginsInFlight int `yaml:"logins_in_flight"`
	// ParallelLogins is how many of a network's logins may be at the
	// backend at once; the others wait their turn (zero:
	// guard.DefaultParallelLogins; negative: no cap).
	ParallelLogins int `yaml:"parallel_logins"`
}

// GuardBlock blocks a network after Failures failed logins within Window,
// for Duration (zero: guard.DefaultBlockFailures, DefaultBlockWindow,
// DefaultBlockDuration; a negative Failures never blocks).
type GuardBlock struct {
	Failures int           `yaml:"failures"`
	Window   time.Duration `yaml:"window"`
	Duration time.Duration `yaml:"duration"`
}

// GuardUser delays logins for a user name that failed from Failures
// different networks within block.window, by up to MaxDelay (zero:
// guard.DefaultUserFailures, DefaultUserMaxDelay; a negative Failures
// turns it off). It never locks the user out.
type GuardUser struct {
	Failures int           `yaml:"failures"`
	MaxDelay time.Duration `yaml:"max_delay"`
}

// Access lists who may connect at all.
type Access struct {
	// Allow, when not empty, admits only these networks (CIDRs).
	Allow []string `yaml:"allow"`
	// Deny refuses these networks; it wins over Allow.
	Deny []string `yaml:"deny"`
}

// Admin is the HTTP endpoint for metrics, health and the guard's state.
type Admin struct {
	// Address is host:port; keep it on loopback or a private network (it
	// has no authentication).
	Address string `yaml:"address"`
}

// GuardEnabled reports whether the guard runs.
func (g Guard) GuardEnabled() bool { return g.Enabled == nil || *g.Enabled }

// validateGuard checks the guard settings that are set: zero means the
// default, which package guard checks itself.
func (c *Config) validateGuard(p *problems) {
	g := c.Guard
	checkPrefixes(p, "guard.trusted", g.Trusted)
	if g.IPv4Prefix != 0 && (g.IPv4Prefix < 8 || g.IPv4Prefix > 32) {
		p.add("guard.ipv4_prefix", "%d is not between 8 and 32", g.IPv4Prefix)
	}
	if g.IPv6Prefix != 0 && (g.IPv6Prefix < 16 || g.IPv6Prefix > 128) {
		p.add("guard.ipv6_prefix", "%d is not between 16 and 128", g.IPv6Prefix)
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{
		{"base_delay", g.BaseDelay}, {"max_delay", g.MaxDelay}, {"half_life", g.HalfLife},
		{"block.window", g.Block.Window}, {"block.duration", g.Block.Duration}, {"user.max_delay", g.User.MaxDelay},
	} {
		if f.v < 0 {
			p.add("guard."+f.key, notNegative)
		}
	}
	if g.BaseDelay > 0 && g.MaxDelay > 0 && g.MaxDelay < g.BaseDelay {
		p.add("guard.max_delay", "%v is below base_delay %v: raise max_delay or lower base_delay", g.MaxDelay, g.BaseDelay)
	}
	for _, f := range []struct {
		key string
		v   time.Duration
	}{{"base_delay", g.BaseDelay}, {"max_delay", g.MaxDelay}} {
		if f.v > time.Minute {
			p.add("guard."+f.key, "%v is over a minute: mail apps time out and retry, which looks like more failures", f.v)
		}
	}
	if g.FailuresPerConnection < 0 {
		p.add("guard.failures_per_connection", notNegative)
	}
	for _, f := range []struct {
		key string
		v   int
	}{{"block.failures", g.Block.Failures}, {"user.failures", g.User.Failures}} {
		if f.v > 1000 {
			p.add("guard."+f.key, "%d is over 1000 (the guard keeps that many failure times per network): lower it, "+
				"or set a negative value to turn the rule off", f.v)
		}
	}
}

// checkPrefixes reports every entry of list that is not a CIDR or an address.
func checkPrefixes(p *problems, key string, list []string) {
	for i, s := range list {
		if _, err := ParsePrefix(s); err != nil {
			p.add(fmt.Sprintf("%s[%d]", key, i), "%v", err)
		}
	}
}

// ParsePrefix reads a CIDR, or a bare address as one host (/32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR (e.g. 192.0.2.0/24, 2001:db8::/32)", s)
		}
		if pfx.Masked() != pfx {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, pfx.Masked())
		}
		return pfx, nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or a CIDR", s)
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// ParsePrefixes reads a validated list.
func ParsePrefixes(list []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		if pfx, err := ParsePrefix(s); err == nil {
			out = append(out, pfx)
		}
	}
	return out
}

func (c *Config) validateAccess(p *problems) {
	checkPrefixes(p, "access.allow", c.Access.Allow)
	checkPrefixes(p, "access.deny", c.Access.Deny)
	for i, l := range c.Listeners {
		checkPrefixes(p, fmt.Sprintf("listeners[%d].allow", i), l.Allow)
		checkPrefixes(p, fmt.Sprintf("listeners[%d].deny", i), l.Deny)
		if strings.ContainsAny(l.PlaintextRefusal, "\r\n") {
			p.add(fmt.Sprintf("listeners[%d].plaintext_refusal", i), "must be one line")
		}
	}
	if c.Admin != nil {
		if err := checkHostPort(c.Admin.Address, true); err != nil {
			p.add("admin.address", "%v", err)
		}
	}
}

// adminWarnings flags an admin endpoint reachable from other hosts.
func (c *Config) adminWarnings() []string {
	if c.Admin == nil {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Admin.Address)
	if err != nil {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() || host == "localhost" {
		return nil
	}
	return []string{fmt.Sprintf("admin.address: %s is reachable from other hosts and has no authentication; "+
		"keep it on loopback or a private network", c.Admin.Address)}
}
