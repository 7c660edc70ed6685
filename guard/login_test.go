package guard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// TestLoginsInFlight: a network's logins waiting or at the backend are
// capped; beyond it, Login refuses at once. done releases, once.
func TestLoginsInFlight(t *testing.T) {
	e := newEnv(t, Options{LoginsInFlight: 2})
	const net = "192.0.2.1"
	a, _, err := e.login(net, "alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := e.login(net, "bob", "pw")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.Login(t.Context(), addr(net), "carol", "pw"); !errors.Is(err, proxy.ErrLoginRefused) {
		t.Fatalf("third login in flight: %v, want ErrLoginRefused", err)
	}
	if _, _, err := e.login("192.0.2.2", "carol", "pw"); err != nil {
		t.Fatalf("another network: %v", err)
	}
	a(proxy.LoginOK)
	a(proxy.LoginOK) // done again gives nothing more back
	if p := a(proxy.LoginFailed); p != 0 {
		t.Errorf("done called again: penalty %v, want 0", p)
	}
	c, _, err := e.login(net, "carol", "pw")
	if err != nil {
		t.Fatalf("after one done: %v", err)
	}
	if _, err := e.g.Login(t.Context(), addr(net), "dave", "pw"); !errors.Is(err, proxy.ErrLoginRefused) {
		t.Fatalf("after a double done: %v, want ErrLoginRefused", err)
	}
	b(proxy.LoginBackendError)
	c(proxy.LoginOK)
	if st := e.g.Stats(); st.LoginsRefused != 2 {
		t.Errorf("Stats().LoginsRefused = %d, want 2", st.LoginsRefused)
	}
}

// TestLoginCancel: Login gives up waiting when ctx ends, and the attempt
// no longer counts in flight.
func TestLoginCancel(t *testing.T) {
	e := newEnv(t, Options{LoginsInFlight: 1})
	const net = "192.0.2.1"
	if _, p := e.try(net, "alice", "wrong", proxy.LoginFailed); p != 2*time.Second {
		t.Fatalf("penalty %v, want 2s", p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.g.Login(ctx, addr(net), "alice", "again")
		errc <- err
	}()
	e.clk.waitTimers(t, 1) // Login is waiting for the next attempt time
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: got %v, want context.Canceled", err)
	}
	done, waited, err := e.login(net, "alice", "right")
	if err != nil {
		t.Fatalf("after the cancelled login: %v (still counted in flight?)", err)
	}
	if waited != 2*time.Second {
		t.Errorf("waited %v, want the 2s left", waited)
	}
	done(proxy.LoginOK)
}

// TestConcurrentLogins: parallel failures from one network share one
// budget: their penalties are staggered one after the other, and later
// attempts queue behind them; another network is unaffected. (All twenty
// are let through at once here, ParallelLogins unlimited, to see the
// budget alone; TestParallelLogins is about the slots.)
func TestConcurrentLogins(t *testing.T) {
	const n = 20
	e := newEnv(t, Options{LoginsInFlight: Unlimited, ParallelLogins: Unlimited, BlockFailures: Unlimited})
	const net = "2001:db8:1:2::"
	dones := make([]func(proxy.LoginResult) time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			done, err := e.g.Login(t.Context(), addr(fmt.Sprint(net, i+1)), "alice", fmt.Sprint("guess", i))
			if err != nil {
				t.Errorf("login %d: %v", i, err)
				return
			}
			dones[i] = done
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	waits := make([]time.Duration, n)
	for i := range n {
		wg.Go(func() { waits[i] = dones[i](proxy.LoginFailed) })
	}
	_, other := e.try("2001:db8:1:3::1", "alice", "guess", proxy.LoginFailed)
	wg.Wait()

	slices.Sort(waits)
	var want []time.Duration
	var sum time.Duration
	for i := range n {
		sum += min(DefaultBaseDelay<<i, DefaultMaxDelay) // 2s, 4s, 8s, 15s, 15s...
		want = append(want, sum)
	}
	if !slices.Equal(waits, want) {
		t.Errorf("penalties %v, want %v", waits, want)
	}
	if other != DefaultBaseDelay {
		t.Errorf("another network's penalty %v, want %v", other, DefaultBaseDelay)
	}
	if _, waited, _ := e.login(net+"99", "alice", "later"); waited != sum {
		t.Errorf("a later login waited %v, want %v (behind all twenty)", waited, sum)
	}
}

// TestConcurrentMix: connections, handshakes, logins, verdicts, Stats and
// Snapshot from many goroutines on small tables (run with -race): the
// counts balance, the bound holds, and once all is over the guard forgets.
func TestConcurrentMix(t *testing.T) {
	clk := newClock()
	g, err := New(Options{
		Now:        clk.Now,
		After:      func(time.Duration) <-chan time.Time { c := make(chan time.Time, 1); c <- clk.Now(); return c },
		MaxEntries: 64, BlockFailures: 5, UserFailures: 3, LoginsInFlight: 3, ConnsPerNetwork: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	g.SetImplicit("imaps", true)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				a := sprayAddr(w*7 + i%97)
				_, _, release := g.Connect([]string{"imaps", "imap"}[i%2], a)
				g.Handshake(a)
				done, err := g.Login(context.Background(), a, fmt.Sprint("user", i%5), fmt.Sprint("pw", i%11))
				if err == nil {
					done([]proxy.LoginResult{proxy.LoginFailed, proxy.LoginOK, proxy.LoginBackendError}[i%3])
					done(proxy.LoginFailed) // ignored
				}
				release()
				release() // ignored
				if i%100 == 0 {
					clk.Advance(time.Second)
				}
				if i%500 == 0 {
					g.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	checkInvariants(t, g)
	for i := range g.nets.shards {
		for e := g.nets.shards[i].head; e != nil; e = e.next {
			if e.val.conns != 0 || e.val.inflight != 0 {
				t.Errorf("%s: %d connections, %d logins in flight left, want 0", e.key, e.val.conns, e.val.inflight)
			}
		}
	}
	clk.Advance(1000 * time.Hour)
	if st := g.Stats(); st.Tables.Networks != 0 || st.Tables.Users != 0 {
		t.Errorf("all over, yet %+v", st)
	}
}

// TestParallelLogins: at most ParallelLogins of a network's logins are at
// the backend at once. The others wait for a slot; a failure frees one but
// sets the network's penalty, which the waiting logins then wait out
// before any reaches the backend, so parallel connections buy an attacker
// at most ParallelLogins unpenalised guesses; a success frees one at once.
func TestParallelLogins(t *testing.T) {
	e := newEnv(t, Options{ParallelLogins: 2, LoginsInFlight: Unlimited, BlockFailures: Unlimited})
	results := make(chan func(proxy.LoginResult) time.Duration, 5)
	for i := range 5 {
		go func() {
			done, err := e.g.Login(t.Context(), addr("192.0.2.7"), "alice", fmt.Sprint("guess", i))
			if err != nil {
				t.Errorf("login %d: %v", i, err)
			}
			results <- done
		}()
	}
	next := func() func(proxy.LoginResult) time.Duration {
		t.Helper()
		select {
		case done := <-results:
			return done
		case <-time.After(hang):
			t.Fatal("no login had its turn")
			return nil
		}
	}
	none := func(when string) {
		t.Helper()
		select {
		case <-results:
			t.Fatalf("%s: a login had its turn, want every slot taken", when)
		default:
		}
	}
	first, second := next(), next()
	if p := first(proxy.LoginFailed); p != DefaultBaseDelay {
		t.Fatalf("first failure's penalty %v, want %v", p, DefaultBaseDelay)
	}
	e.clk.waitTimers(t, 3) // the three others now wait out the penalty
	none("during the penalty")
	e.clk.Advance(DefaultBaseDelay)
	third := next()
	none("with the second and third at the backend")
	second(proxy.LoginOK)
	fourth := next()
	none("with the third and fourth at the backend")
	third(proxy.LoginBackendError)
	fifth := next()
	fourth(proxy.LoginOK)
	fifth(proxy.LoginOK)
	checkInvariants(t, e.g)
}
