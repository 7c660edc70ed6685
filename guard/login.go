package guard

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// Login implements proxy.Gate. It refuses at once (proxy.ErrLoginRefused)
// a blocked network or one with LoginsInFlight logins already waiting or at
// the backend. Otherwise it waits until the network's next attempt time,
// plus the user name's soft delay if it has one, and returns done, which
// records the backend's verdict and returns the penalty the client waits
// before its answer. Trusted networks never wait and are never penalised.
func (g *Guard) Login(ctx context.Context, addr netip.Addr, user, password string) (func(proxy.LoginResult) time.Duration, error) {
	addr = clean(addr)
	if g.trusted(addr) {
		return g.trustedDone(user), nil
	}
	a := attempt{g: g, key: g.network(addr), user: g.keys.user(user), cred: g.keys.credential(user, password)}
	now := g.tick()
	wait, err := a.enter(now)
	if err != nil {
		return nil, err
	}
	wait += g.userDelay(a.user, now)
	if wait > 0 {
		g.waits.Add(1)
		select {
		case <-g.o.After(time.Duration(wait)):
		case <-ctx.Done():
			a.leave()
			return nil, fmt.Errorf("guard: wait before login: %w", ctx.Err())
		}
		if a.blockedNow(g.tick()) { // blocked while it waited
			a.leave()
			g.refused.Add(1)
			return nil, proxy.ErrLoginRefused
		}
	}
	return a.done, nil
}

// attempt is one login between Login and done. It holds only keyed
// hashes: the user name and password are not kept.
type attempt struct {
	g        *Guard
	key      netip.Prefix
	e        *entry[netip.Prefix, network]
	user     uint64 // keyed hash of the case-folded user name
	cred     uint64 // keyed hash of the user name and password
	finished atomic.Bool
}

// enter checks the block and the in-flight cap, counts the attempt in
// flight and returns how long until the network's next attempt time.
func (a *attempt) enter(now int64) (int64, error) {
	g := a.g
	s := g.nets.shardOf(a.key)
	s.mu.Lock()
	e, n, ended := g.lookup(s, a.key, &clock{t: now, read: true})
	var err error
	switch {
	case n.isBlocked(now):
		err = proxy.ErrLoginRefused
	case g.o.LoginsInFlight != Unlimited && int(n.inflight) >= g.o.LoginsInFlight:
		err = proxy.ErrLoginRefused
	default:
		n.inflight++
		a.e = e
	}
	wait := max(0, n.next-now)
	s.mu.Unlock()
	if ended {
		g.logUnblocked(a.key, "expired")
	}
	if err != nil {
		g.refused.Add(1)
		return 0, err
	}
	return wait, nil
}

// leave takes the attempt out of flight, with nothing recorded.
func (a *attempt) leave() {
	s := a.e.shard
	s.mu.Lock()
	a.e.val.inflight--
	s.mu.Unlock()
}

func (a *attempt) blockedNow(now int64) bool {
	s := a.e.shard
	s.mu.Lock()
	defer s.mu.Unlock()
	return a.e.val.isBlocked(now)
}

// done records the backend's verdict, once.
func (a *attempt) done(r proxy.LoginResult) time.Duration {
	if !a.finished.CompareAndSwap(false, true) {
		return 0
	}
	now := a.g.tick()
	switch r {
	case proxy.LoginOK:
		a.succeeded(now)
		return 0
	case proxy.LoginFailed:
		return a.failed(now)
	default: // backend trouble and a busy mailbox are not the client's
		a.leave()
		return 0
	}
}

// succeeded halves the network's score and forgets the user's failures.
func (a *attempt) succeeded(now int64) {
	g := a.g
	s := a.e.shard
	s.mu.Lock()
	a.e.val.inflight--
	if a.e.live {
		n := &a.e.val
		n.decay(now, g.halfLife)
		n.score /= 2
	}
	s.mu.Unlock()
	g.forgetUser(a.user)
}

// failed charges the network (unless the credential is a stale repeat)
// and returns the wait before the client hears of it.
func (a *attempt) failed(now int64) time.Duration {
	g := a.g
	s := a.e.shard
	s.mu.Lock()
	a.e.val.inflight--
	n, ended := &a.e.val, false
	if !a.e.live { // evicted while at the backend: charge the network's new entry
		_, n, ended = g.lookup(s, a.key, &clock{t: now, read: true})
	}
	n.decay(now, g.halfLife)
	delay := penalty(n.score, g.base, g.maxDelay)
	if n.seen(a.cred) {
		s.mu.Unlock()
		g.logEnded(ended, a.key)
		g.delays.Add(1)
		return time.Duration(delay)
	}
	n.remember(a.cred)
	n.score++
	n.next = max(n.next, now) + delay
	wait := n.next - now
	block, failures := false, 0
	if g.o.BlockFailures != Unlimited {
		n.fails.add(now, g.o.BlockFailures)
		failures = n.fails.since(now - g.window)
		if block = failures >= g.o.BlockFailures && !n.isBlocked(now); block {
			n.blocked, n.blockedSince, n.blockedUntil, n.blockFailures = true, now, now+g.blockFor, failures
			n.fails.reset()
		}
	}
	s.mu.Unlock()
	g.logEnded(ended, a.key)
	if block {
		g.blocked(a.key, failures, now+g.blockFor)
	}
	g.userFailed(a.user, a.key, now)
	g.delays.Add(1)
	return time.Duration(wait)
}

func (g *Guard) logEnded(ended bool, key netip.Prefix) {
	if ended {
		g.logUnblocked(key, "expired")
	}
}

// blocked reports a new block.
func (g *Guard) blocked(key netip.Prefix, failures int, until int64) {
	g.blocks.Add(1)
	t := g.wall(until)
	g.log.Warn("network blocked", "network", key.String(), "failures", failures, "until", t.UTC().Format(time.RFC3339))
	if g.o.OnBlock != nil {
		g.o.OnBlock(key, t)
	}
}

// trustedDone counts nothing, but a success still clears the user name's
// soft delay.
func (g *Guard) trustedDone(user string) func(proxy.LoginResult) time.Duration {
	return func(r proxy.LoginResult) time.Duration {
		if r == proxy.LoginOK {
			g.forgetUser(g.keys.user(user))
		}
		return 0
	}
}
