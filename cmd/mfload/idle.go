package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// idleResult is what the idle mode measured.
type idleResult struct {
	sessions, failed           int
	setup                      time.Duration
	base, after, settled       memory // KiB
	settle                     time.Duration
	gcAfter, gcSettled         gcLine
	haveGCAfter, haveGCSettled bool
	alive, checked             int // sampled sessions still relayed at the end
	firstErr                   error
	curves                     string
	trafficKB                  int64
}

func (r idleResult) perSession(m memory) float64 {
	if r.sessions == 0 {
		return 0
	}
	return float64(m.rss-r.base.rss) / float64(r.sessions)
}

// runIdle opens n sessions (TLS 1.3, full handshakes), logs each in,
// selects and IDLEs, then measures mailfront's memory with them all open.
// Once a session is IDLE its TLS state is dropped and only the socket is
// kept, so the tool stays small; a sample keeps its TLS state and is checked
// (DONE, OK) at the end to show the sessions were really being relayed.
func runIdle(env *runEnv, n, concurrency int, settle time.Duration) (idleResult, error) {
	res := idleResult{settle: settle, curves: env.opts.curves, trafficKB: env.opts.idleKB}
	base, err := env.child.Memory()
	if err != nil {
		return res, err
	}
	res.base = base
	const sample = 20
	every := max(n/sample, 1)
	cfg := env.clientTLS()
	raws := make([]net.Conn, n)
	var samples []*imapConn
	var mu sync.Mutex
	work := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(env.limit)
	for range concurrency {
		wg.Go(func() {
			for i := range work {
				if time.Now().After(deadline) {
					continue
				}
				m, err := openIdle(env, cfg)
				mu.Lock()
				if err != nil {
					res.failed++
					if res.firstErr == nil {
						res.firstErr = err
					}
				} else {
					raws[i] = m.raw
					if i%every == 0 {
						samples = append(samples, m)
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		if i > 0 && i%1000 == 0 {
			env.logf("idle: %d sessions started, %s", i, time.Since(start).Round(time.Millisecond))
		}
		work <- i
		mu.Lock()
		failed := res.failed
		mu.Unlock()
		if failed > max(n/100, 10) {
			break // something is wrong: stop rather than hammer
		}
	}
	close(work)
	wg.Wait()
	res.setup = time.Since(start)
	defer closeAll(raws)
	for _, c := range raws {
		if c != nil {
			res.sessions++
		}
	}
	if res.after, err = env.child.Memory(); err != nil {
		return res, err
	}
	res.gcAfter, res.haveGCAfter = env.child.LastGC()
	env.logf("idle: %d sessions open in %s; mailfront RSS %d KiB (baseline %d KiB); settling %s",
		res.sessions, res.setup.Round(time.Millisecond), res.after.rss, res.base.rss, settle)
	time.Sleep(settle)
	if res.settled, err = env.child.Memory(); err != nil {
		return res, err
	}
	res.gcSettled, res.haveGCSettled = env.child.LastGC()
	for _, m := range samples {
		res.checked++
		m.raw.SetDeadline(time.Now().Add(10 * time.Second))
		if m.done() == nil {
			res.alive++
		}
	}
	return res, nil
}

// openIdle runs one session to IDLE.
func openIdle(env *runEnv, cfg *tls.Config) (*imapConn, error) {
	m, err := dialIMAPS(env.dialer, env.child.implicit, cfg, 512)
	if err != nil {
		return nil, err
	}
	if err := m.login(); err != nil {
		m.raw.Close()
		return nil, err
	}
	if n := env.opts.idleKB << 10; n > 0 {
		if err := fetchLiteral(m, n); err != nil {
			m.raw.Close()
			return nil, err
		}
		if err := appendLiteral(m, n); err != nil {
			m.raw.Close()
			return nil, err
		}
	}
	if err := m.idle(); err != nil {
		m.raw.Close()
		return nil, err
	}
	m.raw.SetDeadline(time.Time{})
	return m, nil
}

func closeAll[C io.Closer](cs []C) {
	for _, c := range cs {
		if any(c) != nil {
			c.Close()
		}
	}
}

func (r idleResult) print(w io.Writer) {
	fmt.Fprintf(w, "\n## idle: %d IMAP IDLE sessions over TLS 1.3 (ECDSA P-256), client key shares: %s\n", r.sessions, r.curves)
	if r.trafficKB > 0 {
		fmt.Fprintf(w, "  each session FETCHed and APPENDed %d KB before IDLE\n", r.trafficKB)
	}
	if r.failed > 0 {
		fmt.Fprintf(w, "  failed sessions: %d (first: %v)\n", r.failed, r.firstErr)
	}
	fmt.Fprintf(w, "  setup: %s (%.0f sessions/s)\n", r.setup.Round(time.Millisecond), float64(r.sessions)/r.setup.Seconds())
	fmt.Fprintf(w, "  mailfront RSS baseline  %8d KiB (HWM %d KiB)\n", r.base.rss, r.base.hwm)
	fmt.Fprintf(w, "  mailfront RSS after     %8d KiB (HWM %d KiB, anon %d KiB)  -> %.1f KiB/session\n",
		r.after.rss, r.after.hwm, r.after.anon, r.perSession(r.after))
	fmt.Fprintf(w, "  mailfront RSS +%-8s %8d KiB (HWM %d KiB, anon %d KiB)  -> %.1f KiB/session\n",
		r.settle, r.settled.rss, r.settled.hwm, r.settled.anon, r.perSession(r.settled))
	if r.haveGCSettled {
		g := r.gcSettled
		fmt.Fprintf(w, "  last GC (gctrace #%d): heap %v->%v MB, live %v MB, goal %v MB, stacks scanned %v MB\n",
			g.n, g.heapBefore, g.heapAfter, g.live, g.goal, g.stacks)
		if r.sessions > 0 {
			fmt.Fprintf(w, "    live heap ~%.1f KiB/session (whole heap / sessions)\n", g.live*1024/float64(r.sessions))
		}
	}
	fmt.Fprintf(w, "  sampled sessions still relayed (IDLE DONE -> OK): %d/%d\n", r.alive, r.checked)
}
