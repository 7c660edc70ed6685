//go:build integration

package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The guard's settings in TestGuard: small delays so that a queue of 20
// failures drains in seconds, a block right after them.
const (
	guardBase     = 250 * time.Millisecond
	guardMax      = 500 * time.Millisecond
	guardParallel = 20 // wrong passwords sent together from 127.0.0.1
	guardBlockAt  = guardParallel + 1
)

// guardYAML is TestGuard's guard: every default but the delays, the
// block threshold, logins_in_flight and parallel_logins, set here because
// the test is about the answers to 20 parallel logins that all reach the
// backend (by default only 4 would at once, the others waiting out the
// first ones' penalty: TestHydra runs the default guard).
var guardYAML = fmt.Sprintf(`guard:
  base_delay: %v
  max_delay: %v
  logins_in_flight: %d
  parallel_logins: %d
  block: {failures: %d, window: 10m, duration: 15m}
`, guardBase, guardMax, guardParallel+5, guardParallel+5, guardBlockAt)

// answer is when one login's reply arrived, from the test's start.
type answer struct {
	at    time.Duration
	reply string
	err   error
}

// TestGuard drives the guard through the real binary, from two client
// addresses on lo: 127.0.0.1 (the attacker) and 127.0.0.2 (a user on
// another network; neither is trusted).
//
//   - 20 wrong passwords sent together from 127.0.0.1 on 20 connections
//     share one failure budget: Dovecot refuses them all at once, and
//     mailfront answers them one penalty apart (250 ms, then 500 ms
//     each), not all together.
//   - While that queue drains, the right password from 127.0.0.2 logs in
//     at once (before the queue's last answer), and the right password
//     from 127.0.0.1 waits until the network's next attempt time (read
//     from the admin endpoint's /guard) and then logs in.
//   - One more failure blocks 127.0.0.1: its next implicit TLS connection
//     is closed before the handshake (no ServerHello; mailfront logs a
//     refused connection, not a tls-failed session), the STARTTLS
//     listeners say BYE [UNAVAILABLE] / -ERR [SYS/TEMP] in plaintext,
//     /guard lists the block, and 127.0.0.2 still logs in.
func TestGuard(t *testing.T) {
	needGuard(t)
	dv := startDovecotWith(t, dovecotOptions{NoAuthPenalty: true})
	adminYAML, admin := adminSection(t)
	mf := startFront(t, dv, frontSpec{yaml: guardYAML + adminYAML})
	waitAdmin(t, mf, admin)

	// All 20 connections are ready (greeted over TLS) before any LOGIN,
	// so the logins reach the guard together.
	conns := make([]*rawClient, guardParallel)
	for i := range conns {
		rc, _, err := dialTLS(mf.front, "127.0.0.1", mf.imaps, clientTimeout)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(rc.close)
		conns[i] = rc
	}
	start := time.Now()
	answers := make([]answer, guardParallel)
	first := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i, rc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Distinct passwords: the guard counts a repeated one once (a
			// mail app retrying a stale password).
			reply, err := rc.imapLogin(testUser, fmt.Sprintf("%s %02d", wrongPassword, i))
			answers[i] = answer{at: time.Since(start), reply: reply, err: err}
			once.Do(func() { close(first) })
		}()
	}

	// Dovecot refuses the 20 in batches: it flushes delayed failures every
	// half second, so they may straddle a flush. Once the guard has
	// charged all 20 (its delays_applied counter says so), the queue is
	// whole and 127.0.0.1 is penalised until its next attempt time, about
	// 19 penalties ahead, which the admin endpoint shows: both
	// right-password logins start now. (Read after the first answer
	// alone, a first batch of one failure leaves no next attempt ahead:
	// that answer is sent at it.)
	<-first
	next := guardQueued(t, admin, "127.0.0.1/32", guardParallel)
	var other, same answer
	var lw sync.WaitGroup
	lw.Add(2)
	go func() {
		defer lw.Done()
		other = rightIMAPS(mf, "127.0.0.2", start)
	}()
	go func() {
		defer lw.Done()
		same = rightIMAPS(mf, "127.0.0.1", start)
	}()
	wg.Wait()
	lw.Wait()

	var at []time.Duration
	for i, a := range answers {
		if a.err != nil || !strings.HasPrefix(a.reply, "a1 NO [AUTHENTICATIONFAILED]") {
			t.Errorf("wrong password %d: got %q (%v), want a1 NO [AUTHENTICATIONFAILED]", i, a.reply, a.err)
		}
		at = append(at, a.at)
	}
	slices.Sort(at)
	last := at[len(at)-1]
	// Without a shared budget each connection would wait one penalty
	// and all 20 answers would come within about one of them; shared,
	// they come one penalty apart: the first after 250 ms, the others
	// 500 ms after one another.
	want := time.Duration(guardParallel-1) * guardMax
	spread := last - at[0]
	t.Logf("%d wrong passwords sent together from 127.0.0.1: answers from %v to %v (spread %v, want about %v); right password from 127.0.0.2 done at %v, from 127.0.0.1 at %v (its next attempt time: %v)",
		guardParallel, at[0].Round(time.Millisecond), last.Round(time.Millisecond), spread.Round(time.Millisecond), want,
		other.at.Round(time.Millisecond), same.at.Round(time.Millisecond), next.Sub(start).Round(time.Millisecond))
	if spread < want*8/10 {
		t.Errorf("answers to %d parallel failures: spread over %v, want at least %v (one shared budget); answers at %v", guardParallel, spread, want*8/10, at)
	}
	if other.err != nil || !strings.HasPrefix(other.reply, "a1 OK") {
		t.Errorf("right password from 127.0.0.2 during the queue: got %q (%v), want a1 OK", other.reply, other.err)
	}
	if other.at >= last {
		t.Errorf("right password from 127.0.0.2: done at %v, want before the queue of 127.0.0.1 drains (%v)", other.at, last)
	}
	if same.err != nil || !strings.HasPrefix(same.reply, "a1 OK") {
		t.Errorf("right password from the penalised 127.0.0.1: got %q (%v), want a1 OK after its delay", same.reply, same.err)
	}
	if done := start.Add(same.at); done.Before(next) {
		t.Errorf("right password from the penalised 127.0.0.1: done at %v, want after its next attempt time %v", done.Format(time.StampMilli), next.Format(time.StampMilli))
	}

	// One more failure, and 127.0.0.1 is blocked.
	mark := mf.log.size()
	if got := wrongIMAPS(mf, mf.imaps, testUser, wrongPassword+" last"); got != "" {
		t.Error(got)
	}
	mf.log.wait(t, mark, regexp.MustCompile(`level=WARN msg="network blocked" (component=guard )?network=127\.0\.0\.1/32 failures=`+fmt.Sprint(guardBlockAt)+` `), mf.exited)

	t.Run("blocked before TLS", func(t *testing.T) {
		mark := mf.log.size()
		local := refusedBeforeHandshake(t, mf, "127.0.0.1", mf.imaps)
		mf.log.wait(t, mark, regexp.MustCompile(`msg="connection refused" listener=`+lnIMAPS+` remote=`+regexp.QuoteMeta(local)+` reason=blocked`), mf.exited)
		if got := lines(mf.log.since(mark), regexp.MustCompile(`msg="session end" .*remote=`+regexp.QuoteMeta(local)+` `)); len(got) != 0 {
			t.Errorf("refused connection %s: got %q, want no session (no handshake, no tls-failed)", local, got)
		}
	})
	t.Run("blocked on STARTTLS listeners", func(t *testing.T) {
		for _, tt := range []struct{ addr, want string }{{mf.imap, "* BYE [UNAVAILABLE]"}, {mf.pop3, "-ERR [SYS/TEMP]"}} {
			w := dialWire(t, tt.addr)
			if got := w.line(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("%s from blocked 127.0.0.1: got %q, want %q", tt.addr, got, tt.want)
			}
		}
	})
	t.Run("admin lists the block", func(t *testing.T) {
		g := guardGet(t, admin)
		if len(g.Blocked) != 1 || g.Blocked[0].Network != "127.0.0.1/32" || g.Blocked[0].Failures != guardBlockAt {
			t.Errorf("GET /guard: blocked %+v, want 127.0.0.1/32 alone, with %d failures", g.Blocked, guardBlockAt)
		}
	})
	t.Run("other network still served", func(t *testing.T) {
		a := rightIMAPS(mf, "127.0.0.2", time.Now())
		if a.err != nil || !strings.HasPrefix(a.reply, "a1 OK") {
			t.Errorf("right password from 127.0.0.2 while 127.0.0.1 is blocked: got %q (%v), want a1 OK", a.reply, a.err)
		}
	})
}

// guardQueued waits until the guard has charged want failures and returns
// network's next attempt time then.
func guardQueued(t *testing.T, admin, network string, want uint64) time.Time {
	t.Helper()
	deadline := time.Now().Add(logTimeout)
	for {
		g := guardGet(t, admin)
		if g.Stats.DelaysApplied >= want {
			for _, p := range g.Penalised {
				if p.Network == network && !p.NextAttempt.IsZero() {
					return p.NextAttempt
				}
			}
			t.Fatalf("GET /guard after %d failures: %s is not penalised, or has no next_attempt: %+v", g.Stats.DelaysApplied, network, g.Penalised)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /guard: %d failures charged after %v, want %d", g.Stats.DelaysApplied, logTimeout, want)
		}
		time.Sleep(pollEvery)
	}
}

// rightIMAPS logs in with the right password over implicit TLS from local
// and reports when it was done, from start.
func rightIMAPS(mf *customFront, local string, start time.Time) answer {
	rc, _, err := dialTLS(mf.front, local, mf.imaps, clientTimeout)
	if err != nil {
		return answer{at: time.Since(start), err: err}
	}
	defer rc.close()
	reply, err := rc.imapLogin(testUser, testPassword)
	return answer{at: time.Since(start), reply: reply, err: err}
}

// refusedBeforeHandshake connects from local to an implicit TLS listener
// and checks that the connection is closed without a ServerHello: the
// client's handshake ends in EOF or a reset, having read not one byte. It
// returns the client's address, to find in mailfront's log.
func refusedBeforeHandshake(t *testing.T, mf *customFront, local, addr string) string {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		// Closed before accept completed is a refusal too, but the
		// listener accepts first and closes at once.
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	defer raw.Close()
	localAddr := raw.LocalAddr().String()
	counted := &countingConn{Conn: raw}
	tc := tlsClient(mf, counted)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	err = tc.Handshake()
	if err == nil {
		t.Fatalf("TLS handshake from blocked %s: succeeded, want the connection closed before it", local)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("TLS handshake from blocked %s: got %v, want EOF or connection reset", local, err)
	}
	if counted.read != 0 {
		t.Errorf("TLS handshake from blocked %s: read %d bytes from the server, want none (no ServerHello)", local, counted.read)
	}
	return localAddr
}

// countingConn counts the bytes read from the server.
type countingConn struct {
	net.Conn
	read int
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read += n
	return n, err
}
