// Package logtest records what code under test logs through log/slog: every
// line goes to the test's output as it is written (so a failing test shows
// the server's side of the story) and is kept, for the test to count, to
// wait for and to search for secrets that must not be there.
//
// A test waits for a line with Wait, which wakes on every write and never
// polls; its deadline (Failsafe) turns a hang into a failure and is never
// how a test synchronises.
//
// It is for tests only and imports nothing but the standard library. It
// does not parse log lines (matching is by substring of the formatted
// line), does not bound what it keeps, and writes nothing to the test's
// output once the test has ended: goroutines that outlive a test (a server
// shutting down, a library's background work) may still log, and their
// lines are kept but not echoed, since testing panics on output after a test
// has completed.
package logtest

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Failsafe is how long Wait waits before it fails the test: long enough for
// a loaded machine, short of the go test timeout.
const Failsafe = 30 * time.Second

// Recorder is an io.Writer that slog handlers write to. It is safe for
// concurrent use.
type Recorder struct {
	t        testing.TB
	level    slog.Level
	failsafe time.Duration

	mu    sync.Mutex
	lines []string
	wake  chan struct{} // closed and replaced on every write
	ended bool          // the test has cleaned up: keep, don't echo
}

// New returns a Recorder for t whose loggers log at level and above. Make
// it before what logs to it, so that its cleanup runs after theirs and
// their last lines still reach the test's output.
func New(t testing.TB, level slog.Level) *Recorder {
	r := &Recorder{t: t, level: level, failsafe: Failsafe, wake: make(chan struct{})}
	t.Cleanup(func() {
		r.mu.Lock()
		r.ended = true
		r.mu.Unlock()
	})
	return r
}

// Logger logs to r with slog's text handler: key=value lines, as
// mailfront logs by default.
func (r *Recorder) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(r, &slog.HandlerOptions{Level: r.level}))
}

// JSONLogger logs to r with slog's JSON handler, one object per line, for
// tests of the JSON format.
func (r *Recorder) JSONLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(r, &slog.HandlerOptions{Level: r.level}))
}

// Write records p as one line per newline (a final newline is optional;
// slog handlers write one record per call) and echoes it to the test's
// output.
func (r *Recorder) Write(p []byte) (int, error) {
	lines := strings.Split(string(bytes.TrimSuffix(p, []byte("\n"))), "\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, lines...)
	close(r.wake)
	r.wake = make(chan struct{})
	if !r.ended {
		// Held under mu, so the cleanup cannot end the test mid-write.
		io.WriteString(r.t.Output(), strings.Join(lines, "\n")+"\n")
	}
	return len(p), nil
}

// String is every line so far, each ending in a newline.
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) == 0 {
		return ""
	}
	return strings.Join(r.lines, "\n") + "\n"
}

// Lines is a copy of the lines so far.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// Count is how many lines so far contain every one of parts.
func (r *Recorder) Count(parts ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(matching(r.lines, parts))
}

// Wait blocks until n (at least 1) lines contain every one of parts and
// returns the nth. Every write wakes it; after Failsafe it fails the test
// with FailNow, so it must be called from the test's goroutine.
func (r *Recorder) Wait(n int, parts ...string) string {
	r.t.Helper()
	return r.WaitFor(r.t, n, parts...)
}

// WaitFor is Wait for a test other than the Recorder's: a subtest that
// shares its parent's Recorder fails itself, from its own goroutine.
func (r *Recorder) WaitFor(t testing.TB, n int, parts ...string) string {
	t.Helper()
	if n < 1 {
		t.Fatalf("logtest: Wait(%d): want n at least 1", n)
	}
	deadline := time.NewTimer(r.failsafe)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		found, wake := matching(r.lines, parts), r.wake
		r.mu.Unlock()
		if len(found) >= n {
			return found[n-1]
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("logtest: after %v: got %d log lines with %q, want %d", r.failsafe, len(found), parts, n)
			return ""
		}
	}
}

// MustNotContain fails the test (without stopping it) for each secret that
// a line so far contains, naming the line.
func (r *Recorder) MustNotContain(secrets ...string) {
	r.t.Helper()
	lines := r.Lines()
	for _, secret := range secrets {
		if found := matching(lines, []string{secret}); len(found) > 0 {
			r.t.Errorf("logtest: got %d log lines containing %q, want none; the first: %s", len(found), secret, found[0])
		}
	}
}

func matching(lines, parts []string) []string {
	var out []string
	for _, l := range lines {
		if containsAll(l, parts) {
			out = append(out, l)
		}
	}
	return out
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
