package guard

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// FuzzGuard drives the guard with arbitrary sequences of connections,
// releases, handshakes, logins, verdicts and clock moves, on tiny tables.
// Whatever the sequence: the tables stay within their bound, no counter
// goes negative, trusted addresses are always admitted, and once every
// connection and login has ended and the clock has moved on, the guard
// forgets everything.
func FuzzGuard(f *testing.F) {
	f.Add([]byte{0, 1, 4, 1, 5, 0, 4, 1, 5, 0, 4, 1, 5, 0, 0, 1, 2, 0, 7, 200})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 3, 0, 3, 0, 3, 0, 2, 0, 2, 0, 2, 0})
	f.Add([]byte{4, 9, 4, 17, 4, 33, 5, 0, 5, 0, 6, 0, 7, 1, 4, 65, 6, 1, 1, 7, 2, 255})
	f.Fuzz(runOps)
}

// fuzzAddrs are the addresses FuzzGuard uses: some share a network, the
// last is trusted.
var fuzzAddrs = []netip.Addr{
	addr("192.0.2.1"), addr("192.0.2.2"), addr("::ffff:192.0.2.1"), addr("2001:db8::1"),
	addr("2001:db8::2"), addr("2001:db8:0:1::1"), addr("198.51.100.1"), addr("192.0.2.200"),
}

// runOps reads ops as pairs of an operation and its argument.
func runOps(t *testing.T, ops []byte) {
	addrs := fuzzAddrs
	clk := newClock()
	g, err := New(Options{
		Now:        clk.Now,
		After:      func(time.Duration) <-chan time.Time { c := make(chan time.Time, 1); c <- clk.Now(); return c },
		MaxEntries: 4, BlockFailures: 3, UserFailures: 2, ConnsPerNetwork: 2, HandshakesPerMinute: 2,
		LoginsInFlight: 2, Trusted: pfx("192.0.2.200/32"),
	})
	if err != nil {
		t.Fatal(err)
	}
	g.SetImplicit("imaps", true)
	var releases []func()
	var dones []func(proxy.LoginResult) time.Duration
	for i := 0; i+1 < len(ops); i += 2 {
		arg := int(ops[i+1])
		a := addrs[arg%len(addrs)]
		switch ops[i] % 8 {
		case 0, 1:
			v, _, release := g.Connect([]string{"imaps", "imap"}[ops[i]%2], a)
			if v == proxy.Admit {
				releases = append(releases, release)
			} else if a == addrs[7] {
				t.Fatalf("trusted %s: %v", a, v)
			}
		case 2:
			if len(releases) > 0 {
				releases[arg%len(releases)]() // maybe again: must count once
			}
		case 3:
			if !g.Handshake(a) && a == addrs[7] {
				t.Fatalf("trusted %s: handshake refused", a)
			}
		case 4:
			done, err := g.Login(t.Context(), a, []string{"alice", "Alice", "bob"}[arg>>3%3], string(rune('a'+arg>>5)))
			if err == nil {
				dones = append(dones, done)
			} else if a == addrs[7] {
				t.Fatalf("trusted %s: %v", a, err)
			}
		case 5, 6:
			if len(dones) > 0 {
				d := dones[arg%len(dones)] // maybe again: must count once
				r := proxy.LoginFailed
				if ops[i]%8 == 6 {
					r = []proxy.LoginResult{proxy.LoginOK, proxy.LoginBackendError}[arg%2]
				}
				if p := d(r); p < 0 || p > time.Hour {
					t.Fatalf("penalty %v", p)
				}
			}
		case 7:
			clk.Advance(time.Duration(arg) * 7 * time.Second)
		}
		checkInvariants(t, g)
	}
	for _, r := range releases {
		r()
	}
	for _, d := range dones {
		d(proxy.LoginBackendError)
	}
	checkInvariants(t, g)
	clk.Advance(1000 * time.Hour)
	if st := g.Stats(); st.Tables.Networks != 0 || st.Tables.Users != 0 || st.Blocked != 0 {
		t.Fatalf("everything over, yet %+v", st)
	}
}

func checkInvariants(t *testing.T, g *Guard) {
	t.Helper()
	if n, u, c := g.nets.len(), g.users.len(), g.nets.capacity(); n > c || u > c {
		t.Fatalf("%d networks, %d users: over the bound %d", n, u, c)
	}
	for i := range g.nets.shards {
		s := &g.nets.shards[i]
		s.mu.Lock()
		for e := s.head; e != nil; e = e.next {
			n := &e.val
			slotsOver := g.o.ParallelLogins != Unlimited && int(n.atBackend) > g.o.ParallelLogins
			if n.conns < 0 || n.inflight < 0 || n.atBackend < 0 || n.atBackend > n.inflight || slotsOver ||
				g.o.ConnsPerNetwork != Unlimited && int(n.conns) > g.o.ConnsPerNetwork {
				s.mu.Unlock()
				t.Fatalf("%s: %d connections, %d logins in flight, %d at the backend", e.key, n.conns, n.inflight, n.atBackend)
			}
		}
		s.mu.Unlock()
	}
}
