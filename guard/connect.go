package guard

import (
	"net/netip"
	"sync/atomic"

	"github.com/mailfront/mailfront/proxy"
)

// noop is the release of connections the guard does not count.
func noop() {}

// Connect implements proxy.Gate: trusted networks are admitted; then the
// access lists (Deny), the block, the connection cap and, on implicit TLS
// listeners, the handshake rate (Refuse). An admitted connection's release
// may be called any number of times; only the first counts.
func (g *Guard) Connect(listener string, addr netip.Addr) (proxy.Verdict, string, func()) {
	addr = clean(addr)
	if g.trusted(addr) {
		return proxy.Admit, "", noop
	}
	rules := (*g.listeners.Load())[listener]
	if !g.allowed(addr, rules) {
		return proxy.Deny, ReasonDeny, noop
	}
	key := g.network(addr)
	c := clock{g: g}
	s := g.nets.shardOf(key)
	s.mu.Lock()
	e, n, ended := g.lookup(s, key, &c)
	reason := ""
	switch {
	case n.blocked && n.isBlocked(c.now()):
		reason = ReasonBlocked
	case g.o.ConnsPerNetwork != Unlimited && int(n.conns) >= g.o.ConnsPerNetwork:
		reason = ReasonConnections
	case rules != nil && rules.implicit && !g.takeHandshake(n, &c):
		reason = ReasonHandshakes
	default:
		n.conns++
	}
	s.mu.Unlock()
	if ended {
		g.logUnblocked(key, "expired")
	}
	if reason != "" {
		return proxy.Refuse, reason, noop
	}
	r := &release{g: g, e: e}
	return proxy.Admit, "", r.do
}

// release gives back one connection, once.
type release struct {
	g    *Guard
	e    *entry[netip.Prefix, network]
	done atomic.Bool
}

func (r *release) do() {
	if !r.done.CompareAndSwap(false, true) {
		return
	}
	s := r.e.shard
	s.mu.Lock()
	r.e.val.conns-- // the entry may have left the table meanwhile; harmless
	s.mu.Unlock()
}

// Handshake implements proxy.Gate: a STARTTLS handshake spends one of the
// network's handshake tokens; trusted networks always may.
func (g *Guard) Handshake(addr netip.Addr) bool {
	addr = clean(addr)
	if g.trusted(addr) || g.o.HandshakesPerMinute == Unlimited {
		return true
	}
	key := g.network(addr)
	c := clock{g: g}
	s := g.nets.shardOf(key)
	s.mu.Lock()
	_, n, ended := g.lookup(s, key, &c)
	ok := g.takeHandshake(n, &c)
	s.mu.Unlock()
	if ended {
		g.logUnblocked(key, "expired")
	}
	return ok
}

// allowed applies the global access lists, then the listener's.
func (g *Guard) allowed(addr netip.Addr, rules *listenerRules) bool {
	if !permits(g.o.Allow, g.o.Deny, addr) {
		return false
	}
	return rules == nil || permits(rules.allow, rules.deny, addr)
}

// permits: Deny wins; an empty Allow allows all.
func permits(allow, deny []netip.Prefix, addr netip.Addr) bool {
	if contains(deny, addr) {
		return false
	}
	return len(allow) == 0 || contains(allow, addr)
}

// clock reads the guard's clock at most once, and only if asked: a known,
// unblocked network on a STARTTLS listener needs no time at all.
type clock struct {
	g    *Guard
	t    int64
	read bool
}

func (c *clock) now() int64 {
	if !c.read {
		c.t, c.read = c.g.tick(), true
	}
	return c.t
}

// lookup returns key's entry with s locked, making it if need be, and
// reports whether a block ended (to be logged once s is unlocked).
func (g *Guard) lookup(s *shard[netip.Prefix, network], key netip.Prefix, c *clock) (*entry[netip.Prefix, network], *network, bool) {
	e := g.nets.get(s, key)
	if e == nil {
		now := c.now()
		e, _ = g.nets.getOrAdd(s, key, now)
		e.val.handshakes.fill(g.hsCap, now)
		e.val.scoreAt = now
	}
	n := &e.val
	return e, n, n.blocked && n.blockEnded(c.now())
}

func (g *Guard) takeHandshake(n *network, c *clock) bool {
	return g.o.HandshakesPerMinute == Unlimited || n.handshakes.take(g.hsCap, g.hsPerTick, c.now())
}
