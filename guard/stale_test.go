package guard

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// TestStalePassword: a mail app retrying the same stale password from one
// network is one mistake: the repeats get the current delay but neither
// raise the score nor count towards the block. A different password, or
// the same one for another user, is a new failure.
func TestStalePassword(t *testing.T) {
	e := newEnv(t, Options{HalfLife: 1000 * time.Hour, BlockFailures: 3})
	const net = "192.0.2.1"
	if p := e.fail(net, "alice", "old"); p != 2*time.Second {
		t.Fatalf("first failure: penalty %v, want 2s", p)
	}
	for i := range 30 {
		if p := e.fail(net, "alice", "old"); !near(p, 4*time.Second) {
			t.Fatalf("repeat %d: penalty %v, want the current delay 4s", i, p)
		}
	}
	if v, reason := e.connect("imap", net); v != proxy.Admit {
		t.Fatalf("after 30 repeats: Connect %v %q, want Admit", v, reason)
	}
	if p := e.fail(net, "bob", "old"); !near(p, 4*time.Second) {
		t.Fatalf("same password, other user: penalty %v, want 4s", p)
	}
	if p := e.fail(net, "alice", "older"); !near(p, 8*time.Second) {
		t.Fatalf("another password: penalty %v, want 8s", p)
	}
	if v, reason := e.connect("imap", net); v != proxy.Refuse || reason != ReasonBlocked {
		t.Fatalf("after three different credentials: Connect %v %q, want Refuse %q", v, reason, ReasonBlocked)
	}
}

// TestStaleRepeatsDoNotQueue: a repeat does not push the network's next
// attempt time, so it does not hold up the next login.
func TestStaleRepeatsDoNotQueue(t *testing.T) {
	e := newEnv(t, Options{HalfLife: 1000 * time.Hour})
	const net = "192.0.2.1"
	e.fail(net, "alice", "old") // the client waited out its 2s
	a, _, err := e.login(net, "alice", "old")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := e.login(net, "alice", "old")
	if err != nil {
		t.Fatal(err)
	}
	a(proxy.LoginFailed)
	b(proxy.LoginFailed)
	if _, waited, _ := e.login(net, "alice", "new"); waited != 0 {
		t.Errorf("after two repeats: Login waited %v, want 0", waited)
	}
}

// TestStaleMemoryIsBounded: a network remembers its last few failed
// credentials only, so an old one counts again.
func TestStaleMemoryIsBounded(t *testing.T) {
	e := newEnv(t, Options{HalfLife: 1000 * time.Hour, MaxDelay: time.Hour})
	const net = "192.0.2.1"
	for i := range recentCredentials + 1 {
		e.fail(net, "alice", fmt.Sprint("pw", i))
	}
	// score is now recentCredentials+1
	want := time.Duration(2<<(recentCredentials+1)) * time.Second
	if p := e.fail(net, "alice", "pw0"); !near(p, want) {
		t.Errorf("forgotten credential: penalty %v, want %v (a new failure)", p, want)
	}
	if p := e.fail(net, "alice", "pw0"); !near(p, 2*want) {
		t.Errorf("then repeated: penalty %v, want the current delay %v", p, 2*want)
	}
}
