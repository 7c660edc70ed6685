package audit

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// guardAttempts is how many wrong logins --probe-guard sends at most.
const guardAttempts = 4

// probeGuards runs the guard probe once per protocol (IMAP, POP3), on the
// first port of that protocol where TLS worked, implicit TLS preferred:
// every wrong login counts against this address, so no more than needed.
func probeGuards(targets []*target) {
	chosen := map[string]*target{}
	for _, implicit := range []bool{true, false} {
		for _, t := range targets {
			p := t.kind.protocol()
			if (p == "imap" || p == "pop3") && chosen[p] == nil && t.kind.implicitTLS() == implicit && t.tlsOK {
				chosen[p] = t
			}
		}
	}
	var wg sync.WaitGroup
	for _, t := range chosen {
		wg.Go(t.probeGuard)
	}
	wg.Wait()
}

// probeGuard sends wrong logins over TLS, each on a new connection, and
// times the answers. It stops as soon as one is slow: the defence is
// there, and the server need not count more failures.
func (t *target) probeGuard() {
	d := t.dialogue()
	var times []string
	verdict := func(sev Severity, why, fix string) {
		t.add(IDGuard, sev, fmt.Sprintf("wrong logins over TLS as %q answered after %s: %s", t.user, strings.Join(times, ", "), why), fix)
	}
	for range guardAttempts {
		c, _, _, err := t.openTLS(d, t.tlsConfig())
		if err != nil && len(times) > 0 {
			verdict(OK, "then the server refused the connection ("+describe(err, t.step)+")", "")
			return
		}
		if err != nil {
			t.add(IDGuard, Warn, "not tried: "+describe(err, t.step), "")
			return
		}
		begin := time.Now()
		c.step = loginStep(t.step)
		t.sentLogin()
		line, err := d.login(t, c, t.user, randomHex(8))
		took := time.Since(begin)
		c.close()
		times = append(times, fmt.Sprintf("%.2fs", took.Seconds()))
		switch {
		case err != nil && isTimeout(err):
			verdict(OK, "the last got no answer within "+c.step.String()+": the server slows guessing down", "")
			return
		case err != nil:
			verdict(OK, "then the server closed the connection ("+describe(err, t.step)+")", "")
			return
		case took >= slowAnswer:
			verdict(OK, "the server slows guessing down ("+quote(line)+")", "")
			return
		}
	}
	verdict(Medium, "nothing slows a password guesser down",
		"make failures cost time (Dovecot: auth_failure_delay and its auth penalty; fail2ban), or put mailfront in front (its guard delays and blocks guessing networks)")
}
