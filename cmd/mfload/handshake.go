package main

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// handshakeResult is one variant of the handshake mode.
type handshakeResult struct {
	name      string
	n, failed int
	resumed   int
	wall      time.Duration
	cpu       time.Duration // mailfront's
	firstErr  error
	// Over the repeats, the lowest and highest CPU per session; the fields
	// above are the median repeat's.
	minPer, maxPer time.Duration
	repeats        int
}

func (r handshakeResult) cpuPer() time.Duration {
	if r.n == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.n)
}

// handshakeVariants are the client kinds measured: Go's default key shares
// (X25519MLKEM768 first; recent Thunderbird and Apple clients offer it too),
// X25519 alone (most mail clients today), and a resumed session.
func handshakeVariants(env *runEnv) []struct {
	name string
	cfg  *tls.Config
} {
	x25519 := []tls.CurveID{tls.X25519}
	return []struct {
		name string
		cfg  *tls.Config
	}{
		{"full, default key shares (X25519MLKEM768)", tlsClient(env.pki.pool, nil, nil)},
		{"full, X25519", tlsClient(env.pki.pool, x25519, nil)},
		{"resumed, X25519", tlsClient(env.pki.pool, x25519, tls.NewLRUClientSessionCache(64))},
	}
}

// runHandshakes opens n implicit TLS connections per variant with the given
// concurrency; each handshakes, reads the greeting and closes. mailfront's
// CPU time over the batch, divided by n, is the CPU per TLS session
// (handshake, greeting, accept and teardown included). Each variant is
// measured repeats times and the median batch is reported: on a shared
// virtual machine one batch's figure can be 20% off.
func runHandshakes(env *runEnv, n, concurrency, repeats int) ([]handshakeResult, error) {
	var out []handshakeResult
	for _, v := range handshakeVariants(env) {
		if v.cfg.ClientSessionCache != nil {
			// Prime the cache: one full handshake whose ticket the others use.
			m, err := dialIMAPS(env.dialer, env.child.implicit, v.cfg, 512)
			if err != nil {
				return out, err
			}
			m.raw.Close()
		}
		var runs []handshakeResult
		for range max(repeats, 1) {
			r, err := handshakeBatch(env, v.cfg, n, concurrency)
			if err != nil {
				return out, err
			}
			r.name = v.name
			env.logf("handshake: %s: %d in %s, mailfront CPU %s/session", r.name, r.n, r.wall.Round(time.Millisecond), r.cpuPer().Round(time.Microsecond))
			runs = append(runs, r)
		}
		slices.SortFunc(runs, func(a, b handshakeResult) int { return cmp.Compare(a.cpuPer(), b.cpuPer()) })
		r := runs[len(runs)/2]
		r.repeats, r.minPer, r.maxPer = len(runs), runs[0].cpuPer(), runs[len(runs)-1].cpuPer()
		out = append(out, r)
	}
	return out, nil
}

// handshakeBatch is one measurement of one variant.
func handshakeBatch(env *runEnv, cfg *tls.Config, n, concurrency int) (handshakeResult, error) {
	var r handshakeResult
	cpu0, err := env.child.CPU()
	if err != nil {
		return r, err
	}
	var next, ok, failed, resumed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	deadline := start.Add(env.limit)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && time.Now().Before(deadline) {
				m, err := dialIMAPS(env.dialer, env.child.implicit, cfg, 512)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				if m.c.(*tls.Conn).ConnectionState().DidResume {
					resumed.Add(1)
				}
				m.raw.Close()
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	r.wall = time.Since(start)
	// Let mailfront notice the closes before reading its clock.
	time.Sleep(200 * time.Millisecond)
	cpu1, err := env.child.CPU()
	if err != nil {
		return r, err
	}
	r.n, r.failed, r.resumed = int(ok.Load()), int(failed.Load()), int(resumed.Load())
	r.cpu = cpu1 - cpu0
	if e, ok := firstErr.Load().(error); ok {
		r.firstErr = e
	}
	return r, nil
}

func printHandshakes(w io.Writer, rs []handshakeResult) {
	fmt.Fprintf(w, "\n## handshake: new TLS 1.3 sessions (ECDSA P-256), greeting read, closed\n")
	for _, r := range rs {
		fmt.Fprintf(w, "  %-42s %5d sessions in %s (%.0f/s): mailfront CPU %.3f ms/session (median of %d, range %.3f-%.3f)",
			r.name, r.n, r.wall.Round(time.Millisecond), float64(r.n)/r.wall.Seconds(), float64(r.cpuPer().Microseconds())/1000,
			r.repeats, float64(r.minPer.Microseconds())/1000, float64(r.maxPer.Microseconds())/1000)
		if r.resumed > 0 {
			fmt.Fprintf(w, ", %d resumed", r.resumed)
		}
		if r.failed > 0 {
			fmt.Fprintf(w, ", %d failed (first: %v)", r.failed, r.firstErr)
		}
		fmt.Fprintln(w)
	}
}
