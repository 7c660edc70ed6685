package guard

import "net/netip"

// user is what the guard knows about one user name (keyed by a keyed
// hash of it): when and from which networks it failed. Its shard's mutex
// guards it.
type user struct {
	nets  []userNet // distinct networks it failed from, at most UserFailures
	fails times     // failure times, at most 2*UserFailures
}

// userNet is a network (as a keyed hash) and its latest failure.
type userNet struct {
	net uint64
	at  int64
}

// userDelay is the user name's soft delay at now: none until it failed
// from UserFailures networks within BlockWindow, then UserMaxDelay /
// UserFailures for each failure from the UserFailures-th on, up to
// UserMaxDelay.
func (g *Guard) userDelay(k uint64, now int64) int64 {
	if g.o.UserFailures == Unlimited {
		return 0
	}
	s := g.users.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := g.users.get(s, k)
	if e == nil {
		return 0
	}
	return g.softDelay(&e.val, now)
}

func (g *Guard) softDelay(u *user, now int64) int64 {
	from := now - g.window
	distinct := 0
	for _, n := range u.nets {
		if n.at >= from {
			distinct++
		}
	}
	uf := g.o.UserFailures
	if distinct < uf {
		return 0
	}
	over := int64(u.fails.since(from) - uf + 1)
	return min(g.userMax, over*g.userMax/int64(uf))
}

// userFailed records a failure for the user name from the network.
func (g *Guard) userFailed(k uint64, network netip.Prefix, now int64) {
	if g.o.UserFailures == Unlimited {
		return
	}
	h := g.keys.network(network)
	s := g.users.shardOf(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, _ := g.users.getOrAdd(s, k, now)
	u := &e.val
	u.fails.add(now, 2*g.o.UserFailures)
	oldest := -1
	for i, n := range u.nets {
		if n.net == h {
			u.nets[i].at = now
			return
		}
		if oldest < 0 || n.at < u.nets[oldest].at {
			oldest = i
		}
	}
	if len(u.nets) < g.o.UserFailures {
		u.nets = append(u.nets, userNet{net: h, at: now})
		return
	}
	u.nets[oldest] = userNet{net: h, at: now}
}

// forgetUser drops the user name's failures after a successful login.
func (g *Guard) forgetUser(k uint64) {
	if g.o.UserFailures == Unlimited {
		return
	}
	s := g.users.shardOf(k)
	s.mu.Lock()
	if e := s.m[k]; e != nil {
		g.users.remove(s, e, g.tick(), false)
	}
	s.mu.Unlock()
}

// userIdle: no failure within the window.
func (g *Guard) userIdle(u *user, now int64) bool { return u.fails.since(now-g.window) == 0 }
