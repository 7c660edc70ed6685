package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// bulkResult is one direction of the bulk mode.
type bulkResult struct {
	dir      string // "download (FETCH)" or "upload (APPEND)"
	bytes    int64
	sessions int
	wall     time.Duration
	cpu      time.Duration // mailfront's
	toolCPU  time.Duration // the load tool's, for context
	// Over the repeats, the lowest and highest CPU per GB; the fields above
	// are the median repeat's.
	minPerGB, maxPerGB float64
	repeats            int
}

func (r bulkResult) cpuPerGB() float64 { return r.cpu.Seconds() / (float64(r.bytes) / 1e9) }
func (r bulkResult) mbps() float64     { return float64(r.bytes) / 1e6 / r.wall.Seconds() }

// runBulk moves total bytes through mailfront in each direction over
// sessions parallel sessions, in literals of chunk bytes: FETCH
// BODY[]<0.N> from the backend, then APPEND to it.
// Each direction is measured repeats times; the median is reported, since
// a shared virtual machine's figures vary by 10-20% from run to run.
func runBulk(env *runEnv, down, up, chunk int64, sessions, repeats int) ([]bulkResult, error) {
	cfg := env.clientTLS()
	conns := make([]*imapConn, sessions)
	for i := range conns {
		m, err := dialIMAPS(env.dialer, env.child.implicit, cfg, 64<<10)
		if err != nil {
			return nil, err
		}
		defer m.raw.Close()
		if err := m.login(); err != nil {
			return nil, err
		}
		m.raw.SetDeadline(time.Time{})
		conns[i] = m
	}
	var out []bulkResult
	for _, d := range []struct {
		name  string
		total int64
		move  func(*imapConn, int64) error
	}{
		{"download (FETCH)", down, fetchLiteral},
		{"upload (APPEND)", up, appendLiteral},
	} {
		if d.total <= 0 {
			continue
		}
		var runs []bulkResult
		for range max(repeats, 1) {
			r, err := measureBulk(env, conns, d.total, chunk, d.move)
			if err != nil {
				return out, fmt.Errorf("%s: %w", d.name, err)
			}
			env.logf("bulk: %s %d MB in %s, mailfront CPU %s (%.3f s/GB)", d.name, r.bytes/1e6, r.wall.Round(time.Millisecond), r.cpu.Round(time.Millisecond), r.cpuPerGB())
			runs = append(runs, r)
		}
		slices.SortFunc(runs, func(a, b bulkResult) int { return cmp.Compare(a.cpuPerGB(), b.cpuPerGB()) })
		r := runs[len(runs)/2]
		r.dir, r.repeats = d.name, len(runs)
		r.minPerGB, r.maxPerGB = runs[0].cpuPerGB(), runs[len(runs)-1].cpuPerGB()
		out = append(out, r)
	}
	return out, nil
}

func measureBulk(env *runEnv, conns []*imapConn, total, chunk int64, move func(*imapConn, int64) error) (bulkResult, error) {
	per := total / int64(len(conns))
	cpu0, err := env.child.CPU()
	if err != nil {
		return bulkResult{}, err
	}
	tool0 := selfCPU()
	start := time.Now()
	errs := make(chan error, len(conns))
	var wg sync.WaitGroup
	for _, m := range conns {
		wg.Go(func() {
			m.raw.SetDeadline(start.Add(env.limit))
			defer m.raw.SetDeadline(time.Time{})
			for left := per; left > 0; left -= chunk {
				if err := move(m, min(left, chunk)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return bulkResult{}, err
	}
	cpu1, err := env.child.CPU()
	if err != nil {
		return bulkResult{}, err
	}
	return bulkResult{bytes: per * int64(len(conns)), sessions: len(conns), wall: wall, cpu: cpu1 - cpu0, toolCPU: selfCPU() - tool0}, nil
}

// fetchLiteral fetches n bytes and reads them to the tagged OK.
func fetchLiteral(m *imapConn, n int64) error {
	m.tag++
	tag := "a" + strconv.Itoa(m.tag)
	if _, err := fmt.Fprintf(m.c, "%s FETCH 1 BODY[]<0.%d>\r\n", tag, n); err != nil {
		return err
	}
	l, err := m.line()
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	size, _, ok := literalSuffix(l)
	if !ok || size != n {
		return fmt.Errorf("fetch: got %q, want a {%d} literal", l, n)
	}
	if _, err := io.CopyN(io.Discard, m.r, n); err != nil {
		return fmt.Errorf("fetch literal: %w", err)
	}
	return m.expectTagged(tag, "FETCH")
}

// appendLiteral appends an n-byte message (a synchronising literal).
func appendLiteral(m *imapConn, n int64) error {
	m.tag++
	tag := "a" + strconv.Itoa(m.tag)
	if _, err := fmt.Fprintf(m.c, "%s APPEND INBOX {%d}\r\n", tag, n); err != nil {
		return err
	}
	l, err := m.line()
	if err != nil || !strings.HasPrefix(l, "+") {
		return fmt.Errorf("append: got %q, %v; want a continuation", l, err)
	}
	if _, err := io.CopyN(m.c, zeroReader{}, n); err != nil {
		return fmt.Errorf("append literal: %w", err)
	}
	if _, err := io.WriteString(m.c, "\r\n"); err != nil {
		return err
	}
	return m.expectTagged(tag, "APPEND")
}

// zeroReader is an endless source of bytes for APPEND literals.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func printBulk(w io.Writer, rs []bulkResult) {
	fmt.Fprintf(w, "\n## bulk: literals relayed through mailfront over TLS 1.3\n")
	for _, r := range rs {
		fmt.Fprintf(w, "  %-17s %6.0f MB over %d session(s) in %s: %7.1f MB/s; mailfront CPU %s = %.3f s/GB (median of %d, range %.3f-%.3f; load tool CPU %s)\n",
			r.dir, float64(r.bytes)/1e6, r.sessions, r.wall.Round(time.Millisecond), r.mbps(),
			r.cpu.Round(time.Millisecond), r.cpuPerGB(), r.repeats, r.minPerGB, r.maxPerGB, r.toolCPU.Round(time.Millisecond))
	}
}
