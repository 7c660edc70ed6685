package guard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// TestBlock: BlockFailures failures within BlockWindow block the network
// for BlockDuration: Connect refuses, Login refuses at once; then both
// admit again. The start and end are logged, OnBlock is told.
func TestBlock(t *testing.T) {
	var mu sync.Mutex
	var hooked []string
	e := newEnv(t, Options{BlockFailures: 3, OnBlock: func(p netip.Prefix, until time.Time) {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, p.String()+" "+until.Format(time.RFC3339))
	}})
	const net = "192.0.2.7"
	var blockedAt time.Time
	for i := range 3 {
		if v, reason := e.connect("imap", net); v != proxy.Admit {
			t.Fatalf("before failure %d: Connect %v %q, want Admit", i+1, v, reason)
		}
		blockedAt = e.clk.Now() // the client waited out its penalty: no wait in Login
		e.fail(net, "alice", fmt.Sprint("guess", i))
	}
	until := blockedAt.Add(DefaultBlockDuration)

	if v, reason := e.connect("imap", net); v != proxy.Refuse || reason != ReasonBlocked {
		t.Errorf("blocked: Connect %v %q, want Refuse %q", v, reason, ReasonBlocked)
	}
	if _, err := e.g.Login(t.Context(), addr(net), "alice", "right"); !errors.Is(err, proxy.ErrLoginRefused) {
		t.Errorf("blocked: Login error %v, want ErrLoginRefused", err)
	}
	if v, _ := e.connect("imap", "192.0.2.8"); v != proxy.Admit {
		t.Errorf("another network: Connect %v, want Admit", v)
	}
	if got := e.g.Stats().Blocked; got != 1 {
		t.Errorf("Stats().Blocked = %d, want 1", got)
	}
	wantLog := fmt.Sprintf(`level=WARN msg="network blocked" network=192.0.2.7/32 failures=3 until=%s`, until.Format(time.RFC3339))
	if !strings.Contains(e.logs.String(), wantLog) {
		t.Errorf("logs lack %q:\n%s", wantLog, e.logs)
	}
	mu.Lock()
	if want := []string{"192.0.2.7/32 " + until.Format(time.RFC3339)}; fmt.Sprint(hooked) != fmt.Sprint(want) {
		t.Errorf("OnBlock got %q, want %q", hooked, want)
	}
	mu.Unlock()

	e.clk.Advance(until.Sub(e.clk.Now()) - time.Second) // one second before it ends
	if v, reason := e.connect("imap", net); v != proxy.Refuse {
		t.Errorf("a second before the end: Connect %v %q, want Refuse", v, reason)
	}
	if strings.Contains(e.logs.String(), "network unblocked") {
		t.Errorf("unblocked too early:\n%s", e.logs)
	}
	e.clk.Advance(time.Second)
	if v, reason := e.connect("imap", net); v != proxy.Admit {
		t.Errorf("after the block: Connect %v %q, want Admit", v, reason)
	}
	if _, _, err := e.login(net, "alice", "right"); err != nil {
		t.Errorf("after the block: Login: %v", err)
	}
	if got := strings.Count(e.logs.String(), `level=INFO msg="network unblocked" network=192.0.2.7/32`); got != 1 {
		t.Errorf("logged the end %d times, want once:\n%s", got, e.logs)
	}
	if got := e.g.Stats().Blocked; got != 0 {
		t.Errorf("Stats().Blocked = %d, want 0", got)
	}
}

// TestBlockWindow: only failures within BlockWindow count, and a block
// starts the count afresh.
func TestBlockWindow(t *testing.T) {
	cases := []struct {
		name    string
		gaps    []time.Duration // before each failure after the first
		blocked bool
	}{
		{"three in a minute", []time.Duration{20 * time.Second, 20 * time.Second}, true},
		{"three within the window exactly", []time.Duration{30 * time.Second, 30 * time.Second}, true},
		{"the first has left the window", []time.Duration{40 * time.Second, 40 * time.Second}, false},
		{"spread out", []time.Duration{time.Hour, time.Hour, time.Hour, time.Hour}, false},
		{"two slow then three fast", []time.Duration{time.Hour, time.Hour, 10 * time.Second, 10 * time.Second}, true},
		{"two slow then two fast", []time.Duration{time.Hour, time.Hour, 10 * time.Second}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, Options{BlockFailures: 3, BlockWindow: time.Minute, BaseDelay: time.Second, MaxDelay: time.Second})
			const net = "2001:db8::1"
			var at time.Time
			for i := range len(c.gaps) + 1 {
				if i > 0 {
					e.clk.Advance(at.Add(c.gaps[i-1]).Sub(e.clk.Now()))
				}
				at = e.clk.Now()
				_, p := e.try(net, "alice", fmt.Sprint("guess", i), proxy.LoginFailed)
				e.clk.Advance(min(p, c.gaps[min(i, len(c.gaps)-1)]))
			}
			v, _ := e.connect("imap", net)
			if got := v == proxy.Refuse; got != c.blocked {
				t.Errorf("blocked %v, want %v", got, c.blocked)
			}
		})
	}
}

// TestBlockAgain: after a block ends, it takes BlockFailures new failures
// to block the network again; Stats notices the end on its own.
func TestBlockAgain(t *testing.T) {
	e := newEnv(t, Options{BlockFailures: 2})
	const net = "192.0.2.1"
	e.fail(net, "alice", "a")
	e.fail(net, "alice", "b")
	e.clk.Advance(DefaultBlockDuration)
	if st := e.g.Stats(); st.Blocked != 0 || !strings.Contains(e.logs.String(), "network unblocked") {
		t.Fatalf("Stats after the block: Blocked %d, logs:\n%s", st.Blocked, e.logs)
	}
	e.fail(net, "alice", "c")
	if v, _ := e.connect("imap", net); v != proxy.Admit {
		t.Fatalf("one failure after the block: Connect %v, want Admit", v)
	}
	e.fail(net, "alice", "d")
	if v, _ := e.connect("imap", net); v != proxy.Refuse {
		t.Fatalf("two failures after the block: Connect %v, want Refuse", v)
	}
	if st := e.g.Stats(); st.Blocks != 2 {
		t.Errorf("Stats().Blocks = %d, want 2", st.Blocks)
	}
}

// TestBlockWhileWaiting: a login queued behind the network's penalties is
// refused when it wakes if the network was blocked meanwhile.
func TestBlockWhileWaiting(t *testing.T) {
	e := newEnv(t, Options{BlockFailures: 2, LoginsInFlight: Unlimited})
	const net = "192.0.2.1"
	first, _, err := e.login(net, "alice", "a")
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := e.login(net, "alice", "b")
	if err != nil {
		t.Fatal(err)
	}
	first(proxy.LoginFailed) // next attempt in 2s
	errc := make(chan error, 1)
	go func() {
		_, err := e.g.Login(t.Context(), addr(net), "alice", "c")
		errc <- err
	}()
	e.clk.waitTimers(t, 1)
	second(proxy.LoginFailed) // blocks the network
	e.clk.Advance(time.Minute)
	if err := <-errc; !errors.Is(err, proxy.ErrLoginRefused) {
		t.Errorf("woken after the block: got %v, want ErrLoginRefused", err)
	}
}
