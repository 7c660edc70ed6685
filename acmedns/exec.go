package acmedns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// Exec runs an operator's hook for every other DNS host, with lego's
// exec-provider convention:
//
//	command... present <fqdn-with-trailing-dot> <value>
//	command... cleanup <fqdn-with-trailing-dot> <value>
//
// The hook exits 0 once the record is published. Its stdout and stderr are
// logged (the last 4 KiB), never its environment, which it inherits.
type Exec struct {
	Command []string      // argv; Command[0] an absolute path or a name found in PATH
	Timeout time.Duration // per call; default 2m
	Log     *slog.Logger  // nil: discard
}

var _ acmez.Solver = (*Exec)(nil)

const (
	defaultExecTimeout = 2 * time.Minute
	outputLimit        = 4 << 10 // bytes of a hook's output kept, from the end
	// execWaitDelay bounds the wait for a killed hook's output pipes, which
	// a grandchild outside its process group could hold open.
	execWaitDelay = time.Second
)

// Present runs the hook with "present".
func (e *Exec) Present(ctx context.Context, ch acme.Challenge) error {
	return e.run(ctx, "present", ch)
}

// CleanUp runs the hook with "cleanup", even if ctx is already cancelled
// (see RFC2136.CleanUp); Timeout still bounds it.
func (e *Exec) CleanUp(ctx context.Context, ch acme.Challenge) error {
	return e.run(context.WithoutCancel(ctx), "cleanup", ch)
}

// Check validates the configuration: a command that is an absolute path to
// an executable, or a bare name found in PATH (not a relative path, which
// would depend on the working directory), and a timeout that is not negative.
func (e *Exec) Check() error {
	if len(e.Command) == 0 || e.Command[0] == "" {
		return errors.New("exec: empty command")
	}
	if e.Timeout < 0 {
		return fmt.Errorf("exec timeout %s: want 0 (default %s) or more", e.Timeout, defaultExecTimeout)
	}
	path := e.Command[0]
	if !filepath.IsAbs(path) && strings.ContainsRune(path, filepath.Separator) {
		return fmt.Errorf("exec command %q: a relative path; want an absolute path or a name found in PATH", path)
	}
	if _, err := exec.LookPath(path); err != nil {
		return fmt.Errorf("exec command %q: %w", path, err)
	}
	return nil
}

func (e *Exec) run(ctx context.Context, action string, ch acme.Challenge) error {
	if err := e.Check(); err != nil {
		return err
	}
	name, value := recordName(ch), ch.DNS01KeyAuthorization()
	timeout := cmp.Or(e.Timeout, defaultExecTimeout)
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("action", action, "name", name, "command", e.Command[0])

	cmdCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	args := append(e.Command[1:len(e.Command):len(e.Command)], action, name, value)
	cmd := exec.CommandContext(cmdCtx, e.Command[0], args...)
	out := &tail{max: outputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = execWaitDelay
	killGroup(cmd)

	start := time.Now()
	err := cmd.Run()
	switch {
	case err == nil:
	case ctx.Err() != nil:
		err = fmt.Errorf("stopped: %w (%w)", context.Cause(ctx), err)
	case cmdCtx.Err() != nil:
		err = fmt.Errorf("killed after %s: %w (%w)", timeout, cmdCtx.Err(), err)
	}
	if err != nil {
		log.Warn("dns hook failed", "duration", time.Since(start), "output", out.String(), "error", err)
		return fmt.Errorf("exec %s %s %s: %w; output: %q", filepath.Base(e.Command[0]), action, name, err, out.String())
	}
	log.Info("dns hook done", "duration", time.Since(start), "output", out.String())
	return nil
}

// tail is an io.Writer that keeps the last max bytes written.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

// String is the output kept, trimmed, marked "..." when its start was cut.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.ToValidUTF8(strings.TrimSpace(string(t.buf)), "\uFFFD")
	if t.cut {
		s = "..." + s
	}
	return s
}
