package logtest

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeT is the test a Recorder reports to: it keeps the output, the
// failures and the cleanups, and stops the calling goroutine on Fatalf as
// testing does. The methods it does not override go to the real test.
type fakeT struct {
	testing.TB
	mu       sync.Mutex
	out      strings.Builder
	errors   []string
	fatal    string
	cleanups []func()
}

func (f *fakeT) Output() io.Writer { return writerFunc(f.write) }

func (f *fakeT) write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.Write(p)
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// end runs the cleanups, as testing does when the test returns.
func (f *fakeT) end() {
	for _, fn := range slices.Backward(f.cleanups) {
		fn()
	}
}

func (f *fakeT) output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.out.String()
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// inGoroutine runs fn as a test goroutine would (Fatalf ends it) and
// returns once fn has returned or been stopped.
func inGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

func TestRecordAndEcho(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t}
	r := New(ft, slog.LevelInfo)
	log := r.Logger()
	log.Info("session start", "user", "alice")
	log.Debug("below the level")
	log.Warn("login failed", "user", "bob", "reason", "bad password")
	io.WriteString(r, "raw one\nraw two\n")
	io.WriteString(r, "no newline")

	lines := r.Lines()
	if len(lines) != 5 {
		t.Fatalf("got %d lines %q, want 5", len(lines), lines)
	}
	for i, want := range []string{`level=INFO msg="session start" user=alice`, `level=WARN msg="login failed" user=bob reason="bad password"`, "raw one", "raw two", "no newline"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: got %q, want it to contain %q", i, lines[i], want)
		}
	}
	if got, want := r.String(), strings.Join(lines, "\n")+"\n"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
	if got := ft.output(); got != r.String() {
		t.Errorf("echoed: got %q, want every line %q", got, r.String())
	}
	tests := []struct {
		parts []string
		want  int
	}{
		{nil, 5},
		{[]string{"user="}, 2},
		{[]string{"user=", "level=WARN"}, 1},
		{[]string{"raw"}, 2},
		{[]string{"raw", "user="}, 0},
		{[]string{"below the level"}, 0},
	}
	for _, tt := range tests {
		if got := r.Count(tt.parts...); got != tt.want {
			t.Errorf("Count(%q): got %d, want %d", tt.parts, got, tt.want)
		}
	}
	if lines[0] = "changed"; r.Lines()[0] == "changed" {
		t.Error("Lines returned the recorder's own slice, want a copy")
	}
}

func TestJSONLogger(t *testing.T) {
	t.Parallel()
	r := New(&fakeT{TB: t}, slog.LevelDebug)
	r.JSONLogger().Debug("session end", "bytes", 42)
	if got := r.Count(`"level":"DEBUG"`, `"msg":"session end"`, `"bytes":42`); got != 1 {
		t.Errorf("got lines %q, want one JSON object with the record", r.Lines())
	}
}

// TestWait checks that Wait returns the nth matching line once it exists,
// whether it was written before or while Wait waited.
func TestWait(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t}
	r := New(ft, slog.LevelInfo)
	log := r.Logger()
	log.Info("reloaded", "n", 1)
	if got := r.Wait(1, "reloaded"); !strings.Contains(got, "n=1") {
		t.Errorf("Wait for a line already there: got %q, want n=1", got)
	}
	got := make(chan string, 1)
	go func() {
		defer close(got) // also when a failure stops Wait
		got <- r.Wait(3, "reloaded")
	}()
	log.Info("reloaded", "n", 2)
	log.Info("something else")
	log.Info("reloaded", "n", 3)
	log.Info("reloaded", "n", 4)
	if line := <-got; !strings.Contains(line, "n=3") {
		t.Errorf("Wait(3): got %q, want the third reload (n=3)", line)
	}
	if ft.fatal != "" {
		t.Errorf("got failure %q, want none", ft.fatal)
	}
}

// TestWaitFailsafe checks that a line that never comes fails the test
// with what was seen instead of hanging.
func TestWaitFailsafe(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t}
	r := New(ft, slog.LevelInfo)
	r.failsafe = time.Millisecond
	r.Logger().Info("reloaded")
	returned := false
	inGoroutine(func() {
		r.Wait(2, "reloaded")
		returned = true
	})
	if returned {
		t.Error("Wait returned after its failsafe, want the test stopped")
	}
	if want := `logtest: after 1ms: got 1 log lines with ["reloaded"], want 2`; ft.fatal != want {
		t.Errorf("got failure %q, want %q", ft.fatal, want)
	}
	inGoroutine(func() { r.Wait(0) })
	if want := "logtest: Wait(0): want n at least 1"; ft.fatal != want {
		t.Errorf("got failure %q, want %q", ft.fatal, want)
	}
}

// TestAfterTheTest checks that lines logged once the test has cleaned up
// are kept but not echoed (testing panics on output after a test).
func TestAfterTheTest(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t}
	r := New(ft, slog.LevelInfo)
	r.Logger().Info("during")
	ft.end()
	r.Logger().Info("after")
	if got := ft.output(); !strings.Contains(got, "during") || strings.Contains(got, "after") {
		t.Errorf("echoed %q, want the line logged during the test only", got)
	}
	if got := r.Count("after"); got != 1 {
		t.Errorf("got %d lines logged after the test kept, want 1", got)
	}
}

func TestMustNotContain(t *testing.T) {
	t.Parallel()
	ft := &fakeT{TB: t}
	r := New(ft, slog.LevelInfo)
	r.Logger().Info("login failed", "user", "alice", "password", "hunter2")
	r.MustNotContain("hunter2", "s3cret")
	if len(ft.errors) != 1 || !strings.Contains(ft.errors[0], `got 1 log lines containing "hunter2", want none`) || !strings.Contains(ft.errors[0], "user=alice") {
		t.Errorf("got failures %q, want one naming hunter2 and its line", ft.errors)
	}
}

// TestConcurrentWriters logs from many goroutines while a waiter waits:
// nothing is lost (run with -race).
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	r := New(&fakeT{TB: t}, slog.LevelInfo)
	log := r.Logger()
	const writers, each = 8, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				log.Info("line", "writer", w, "i", i)
			}
		})
	}
	r.Wait(writers*each, `msg=line`)
	wg.Wait()
	if got := r.Count("msg=line"); got != writers*each {
		t.Errorf("got %d lines, want %d", got, writers*each)
	}
}
