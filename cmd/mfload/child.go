package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is the mailfront process under test.
type child struct {
	cmd        *exec.Cmd
	stderrPath string
	implicit   string // implicit TLS IMAP listener
	starttls   string // STARTTLS IMAP listener
}

// freePort asks the kernel for a free loopback port.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// writeConfig writes the mailfront configuration for the run.
func writeConfig(path string, p *pki, implicit, starttls, backend string, maxConns int, extra string) error {
	cfg := fmt.Sprintf(`tls:
  min_version: "1.2"
  certificates:
    - {cert_file: %q, key_file: %q}
listeners:
  - {protocol: imap, address: %q, tls: implicit, backend: %q}
  - {protocol: imap, address: %q, tls: starttls, backend: %q}
limits: {max_connections: %d}
guard: {trusted: [127.0.0.0/8]}   # the load tool is not an attacker: its sources share no budget
log: {format: json, level: warn}
%s
`, p.certFile, p.keyFile, implicit, backend, starttls, backend, maxConns, extra)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// startChild starts mailfront and waits until both listeners accept.
func startChild(binary, dir string, p *pki, backend string, maxConns int, extraYAML string, env []string) (*child, error) {
	implicit, err := freePort()
	if err != nil {
		return nil, err
	}
	starttls, err := freePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "mailfront.yaml")
	if err := writeConfig(cfgPath, p, implicit, starttls, backend, maxConns, extraYAML); err != nil {
		return nil, err
	}
	stderrPath := filepath.Join(dir, "mailfront.stderr")
	errFile, err := os.Create(stderrPath)
	if err != nil {
		return nil, err
	}
	defer errFile.Close()
	cmd := exec.Command(binary, "run", "--config", cfgPath)
	cmd.Stdout = errFile
	cmd.Stderr = errFile
	cmd.Env = append(os.Environ(), env...)
	// The child dies with the tool, whatever way the tool ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	c := &child{cmd: cmd, stderrPath: stderrPath, implicit: implicit, starttls: starttls}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	for _, addr := range []string{implicit, starttls} {
		if err := waitListening(addr, exited, 15*time.Second); err != nil {
			c.Stop()
			return nil, fmt.Errorf("mailfront on %s: %w\n%s", addr, err, c.stderrTail(20))
		}
	}
	return c, nil
}

// waitListening polls addr until it accepts, the child exits or the time is up.
func waitListening(addr string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("mailfront exited")
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not listening after %s", limit)
}

// Stop kills the child and reaps it.
func (c *child) Stop() {
	if c.cmd.Process != nil {
		c.cmd.Process.Kill()
	}
}

func (c *child) Pid() int { return c.cmd.Process.Pid }

// stderrTail returns the child's last n output lines.
func (c *child) stderrTail(n int) string {
	data, _ := os.ReadFile(c.stderrPath)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// memory is the child's resident memory, in KiB.
type memory struct{ rss, hwm, anon int64 }

func (c *child) Memory() (memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Pid()))
	if err != nil {
		return memory{}, err
	}
	var m memory
	for line := range strings.SplitSeq(string(data), "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(val), "kB")), 10, 64)
		switch key {
		case "VmRSS":
			m.rss = kb
		case "VmHWM":
			m.hwm = kb
		case "RssAnon":
			m.anon = kb
		}
	}
	return m, nil
}

// CPU is the child's CPU time (user+system). It sums the per-thread
// scheduler clocks (nanoseconds) when it can; /proc/PID/stat's clock ticks
// are the fallback.
func (c *child) CPU() (time.Duration, error) {
	if d, err := schedCPU(c.Pid()); err == nil {
		return d, nil
	}
	return statCPU(c.Pid())
}

func schedCPU(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread just exited
		}
		f := strings.Fields(string(data))
		if len(f) < 1 {
			return 0, errors.New("schedstat: no fields")
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// clockTicks is USER_HZ, 100 on every Linux that matters.
const clockTicks = 100

func statCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name can hold spaces; fields are counted after its ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("stat: no command")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// gcLine is the newest GODEBUG=gctrace=1 line the child printed, parsed:
// heap sizes in MB and goroutine stacks in MB, as the runtime reports them.
type gcLine struct {
	n                           int
	heapBefore, heapAfter, live float64 // "#->#-># MB"
	goal, stacks                float64
	raw                         string
}

var gcRE = regexp.MustCompile(`^gc (\d+) .*?, (\d+)->(\d+)->(\d+) MB, (\d+) MB goal, (\d+) MB stacks`)

func (c *child) LastGC() (gcLine, bool) {
	f, err := os.Open(c.stderrPath)
	if err != nil {
		return gcLine{}, false
	}
	defer f.Close()
	var last gcLine
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := gcRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		num := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
		last = gcLine{n: int(num(1)), heapBefore: num(2), heapAfter: num(3), live: num(4), goal: num(5), stacks: num(6), raw: sc.Text()}
		found = true
	}
	return last, found
}

// raiseFileLimit lifts RLIMIT_NOFILE to at least want when allowed (root
// may raise the hard limit), else to the hard limit. mailfront inherits it.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if want > lim.Max {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err == nil {
			return want, nil
		}
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}
