//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// startTimeout bounds waiting for a server to come up.
	startTimeout = 30 * time.Second
	// clientTimeout bounds one client program's run.
	clientTimeout = 60 * time.Second
	// logTimeout bounds waiting for a line to appear in a log file.
	logTimeout = 15 * time.Second
	// pollEvery is how often a log file or a port is looked at while
	// waiting for it; waits always end on the condition or a deadline.
	pollEvery = 20 * time.Millisecond
)

// freePorts returns n distinct loopback ports that were free a moment ago.
// All n listeners are held open together so the kernel hands out n
// different ports; Dovecot and mailfront bind them right after.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pick a free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// logFile is a server's log on disk, read again on every look.
type logFile struct {
	path string
}

func (l logFile) String() string {
	b, err := os.ReadFile(l.path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return string(b)
}

// size is the log's current length, a mark to look after with since.
func (l logFile) size() int {
	return len(l.String())
}

// since is what was logged after mark.
func (l logFile) since(mark int) string {
	s := l.String()
	if mark > len(s) {
		return ""
	}
	return s[mark:]
}

// wait polls the log after mark until a line matches re, and returns that
// line. exited, if not nil, ends the wait early when the server dies.
func (l logFile) wait(t *testing.T, mark int, re *regexp.Regexp, exited <-chan struct{}) string {
	t.Helper()
	return l.waitWithin(t, mark, re, exited, logTimeout)
}

// waitWithin is wait with another deadline than logTimeout, for events
// that take longer (a certificate ordered from an ACME CA).
func (l logFile) waitWithin(t *testing.T, mark int, re *regexp.Regexp, exited <-chan struct{}, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, line := range strings.Split(l.since(mark), "\n") {
			if re.MatchString(line) {
				return line
			}
		}
		select {
		case <-exited:
			t.Fatalf("server exited while waiting for a log line matching %q", re)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line matching %q within %v in %s", re, within, l.path)
		}
		time.Sleep(pollEvery)
	}
}

// lines returns the lines of s that match re.
func lines(s string, re *regexp.Regexp) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if re.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// waitPort polls addr until it accepts a TCP connection.
func waitPort(t *testing.T, addr string, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("server exited before %s accepted connections", addr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s accepted no connection within %v: %v", addr, startTimeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// result is what a client program did.
type result struct {
	stdout, stderr []byte
	code           int // exit code; -1 when killed
}

func (r result) String() string {
	return "exit " + strconv.Itoa(r.code) + "\nstdout:\n" + clip(r.stdout) + "\nstderr:\n" + clip(r.stderr)
}

// clip shortens long output for failure messages (a 5 MB message is not
// worth printing).
func clip(b []byte) string {
	const most = 4000
	if len(b) <= most {
		return string(b)
	}
	return string(b[:most]) + "\n... (" + strconv.Itoa(len(b)-most) + " more bytes)"
}

// runClient runs a client program with stdin, bounded by clientTimeout,
// and returns what it did. A program that cannot be started fails the test;
// a non-zero exit does not (the caller decides what it wants).
func runClient(t *testing.T, stdin []byte, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Stdin = bytes.NewReader(stdin)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("run %s: %v", name, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %s: still running after %v\n%s", name, strings.Join(args, " "), clientTimeout, r)
	}
	return r
}

// lf turns CRLF line ends into LF, for clients that store mail the Unix
// way (fetchmail's MDA input, mbsync's maildir).
func lf(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}
