package acmedns

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
)

// hook writes a /bin/sh script into a temporary directory and returns its path.
func hook(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExecPresentCleanUp(t *testing.T) {
	t.Parallel()
	calls := filepath.Join(t.TempDir(), "calls")
	script := hook(t, `printf '%s|' "$@" >> '`+calls+`'; echo >> '`+calls+`'; echo published`)
	logs := logtest.New(t, slog.LevelDebug)
	e := &Exec{Command: []string{script, "--zone-hint", "example test"}, Log: logs.Logger()}
	ch := challenge("Mail.example.test", "token.thumbprint")
	if err := e.Present(t.Context(), ch); err != nil {
		t.Fatalf("present: %v", err)
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel() // acmez may clean up after a cancellation
	if err := e.CleanUp(cancelled, ch); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	value := ch.DNS01KeyAuthorization()
	want := "--zone-hint|example test|present|_acme-challenge.mail.example.test.|" + value + "|\n" +
		"--zone-hint|example test|cleanup|_acme-challenge.mail.example.test.|" + value + "|\n"
	if string(b) != want {
		t.Errorf("hook calls: got %q, want %q", b, want)
	}
	if got := logs.Count(`msg="dns hook done"`, "output=published"); got != 2 {
		t.Errorf("got %d log lines with the hook's output, want 2 (present and cleanup)", got)
	}
}

func TestExecFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       []string
	}{
		{"exit status", `echo starting; echo "no zone for $2" >&2; exit 3`,
			[]string{"exec hook.sh present _acme-challenge.example.test.", "exit status 3", "starting", "no zone for _acme-challenge.example.test."}},
		{"output bounded", `i=0; while [ $i -lt 600 ]; do echo "line $i of noise"; i=$((i+1)); done; echo LAST >&2; exit 1`,
			[]string{"exit status 1", `output: "...`, `LAST"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &Exec{Command: []string{hook(t, tt.body)}}
			err := e.Present(t.Context(), challenge("example.test", "k.a"))
			if err == nil {
				t.Fatal("got nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if len(err.Error()) > outputLimit+512 {
				t.Errorf("error is %d bytes, want the output bounded to %d", len(err.Error()), outputLimit)
			}
		})
	}
}

// TestExecTimeout checks that a hanging hook, and the child it waits for,
// are killed at the Timeout. Were the child left alive, it would hold the
// output pipe open and Present would return only when execWaitDelay gives
// up on it: that, not a race against a stopwatch, is the bound checked.
func TestExecTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	e := &Exec{Command: []string{hook(t, "echo waiting; sleep 30; echo never")}, Timeout: timeout}
	start := time.Now()
	err := e.Present(t.Context(), challenge("example.test", "k.a"))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "killed after 300ms") {
		t.Fatalf("got %v, want killed after the timeout", err)
	}
	if !strings.Contains(err.Error(), "waiting") || strings.Contains(err.Error(), "never") {
		t.Errorf("error %q: want the output so far", err)
	}
	if elapsed >= timeout+execWaitDelay {
		t.Errorf("returned after %s, want about %s: the sleeping child was not killed", elapsed, timeout)
	}
}

func TestExecCheck(t *testing.T) {
	t.Parallel()
	script := hook(t, "exit 0")
	notExecutable := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		command []string
		timeout time.Duration
		want    string // substring of the error; "" for valid
	}{
		{"absolute", []string{script}, 0, ""},
		{"found in PATH", []string{"sh", "-c", "exit 0"}, time.Second, ""},
		{"empty", nil, 0, "empty command"},
		{"empty name", []string{""}, 0, "empty command"},
		{"missing", []string{filepath.Join(t.TempDir(), "missing")}, 0, "no such file"},
		{"not executable", []string{notExecutable}, 0, "permission denied"},
		{"relative", []string{"hooks/dns.sh"}, 0, "relative path"},
		{"dot relative", []string{"./hook.sh"}, 0, "relative path"},
		{"not in PATH", []string{"mailfront-no-such-hook"}, 0, "not found"},
		{"negative timeout", []string{script}, -time.Second, "exec timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Exec{Command: tt.command, Timeout: tt.timeout}).Check()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"short", []string{"a", "bc\n"}, "abc"},
		{"exactly max", []string{"12345678"}, "12345678"},
		{"cut in one write", []string{"0123456789"}, "...23456789"},
		{"cut across writes", []string{"0123", "4567", "89"}, "...23456789"},
	}
	for _, tt := range tests {
		out := &tail{max: 8}
		for _, w := range tt.writes {
			out.Write([]byte(w))
		}
		if got := out.String(); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
