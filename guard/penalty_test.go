package guard

import (
	"math"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// step is one login from 192.0.2.1, answered with result, advance after
// the previous one (0: as soon as the client has waited out its penalty).
type step struct {
	advance time.Duration
	result  proxy.LoginResult
	want    time.Duration // the penalty done returns
}

// base is the default penalty for a score.
func base(score float64) time.Duration {
	return time.Duration(float64(DefaultBaseDelay) * math.Exp2(score))
}

func fails(waits ...time.Duration) []step {
	var s []step
	for _, w := range waits {
		s = append(s, step{result: proxy.LoginFailed, want: w})
	}
	return s
}

// TestPenalty: a network's failures cost BaseDelay, doubling to MaxDelay,
// fading with HalfLife and with a success; backend errors cost nothing.
// The client waits out each penalty before its next attempt.
func TestPenalty(t *testing.T) {
	const sec = time.Second
	forever := 1000 * time.Hour
	cases := []struct {
		name  string
		opts  Options
		steps []step
	}{
		{"first failure gets the base delay", Options{}, fails(2 * sec)},
		{"failures double up to the cap", Options{HalfLife: forever}, fails(2*sec, 4*sec, 8*sec, 15*sec, 15*sec, 15*sec)},
		{"configured base and cap", Options{HalfLife: forever, BaseDelay: sec, MaxDelay: 3 * sec}, fails(sec, 2*sec, 3*sec, 3*sec)},
		{"score halves every half life", Options{}, []step{
			{0, proxy.LoginFailed, 2 * sec},
			{10 * time.Minute, proxy.LoginFailed, base(0.5)},
			{20 * time.Minute, proxy.LoginFailed, base(1.5 / 4)},
		}},
		{"a long quiet spell forgets", Options{}, []step{
			{0, proxy.LoginFailed, 2 * sec}, {time.Minute, proxy.LoginFailed, base(math.Exp2(-0.1))},
			{24 * time.Hour, proxy.LoginFailed, 2 * sec},
		}},
		{"a success halves the score", Options{HalfLife: forever}, []step{
			{0, proxy.LoginFailed, 2 * sec}, {0, proxy.LoginFailed, 4 * sec},
			{0, proxy.LoginOK, 0},
			{0, proxy.LoginFailed, 4 * sec}, // score 2 halved to 1
		}},
		{"backend errors count nothing", Options{HalfLife: forever}, []step{
			{0, proxy.LoginFailed, 2 * sec},
			{0, proxy.LoginBackendError, 0}, {0, proxy.LoginBackendError, 0},
			{0, proxy.LoginFailed, 4 * sec},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opts)
			var last time.Duration
			for i, s := range c.steps {
				if s.advance == 0 {
					s.advance = last
				}
				e.clk.Advance(s.advance)
				waited, got := e.try("192.0.2.1", "alice", "guess"+string(rune('a'+i)), s.result)
				if waited != 0 {
					t.Errorf("step %d: Login waited %v, want 0 (the client waited out the penalty)", i, waited)
				}
				if !near(got, s.want) {
					t.Errorf("step %d: penalty %v, want %v", i, got, s.want)
				}
				last = got
			}
		})
	}
}

// TestPenaltyQueues: a network's attempts wait for its next attempt time,
// so a client that does not wait out its penalty waits in Login instead;
// another network is not held up.
func TestPenaltyQueues(t *testing.T) {
	e := newEnv(t, Options{HalfLife: 1000 * time.Hour})
	if _, p := e.try("192.0.2.1", "alice", "a", proxy.LoginFailed); p != 2*time.Second {
		t.Fatalf("first penalty %v, want 2s", p)
	}
	waited, p := e.try("192.0.2.1", "alice", "b", proxy.LoginFailed)
	if waited != 2*time.Second || !near(p, 4*time.Second) {
		t.Errorf("second attempt at once: waited %v and penalty %v, want 2s and 4s", waited, p)
	}
	if waited, p := e.try("198.51.100.1", "alice", "c", proxy.LoginFailed); waited != 0 || p != 2*time.Second {
		t.Errorf("other network: waited %v and penalty %v, want 0 and 2s", waited, p)
	}
}
