package guard

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Defaults for the zero values of Options. ARCHITECTURE.md says why each
// is what it is; README.md's configuration reference is checked against
// them.
//
// The per-network admission limits (ConnsPerNetwork, HandshakesPerMinute,
// LoginsInFlight, ParallelLogins) are sized for the largest legitimate crowd behind one
// address: an office, a university or a carrier-grade NAT behind one IPv4
// address, a webmail opening an IMAP connection per page. A default that
// throttles them is an outage the operator did not ask for; they bound
// what one network can take of the process, not the guessing rate, which
// the shared penalty and the block bound.
const (
	// DefaultIPv4Prefix groups IPv4 clients by address: one address is one
	// household, one office or one NAT.
	DefaultIPv4Prefix = 32
	// DefaultIPv6Prefix groups IPv6 clients by /64: the smallest network a
	// subscriber or a LAN gets (RFC 7421), whose addresses one host can
	// change at will.
	DefaultIPv6Prefix = 64
	// DefaultBaseDelay is a network's first failed login's penalty: a
	// user who mistyped barely notices it.
	DefaultBaseDelay = 2 * time.Second
	// DefaultMaxDelay caps the doubling penalty below the time mail apps
	// wait for an answer (they retry after 30 to 60 s, which would look
	// like more failures).
	DefaultMaxDelay = 15 * time.Second
	// DefaultHalfLife is how fast a network's penalty fades: ten minutes
	// after its last failure a network's next one costs half as much.
	DefaultHalfLife = 10 * time.Minute
	// DefaultBlockFailures failures within DefaultBlockWindow block a
	// network: far more than an office's mistyped passwords (stale
	// repeats of one password count once), far fewer than a guesser needs.
	DefaultBlockFailures = 20
	// DefaultBlockWindow is the window the failures are counted in.
	DefaultBlockWindow = 10 * time.Minute
	// DefaultBlockDuration is how long a block lasts: with the window, a
	// network tries some 20 to 32 passwords per quarter of an hour instead
	// of hundreds per minute.
	DefaultBlockDuration = 15 * time.Minute
	// DefaultUserFailures is how many networks a user name must fail from
	// within the block window before its logins are slowed: a user's own
	// devices fail from two or three.
	DefaultUserFailures = 10
	// DefaultUserMaxDelay caps the soft delay on such a user name: small
	// enough that it never locks the owner out.
	DefaultUserMaxDelay = 5 * time.Second
	// DefaultLoginsInFlight caps a network's logins waiting for their turn
	// (behind its shared penalty, or for a backend slot) or at the
	// backend. Logins queue there in bursts: an office's mail apps
	// reconnecting after its uplink came back, or everyone's logins in the
	// two seconds after one mistyped password. 32 takes some 16 logins a
	// second behind a 2 s penalty; five refused an office's or a webmail's
	// simultaneous logins. Waiting costs a goroutine, not the backend.
	DefaultLoginsInFlight = 32
	// DefaultParallelLogins is how many of a network's logins may be at
	// the backend at once; the others wait their turn, and meanwhile the
	// first ones' failures set the penalty they then wait out. So an
	// attacker's parallel connections buy at most this many unpenalised
	// guesses, while a burst of legitimate logins is served this many at
	// a time (at 50 to 300 ms a backend login, 13 to 80 a second) rather
	// than refused.
	DefaultParallelLogins = 4
	// DefaultConnsPerNetwork caps a network's open connections: 10% of
	// proxy.DefaultMaxConns, so that an office of several hundred people,
	// each with a desktop app holding 2 to 5 connections and a phone
	// holding one IDLE, fits, while it still takes ten networks to fill
	// the process.
	DefaultConnsPerNetwork = 2000
	// DefaultHandshakesPerMinute caps a network's new TLS handshakes, as a
	// token bucket holding a minute's worth: at about 0.5 ms of CPU per
	// full handshake, 50 a second is 2.5% of one core per network, while
	// a NAT's morning rush (everyone's apps at once) or a webmail opening
	// a connection per page fits.
	DefaultHandshakesPerMinute = 3000
	// DefaultMaxEntries bounds each state table (networks, users); an
	// entry takes well under 1 KB, so the tables stay bounded whatever an
	// attacker sprays.
	DefaultMaxEntries = 100000
)

// Unlimited, as a count in Options, turns that rule off. Any negative
// count does; WithDefaults turns it into Unlimited.
const Unlimited = -1

// maxCount bounds BlockFailures and UserFailures: each network and user
// keeps that many failure times, so the bound is a memory bound.
const maxCount = 1000

// Options configures a Guard. A zero value means the default named on the
// field; a negative count turns its rule off where the field says so, and
// is an error elsewhere. WithDefaults resolves them.
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
	// defaults DefaultIPv4Prefix (32) and DefaultIPv6Prefix (64).
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
	// with each failure up to MaxDelay; defaults DefaultBaseDelay (2s) and
	// DefaultMaxDelay (15s), except that a zero one never contradicts the
	// other when that is set: a zero BaseDelay is at most MaxDelay, a zero
	// MaxDelay at least BaseDelay.
	BaseDelay, MaxDelay time.Duration
	// HalfLife is how fast a network's failure score fades (a successful
	// login halves it too); default DefaultHalfLife (10m).
	HalfLife time.Duration
	// BlockFailures failed logins (stale repeats aside) from one network
	// within BlockWindow block it for BlockDuration; defaults
	// DefaultBlockFailures (20), DefaultBlockWindow (10m) and
	// DefaultBlockDuration (15m). A negative BlockFailures never blocks.
	// At most 1000.
	BlockFailures              int
	BlockWindow, BlockDuration time.Duration
	// UserFailures is how many networks a user name must fail from within
	// BlockWindow before its logins get a soft delay, growing with further
	// failures up to UserMaxDelay; defaults DefaultUserFailures (10) and
	// DefaultUserMaxDelay (5s). It never locks the user out. Negative
	// turns it off. At most 1000.
	UserFailures int
	UserMaxDelay time.Duration

	// LoginsInFlight caps a network's logins waiting in Login or at the
	// backend; more are refused at once. Default DefaultLoginsInFlight
	// (32), negative: no cap.
	LoginsInFlight int
	// ParallelLogins is how many of a network's logins may be at the
	// backend at once; the others wait for a turn. Default
	// DefaultParallelLogins (4), negative: no cap.
	ParallelLogins int
	// ConnsPerNetwork caps a network's concurrent connections; default
	// DefaultConnsPerNetwork (2000), negative: no cap.
	ConnsPerNetwork int
	// HandshakesPerMinute caps a network's new TLS handshakes, as a token
	// bucket holding a minute's worth; default DefaultHandshakesPerMinute
	// (3000), negative: no cap. Connect counts one on implicit TLS
	// listeners (see SetImplicit), Handshake one for STARTTLS.
	HandshakesPerMinute int
	// MaxEntries bounds each state table (networks, users); default
	// DefaultMaxEntries (100000). It cannot be unlimited.
	MaxEntries int

	// OnBlock, if set, is called (outside the guard's locks) when a network
	// is blocked.
	OnBlock func(network netip.Prefix, until time.Time)
}

// WithDefaults returns o as New puts it in force: zero values filled in,
// negative counts turned into Unlimited, prefixes normalised. It reports
// every bad option at once.
func (o Options) WithDefaults() (Options, error) {
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
	switch {
	case o.BaseDelay == 0 && o.MaxDelay > 0:
		o.BaseDelay = min(DefaultBaseDelay, o.MaxDelay)
	case o.MaxDelay == 0 && o.BaseDelay > 0:
		o.MaxDelay = max(DefaultMaxDelay, o.BaseDelay)
	}
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
		{&o.ParallelLogins, DefaultParallelLogins, "parallel logins", 0},
		{&o.ConnsPerNetwork, DefaultConnsPerNetwork, "connections per network", 0},
		{&o.HandshakesPerMinute, DefaultHandshakesPerMinute, "handshakes per minute", 0},
	} {
		switch {
		case *c.v < 0:
			*c.v = Unlimited
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

func prefixLen(v *int, def, bits int, name string, bad func(string, ...any)) {
	switch {
	case *v == 0:
		*v = def
	case *v < 1 || *v > bits:
		bad("%s %d is not between 1 and %d", name, *v, bits)
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
