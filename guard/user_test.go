package guard

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// netN is the N-th of many distinct IPv4 networks.
func netN(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

// TestUserSoftDelay: a user name failing from UserFailures networks gets a
// soft delay on every login, from any network, growing with its failures
// up to UserMaxDelay; it is never refused, a success resets it, and case
// does not matter.
func TestUserSoftDelay(t *testing.T) {
	e := newEnv(t, Options{UserFailures: 3, UserMaxDelay: 3 * time.Second, BlockFailures: Unlimited})
	const sec = time.Second
	// userWait is the soft delay seen by a login from a fresh network,
	// which has no penalty of its own.
	fresh := 1000
	userWait := func(user string) time.Duration {
		t.Helper()
		fresh++
		done, waited, err := e.login(netN(fresh), user, "probe")
		if err != nil {
			t.Fatalf("login for %s: %v, want no refusal", user, err)
		}
		done(proxy.LoginBackendError) // counts nothing
		return waited
	}
	wants := []time.Duration{0, 0, sec, 2 * sec, 3 * sec, 3 * sec} // after 1, 2, ... failures
	for i, want := range wants {
		e.fail(netN(i), "alice", "guess")
		if got := userWait("alice"); got != want {
			t.Errorf("after %d failures from %d networks: soft delay %v, want %v", i+1, i+1, got, want)
		}
	}
	for i := range 50 {
		e.fail(netN(100+i), "alice", "guess")
	}
	if got := userWait("ALICE"); got != 3*sec {
		t.Errorf("after 56 failures, another case: soft delay %v, want the cap 3s", got)
	}
	if got := userWait("bob"); got != 0 {
		t.Errorf("another user: soft delay %v, want 0", got)
	}
	if got := e.g.Stats().DelayedUsers; got != 1 {
		t.Errorf("Stats().DelayedUsers = %d, want 1", got)
	}
	if _, p := e.try(netN(fresh+1), "Alice", "right", proxy.LoginOK); p != 0 {
		t.Errorf("success: penalty %v, want 0", p)
	}
	if got := userWait("alice"); got != 0 {
		t.Errorf("after a success: soft delay %v, want 0", got)
	}
}

// TestUserSoftDelayNeedsNetworks: failures from one network, however
// many, or failures older than the window do not delay the user.
func TestUserSoftDelayNeedsNetworks(t *testing.T) {
	e := newEnv(t, Options{UserFailures: 3, BlockFailures: Unlimited})
	for i := range 10 {
		e.fail("192.0.2.1", "alice", fmt.Sprint("guess", i))
	}
	if _, waited, _ := e.login("198.51.100.1", "alice", "x"); waited != 0 {
		t.Errorf("ten failures from one network: soft delay %v, want 0", waited)
	}
	for i := range 3 {
		e.fail(netN(i), "alice", "guess")
	}
	if _, waited, _ := e.login("198.51.100.2", "alice", "x"); waited == 0 {
		t.Errorf("three networks: no soft delay, want one")
	}
	e.clk.Advance(DefaultBlockWindow)
	if _, waited, _ := e.login("198.51.100.3", "alice", "x"); waited != 0 {
		t.Errorf("a window later: soft delay %v, want 0", waited)
	}
}

// TestUserSoftDelayTrustedSuccess: a success through a trusted network
// (webmail) also clears the user's soft delay.
func TestUserSoftDelayTrustedSuccess(t *testing.T) {
	e := newEnv(t, Options{UserFailures: 2, Trusted: pfx("203.0.113.0/24")})
	e.fail(netN(1), "alice", "a")
	e.fail(netN(2), "alice", "b")
	if _, waited, _ := e.login(netN(3), "alice", "x"); waited == 0 {
		t.Fatal("no soft delay, want one")
	}
	if _, p := e.try("203.0.113.5", "alice", "right", proxy.LoginOK); p != 0 {
		t.Fatalf("trusted success: penalty %v, want 0", p)
	}
	if _, waited, _ := e.login(netN(4), "alice", "x"); waited != 0 {
		t.Errorf("after a trusted success: soft delay %v, want 0", waited)
	}
}
