package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for the zero values of Options.
const (
	DefaultIPv4Prefix          = 32
	DefaultIPv6Prefix          = 64
	DefaultBaseDelay           = 2 * time.Second
	DefaultMaxDelay            = 15 * time.Second
	DefaultHalfLife            = 10 * time.Minute
	DefaultBlockFailures       = 20
	DefaultBlockWindow         = 10 * time.Minute
	DefaultBlockDuration       = 15 * time.Minute
	DefaultUserFailures        = 10
	DefaultUserMaxDelay        = 5 * time.Second
	DefaultLoginsInFlight      = 5
	DefaultConnsPerNetwork     = 100
	DefaultHandshakesPerMinute = 60
	DefaultMaxEntries          = 100000
)

// Unlimited, as a count in Options, turns that rule off.
const Unlimited = -1

// maxCount bounds BlockFailures and UserFailures: each network and user
// keeps that many failure times, so the bound is a memory bound.
const maxCount = 1000

// Options configures a Guard. A zero value means the default named on the
// field; counts that allow it take Unlimited (-1) to turn their rule off.
type Options struct {
	// Now is the clock; default time.Now.
	Now func() time.Time
	// After waits on the clock; default time.After. Tests inject a fake
	// clock through Now and After.
	After func(time.Duration) <-chan time.Time
	// Log gets "network blocked" (WARN) and "network unblocked" (INFO);
	// nil discards them.
	Log *slog.Logger

	// IPv4Prefix and IPv6Prefix group client addresses into networks;
	// defaults 32 and 64.
	IPv4Prefix, IPv6Prefix int

	// Trusted networks (webmail, monitoring) are always admitted and exempt
	// from every rule below, the access lists included.
	Trusted []netip.Prefix
	// Allow, when not empty, admits only these networks; Deny refuses
	// these, and wins over Allow.
	Allow, Deny []netip.Prefix
	// ListenerAllow and ListenerDeny apply, by listener name, on top of
	// Allow and Deny.
	ListenerAllow, ListenerDeny map[string][]netip.Prefix

	// BaseDelay is the penalty of a network's first failed login, doubling
	// with each failure up to MaxDelay; defaults 2s and 15s.
	BaseDelay, MaxDelay time.Duration
	// HalfLife is how fast a network's failure score fades (a successful
	// login halves it too); default 10m.
	HalfLife time.Duration
	// BlockFailures failed logins (stale repeats aside) from one network
	// within BlockWindow block it for BlockDuration; defaults 20, 10m,
	// 15m. Unlimited never blocks. At most 1000.
	BlockFailures              int
	BlockWindow, BlockDuration time.Duration
	// UserFailures is how many networks a user name must fail from within
	// BlockWindow before its logins get a soft delay, growing with further
	// failures up to UserMaxDelay; defaults 10 and 5s. It never locks the
	// user out. Unlimited turns it off. At most 1000.
	UserFailures int
	UserMaxDelay time.Duration

	// LoginsInFlight caps a network's logins waiting in Login or at the
	// backend; default 5.
	LoginsInFlight int
	// ConnsPerNetwork caps a network's concurrent connections; default 100.
	ConnsPerNetwork int
	// HandshakesPerMinute caps a network's new TLS handshakes, as a token
	// bucket holding a minute's worth; default 60. Connect counts one on
	// implicit TLS listeners (see SetImplicit), Handshake one for STARTTLS.
	HandshakesPerMinute int
	// MaxEntries bounds each state table (networks, users); default
	// 100000. It cannot be unlimited.
	MaxEntries int

	// OnBlock, if set, is called (outside the guard's locks) when a network
	// is blocked.
	OnBlock func(network netip.Prefix, until time.Time)
}

// withDefaults fills the zero values and checks the rest, reporting every
// problem at once.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("guard: "+format, args...)) }
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	prefixLen(&o.IPv4Prefix, DefaultIPv4Prefix, 32, "ipv4 prefix", bad)
	prefixLen(&o.IPv6Prefix, DefaultIPv6Prefix, 128, "ipv6 prefix", bad)
	for _, d := range []struct {
		v    *time.Duration
		def  time.Duration
		name string
	}{
		{&o.BaseDelay, DefaultBaseDelay, "base delay"}, {&o.MaxDelay, DefaultMaxDelay, "max delay"},
		{&o.HalfLife, DefaultHalfLife, "half life"}, {&o.BlockWindow, DefaultBlockWindow, "block window"},
		{&o.BlockDuration, DefaultBlockDuration, "block duration"}, {&o.UserMaxDelay, DefaultUserMaxDelay, "user max delay"},
	} {
		switch {
		case *d.v < 0:
			bad("%s %v is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if o.MaxDelay < o.BaseDelay {
		bad("max delay %v is below base delay %v", o.MaxDelay, o.BaseDelay)
	}
	for _, c := range []struct {
		v    *int
		def  int
		name string
		max  int
	}{
		{&o.BlockFailures, DefaultBlockFailures, "block failures", maxCount},
		{&o.UserFailures, DefaultUserFailures, "user failures", maxCount},
		{&o.LoginsInFlight, DefaultLoginsInFlight, "logins in flight", 0},
		{&o.ConnsPerNetwork, DefaultConnsPerNetwork, "connections per network", 0},
		{&o.HandshakesPerMinute, DefaultHandshakesPerMinute, "handshakes per minute", 0},
	} {
		switch {
		case *c.v < Unlimited:
			bad("%s %d is negative (use %d for unlimited)", c.name, *c.v, Unlimited)
		case *c.v == 0:
			*c.v = c.def
		case c.max > 0 && *c.v > c.max:
			bad("%s %d is over %d", c.name, *c.v, c.max)
		}
	}
	switch {
	case o.MaxEntries < 0:
		bad("max entries %d is negative", o.MaxEntries)
	case o.MaxEntries == 0:
		o.MaxEntries = DefaultMaxEntries
	}
	o.Trusted = normalise(o.Trusted, "trusted", bad)
	o.Allow = normalise(o.Allow, "allow", bad)
	o.Deny = normalise(o.Deny, "deny", bad)
	o.ListenerAllow = normaliseMap(o.ListenerAllow, "allow", bad)
	o.ListenerDeny = normaliseMap(o.ListenerDeny, "deny", bad)
	return o, errors.Join(errs...)
}

func prefixLen(v *int, def, max int, name string, bad func(string, ...any)) {
	switch {
	case *v == 0:
		*v = def
	case *v < 1 || *v > max:
		bad("%s %d is not between 1 and %d", name, *v, max)
	}
}

// normalise returns a copy of list with every prefix masked and IPv4-mapped
// IPv6 prefixes turned into IPv4 ones, as client addresses are.
func normalise(list []netip.Prefix, name string, bad func(string, ...any)) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for i, p := range list {
		if !p.IsValid() {
			bad("%s[%d]: %q is not a valid prefix", name, i, p)
			continue
		}
		a := p.Addr().WithZone("")
		bits := p.Bits()
		if a.Is4In6() && bits >= 96 {
			a, bits = a.Unmap(), bits-96
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	return out
}

func normaliseMap(m map[string][]netip.Prefix, name string, bad func(string, ...any)) map[string][]netip.Prefix {
	out := make(map[string][]netip.Prefix, len(m))
	for l, list := range m {
		out[l] = normalise(list, fmt.Sprintf("listener %q %s", l, name), bad)
	}
	return out
}
