package guard

import (
	"context"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/proxy"
)

// hang is how long a test waits for something that should happen at once
// before failing (a guard against hanging, not a synchronisation).
const hang = 10 * time.Second

// fakeClock is Options.Now and Options.After under the test's control.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	added  chan struct{} // a token per timer made
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), added: make(chan struct{}, 1<<16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		return t.c
	}
	c.timers = append(c.timers, t)
	c.added <- struct{}{}
	return t.c
}

// Advance moves the clock on, firing the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if t.at.After(c.now) {
			return false
		}
		t.c <- c.now
		return true
	})
}

// soonest is the wait until the earliest pending timer.
func (c *fakeClock) soonest() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := time.Duration(math.MaxInt64)
	for _, t := range c.timers {
		d = min(d, t.at.Sub(c.now))
	}
	return d
}

// waitTimers returns once n timers are pending.
func (c *fakeClock) waitTimers(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(hang)
	for {
		c.mu.Lock()
		got := len(c.timers)
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-c.added:
		case <-deadline:
			t.Fatalf("got %d pending timers, want %d", got, n)
		}
	}
}

// env is a guard on a fake clock.
type env struct {
	t    *testing.T
	g    *Guard
	clk  *fakeClock
	logs *logtest.Recorder
}

// newEnv makes a guard with opts on a fake clock, logging to e.logs unless
// o.Log is set.
func newEnv(t *testing.T, o Options) *env {
	t.Helper()
	e := &env{t: t, clk: newClock(), logs: logtest.New(t, slog.LevelDebug)}
	o.Now, o.After = e.clk.Now, e.clk.After
	if o.Log == nil {
		o.Log = e.logs.Logger()
	}
	g, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.g = g
	return e
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// login asks for a login from a, moving the fake clock on by whatever the
// guard waits for, and returns done and the time waited.
func (e *env) login(a, user, password string) (func(proxy.LoginResult) time.Duration, time.Duration, error) {
	e.t.Helper()
	type result struct {
		done func(proxy.LoginResult) time.Duration
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		done, err := e.g.Login(context.Background(), addr(a), user, password)
		ch <- result{done, err}
	}()
	var waited time.Duration
	deadline := time.After(hang)
	for {
		select {
		case r := <-ch:
			return r.done, waited, r.err
		case <-e.clk.added:
			d := e.clk.soonest()
			if d == math.MaxInt64 { // a stale token: no timer pending
				continue
			}
			waited += d
			e.clk.Advance(d)
		case <-deadline:
			e.t.Fatalf("login from %s hung", a)
		}
	}
}

// try is a whole login attempt with the backend's verdict r: the time
// Login waited and the penalty done returned.
func (e *env) try(a, user, password string, r proxy.LoginResult) (waited, penalty time.Duration) {
	e.t.Helper()
	done, waited, err := e.login(a, user, password)
	if err != nil {
		e.t.Fatalf("login from %s: %v", a, err)
	}
	return waited, done(r)
}

// fail is a failed login whose penalty the client waits out.
func (e *env) fail(a, user, password string) time.Duration {
	e.t.Helper()
	_, p := e.try(a, user, password, proxy.LoginFailed)
	e.clk.Advance(p)
	return p
}

func (e *env) connect(listener, a string) (proxy.Verdict, string) {
	e.t.Helper()
	v, reason, release := e.g.Connect(listener, addr(a))
	release()
	return v, reason
}

// near reports whether got is within 0.1% (and a microsecond) of want.
func near(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff <= want/1000+time.Microsecond
}

// pfx parses prefixes.
func pfx(list ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range list {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}
