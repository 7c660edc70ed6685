package guard

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Connect's reasons, fixed labels for logs and metrics.
const (
	ReasonDeny        = "deny"                // the access lists (Verdict Deny)
	ReasonBlocked     = "blocked"             // the network is blocked (Refuse)
	ReasonConnections = "network connections" // ConnsPerNetwork (Refuse)
	ReasonHandshakes  = "handshake rate"      // HandshakesPerMinute (Refuse)
)

// Guard holds the state of the rules described in Options. It is safe for
// concurrent use; make one with New.
type Guard struct {
	o     Options // with defaults
	log   *slog.Logger
	epoch time.Time // tick 0
	keys  secrets

	listeners atomic.Pointer[map[string]*listenerRules]
	setMu     sync.Mutex // serialises SetImplicit

	nets  *table[netip.Prefix, network]
	users *table[uint64, user]

	// Options in ticks and per tick.
	base, maxDelay, halfLife, window, blockFor, userMax int64
	hsCap, hsPerTick                                    float64

	blocks, delays, waits, refused atomic.Uint64
}

// listenerRules are one listener's access lists and TLS mode.
type listenerRules struct {
	allow, deny []netip.Prefix
	implicit    bool
}

// New checks opts, fills in its defaults and makes a Guard.
func New(opts Options) (*Guard, error) {
	o, err := opts.WithDefaults()
	if err != nil {
		return nil, err
	}
	g := &Guard{
		o:         o,
		log:       o.Log,
		epoch:     o.Now(),
		keys:      newSecrets(),
		base:      int64(o.BaseDelay),
		maxDelay:  int64(o.MaxDelay),
		halfLife:  int64(o.HalfLife),
		window:    int64(o.BlockWindow),
		blockFor:  int64(o.BlockDuration),
		userMax:   int64(o.UserMaxDelay),
		hsCap:     float64(o.HandshakesPerMinute),
		hsPerTick: float64(o.HandshakesPerMinute) / float64(time.Minute),
	}
	rules := map[string]*listenerRules{}
	for name, list := range o.ListenerAllow {
		rules[name] = &listenerRules{allow: list}
	}
	for name, list := range o.ListenerDeny {
		if rules[name] == nil {
			rules[name] = &listenerRules{}
		}
		rules[name].deny = list
	}
	g.listeners.Store(&rules)
	g.nets = newTable[netip.Prefix, network](o.MaxEntries, g.keys.network)
	g.nets.idle = g.networkIdle
	g.nets.keep = g.networkKept
	g.nets.dropped = g.networkDropped
	g.users = newTable[uint64, user](o.MaxEntries, userShard)
	g.users.idle = g.userIdle
	return g, nil
}

// SetImplicit tells the guard whether listener is an implicit TLS one, so
// that Connect counts a handshake for each of its connections. Call it for
// every listener before serving; a listener never named is a STARTTLS one.
func (g *Guard) SetImplicit(listener string, implicit bool) {
	g.setMu.Lock()
	defer g.setMu.Unlock()
	old := *g.listeners.Load()
	rules := make(map[string]*listenerRules, len(old)+1)
	for k, v := range old {
		rules[k] = v
	}
	r := &listenerRules{}
	if o := old[listener]; o != nil {
		*r = *o
	}
	r.implicit = implicit
	rules[listener] = r
	g.listeners.Store(&rules)
}

// tick is now in nanoseconds since the guard's epoch (monotonic when the
// clock is time.Now).
func (g *Guard) tick() int64 { return int64(g.o.Now().Sub(g.epoch)) }

// wall turns a tick back into a time.
func (g *Guard) wall(t int64) time.Time { return g.epoch.Add(time.Duration(t)) }

// clean is addr as the guard keys it: IPv4-mapped IPv6 as IPv4, no zone.
func clean(addr netip.Addr) netip.Addr { return addr.Unmap().WithZone("") }

// Network is the network the guard groups addr in (guard.ipv4_prefix,
// ipv6_prefix): one client, as far as its limits and penalties go.
func (g *Guard) Network(addr netip.Addr) netip.Prefix { return g.network(clean(addr)) }

// network is the prefix that groups a cleaned address; the zero Prefix
// for an invalid address.
func (g *Guard) network(addr netip.Addr) netip.Prefix {
	bits := g.o.IPv6Prefix
	if addr.Is4() {
		bits = g.o.IPv4Prefix
	}
	p, _ := addr.Prefix(bits)
	return p
}

// trusted reports whether a cleaned address is in a trusted network.
func (g *Guard) trusted(addr netip.Addr) bool { return contains(g.o.Trusted, addr) }

func contains(list []netip.Prefix, addr netip.Addr) bool {
	for _, p := range list {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// networkIdle: nothing worth keeping about the network.
func (g *Guard) networkIdle(n *network, now int64) bool {
	return n.conns == 0 && n.inflight == 0 && !n.isBlocked(now) && n.next <= now &&
		n.decayed(now, g.halfLife) < idleScore && n.fails.since(now-g.window) == 0 &&
		(g.o.HandshakesPerMinute == Unlimited || n.handshakes.full(g.hsCap, g.hsPerTick, now))
}

// networkKept: losing the network's entry would lose a block or undercount
// its connections or logins.
func (g *Guard) networkKept(n *network, now int64) bool {
	return n.conns > 0 || n.inflight > 0 || n.isBlocked(now)
}

// networkDropped logs the end of a block whose entry leaves the table.
func (g *Guard) networkDropped(p netip.Prefix, n *network, now int64, evicted bool) {
	switch {
	case n.blockEnded(now):
		g.logUnblocked(p, "expired")
	case n.blocked:
		n.blocked = false
		g.logUnblocked(p, "evicted")
	}
}

func (g *Guard) logUnblocked(p netip.Prefix, reason string) {
	g.log.Info("network unblocked", "network", p.String(), "reason", reason)
}
