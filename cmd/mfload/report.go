package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"time"
)

// report gathers each mode's results for the closing summary.
type report struct {
	opts       options
	fileLimit  uint64
	idle       *idleResult
	bulk       []bulkResult
	handshakes []handshakeResult
	greeting   []*latencies
	ciphers    []cipherResult
	loads      []string // "mode 1m 5m 15m" as each mode began
}

// Targets from the performance issue.
const (
	targetIdleKiB     = 16.0
	targetCPUPerGB    = 1.25
	targetHandshakeMS = 0.45
	targetGreetingMS  = 2.0
)

func verdict(ok bool) string {
	if ok {
		return "meets"
	}
	return "**misses**"
}

// summary prints a markdown table suitable for README.md.
func (r *report) summary(w io.Writer) {
	fmt.Fprintf(w, "\n## Summary (%s/%s, %d CPUs, %s; mailfront and the load tool share the machine)\n\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Fprintln(w, "| measure | target | measured | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	if i := r.idle; i != nil && i.sessions > 0 {
		kib := i.perSession(i.after)
		settled := i.perSession(i.settled)
		traffic := ""
		if i.trafficKB > 0 {
			traffic = fmt.Sprintf(", after %d KB each way", i.trafficKB)
		}
		fmt.Fprintf(w, "| RSS per idle IMAP IDLE session (%d sessions%s) | ≤ %.0f KiB | %.1f KiB (%.1f KiB after %s) | %s |\n",
			i.sessions, traffic, targetIdleKiB, kib, settled, i.settle, verdict(min(kib, settled) <= targetIdleKiB))
	}
	for _, b := range r.bulk {
		fmt.Fprintf(w, "| CPU per GB relayed, %s | ≤ %.2f s | %.3f s (%.0f MB/s) | %s |\n",
			b.dir, targetCPUPerGB, b.cpuPerGB(), b.mbps(), verdict(b.cpuPerGB() <= targetCPUPerGB))
	}
	for _, c := range r.ciphers {
		fmt.Fprintf(w, "| floor: %s, per GB | | %.3f s | |\n", c.name, c.cpu.Seconds())
	}
	for _, h := range r.handshakes {
		per := float64(h.cpuPer().Microseconds()) / 1000
		fmt.Fprintf(w, "| CPU per new TLS session, %s | ≤ %.2f ms | %.3f ms | %s |\n",
			h.name, targetHandshakeMS, per, verdict(per <= targetHandshakeMS))
	}
	for _, l := range r.greeting {
		if !strings.Contains(l.name, "greeting") {
			continue
		}
		p50, p99 := l.pct(0.5), l.pct(0.99)
		fmt.Fprintf(w, "| %s, p50 / p99 | ≤ %.0f ms | %s / %s | %s |\n",
			l.name, targetGreetingMS, ms(p50), ms(p99), verdict(p99 <= time.Duration(targetGreetingMS*float64(time.Millisecond))))
	}
	fmt.Fprintf(w, "\nopen-file limit in force: %d; load average as each mode began: %s\n", r.fileLimit, strings.Join(r.loads, "; "))
}
