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
// the backend. Otherwise it waits for the attempt's turn (see take) and
// returns done, which records the backend's verdict and returns the
// penalty the client waits before its answer. Trusted networks never wait
// and are never penalised.
func (g *Guard) Login(ctx context.Context, addr netip.Addr, user, password string) (func(proxy.LoginResult) time.Duration, error) {
	addr = clean(addr)
	if g.trusted(addr) {
		return g.trustedDone(user), nil
	}
	a := &attempt{g: g, key: g.network(addr), user: g.keys.user(user), cred: g.keys.credential(user, password)}
	now := g.tick()
	if err := a.enter(now); err != nil {
		return nil, err
	}
	if err := a.take(ctx, now+g.userDelay(a.user, now)); err != nil {
		return nil, err
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

	atBackend bool // it has its turn: one of the network's ParallelLogins (shard lock)
}

// enter checks the block and the in-flight cap and counts the attempt in
// flight.
func (a *attempt) enter(now int64) error {
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
	s.mu.Unlock()
	if ended {
		g.logUnblocked(a.key, "expired")
	}
	if err != nil {
		g.refused.Add(1)
		return err
	}
	return nil
}

// take waits for the attempt's turn: until the network's next attempt time
// (its penalty) and notBefore (the user name's soft delay) have passed and
// fewer than ParallelLogins of the network's logins are at the backend. So
// parallel attempts do not all reach the backend before the first
// failures set a penalty: the ones past the slots wait, and then wait out
// that penalty too. A block while it waits refuses the attempt; shutdown
// (ctx) ends the wait.
func (a *attempt) take(ctx context.Context, notBefore int64) error {
	g := a.g
	s := a.e.shard
	waited := false
	var until int64 // what the last timer waited for: once it fired, that time has come
	for {
		now := max(g.tick(), until)
		s.mu.Lock()
		n := &a.e.val
		if n.isBlocked(now) {
			a.out(n)
			s.mu.Unlock()
			g.refused.Add(1)
			return proxy.ErrLoginRefused
		}
		wait := max(n.next, notBefore) - now
		var turn <-chan struct{}
		if wait <= 0 {
			if g.o.ParallelLogins == Unlimited || int(n.atBackend) < g.o.ParallelLogins {
				n.atBackend++
				a.atBackend = true
				s.mu.Unlock()
				return nil
			}
			if n.turn == nil {
				n.turn = make(chan struct{})
			}
			turn = n.turn
		}
		s.mu.Unlock()
		if !waited {
			waited = true
			g.waits.Add(1)
		}
		var timer <-chan time.Time
		if wait > 0 {
			timer, until = g.o.After(time.Duration(wait)), now+wait
		}
		select {
		case <-turn:
		case <-timer:
		case <-ctx.Done():
			a.leave()
			return fmt.Errorf("guard: wait before login: %w", ctx.Err())
		}
	}
}

// out takes the attempt out of flight and gives back its backend slot,
// waking the logins waiting for one. The shard's lock is held.
func (a *attempt) out(n *network) {
	n.inflight--
	if a.atBackend {
		a.atBackend = false
		n.atBackend--
		if n.turn != nil {
			close(n.turn)
			n.turn = nil
		}
	}
}

// leave takes the attempt out of flight, with nothing recorded.
func (a *attempt) leave() {
	s := a.e.shard
	s.mu.Lock()
	a.out(&a.e.val)
	s.mu.Unlock()
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
	a.out(&a.e.val)
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
	a.out(&a.e.val)
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
