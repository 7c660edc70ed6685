// Command mfload drives a built mailfront binary with load and reports
// whole-process figures: resident memory per idle IMAP IDLE session, CPU per
// GB relayed (beside the cost of the cipher alone), CPU per new TLS session
// and connect-to-greeting latency.
//
//	go build -o /tmp/mailfront ./cmd/mailfront
//	go run ./cmd/mfload -mailfront /tmp/mailfront                 # everything
//	go run ./cmd/mfload -mailfront /tmp/mailfront -mode idle -sessions 9500
//
// It runs its own in-memory plaintext IMAP backend in-process, mints a
// throwaway ECDSA P-256 CA and certificate, writes a configuration with an
// implicit TLS and a STARTTLS IMAP listener, and starts mailfront afresh for
// each mode, so that each figure is taken on a clean process. It talks only
// to 127.0.0.0/8, bounds every phase in time, and kills mailfront on exit.
// Linux only (it reads /proc).
//
// It does not import mailfront's packages: it drives the binary as a black
// box, as an operator would. It does not judge its figures against anything
// but the targets it prints them beside, and never fails on a time.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

type options struct {
	binary       string
	mode         string
	sessions     int
	concurrency  int
	settle       time.Duration
	idleKB       int64
	downMB, upMB int64
	chunkMB      int64
	bulkSessions int
	bulkRepeat   int
	handshakes   int
	hsConc       int
	hsRepeat     int
	greetings    int
	cipherGB     float64
	sources      int
	curves       string
	phase        time.Duration
	timeout      time.Duration
	gctrace      bool
	childEnv     multiFlag
	keep         bool
	extraYAML    string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var o options
	flag.StringVar(&o.binary, "mailfront", "", "path to the built mailfront binary (required)")
	flag.StringVar(&o.mode, "mode", "all", "idle, bulk, handshake, greeting, cipher or all")
	flag.IntVar(&o.sessions, "sessions", 9500, "idle: sessions to hold open")
	flag.IntVar(&o.concurrency, "concurrency", 50, "idle: sessions being opened at once")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "idle: wait before the second memory reading")
	flag.Int64Var(&o.idleKB, "idle-traffic-kb", 0, "idle: KB each session FETCHes and APPENDs before it IDLEs (0: none), as a client that synced first")
	flag.Int64Var(&o.downMB, "mb", 1024, "bulk: MB to FETCH through mailfront (0 skips)")
	flag.Int64Var(&o.upMB, "up-mb", 256, "bulk: MB to APPEND through mailfront (0 skips)")
	flag.Int64Var(&o.chunkMB, "chunk-mb", 64, "bulk: MB per literal")
	flag.IntVar(&o.bulkSessions, "bulk-sessions", 1, "bulk: parallel sessions")
	flag.IntVar(&o.bulkRepeat, "bulk-repeat", 3, "bulk: measurements per direction (the median is reported)")
	flag.IntVar(&o.handshakes, "handshakes", 2000, "handshake: new TLS sessions per variant")
	flag.IntVar(&o.hsConc, "handshake-concurrency", 4, "handshake: connections at once")
	flag.IntVar(&o.hsRepeat, "handshake-repeat", 3, "handshake: measurements per variant (the median is reported)")
	flag.IntVar(&o.greetings, "greetings", 1000, "greeting: sequential connections per listener")
	flag.Float64Var(&o.cipherGB, "cipher-gb", 1, "cipher: GB to seal per cipher")
	flag.StringVar(&o.curves, "client-curves", "default", "idle, bulk, greeting: key shares the client offers: default (Go's, X25519MLKEM768 first) or x25519")
	flag.IntVar(&o.sources, "sources", 8, "source addresses 127.0.0.1..N to spread connections over")
	flag.DurationVar(&o.phase, "phase-timeout", 10*time.Minute, "time bound for each phase")
	flag.DurationVar(&o.timeout, "timeout", 45*time.Minute, "time bound for the whole run")
	flag.BoolVar(&o.gctrace, "gctrace", true, "run mailfront with GODEBUG=gctrace=1 to split heap from stacks")
	flag.Var(&o.childEnv, "env", "extra KEY=VALUE for mailfront's environment (repeatable), e.g. GOGC=50")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, certificate, mailfront's log)")
	flag.StringVar(&o.extraYAML, "yaml", "", "top-level sections appended to mailfront's configuration, e.g. 'relay: {mode: standard}' (not tls, listeners, limits, guard or log, which the tool writes)")
	flag.Parse()
	if o.curves != "default" && o.curves != "x25519" {
		fmt.Fprintln(os.Stderr, "mfload: -client-curves must be default or x25519")
		os.Exit(2)
	}
	if o.binary == "" {
		fmt.Fprintln(os.Stderr, "mfload: -mailfront is required (go build -o /tmp/mailfront ./cmd/mailfront)")
		os.Exit(2)
	}
	os.Exit(run(o, os.Stdout, os.Stderr))
}

// runEnv is what every mode needs.
type runEnv struct {
	opts    options
	dir     string
	pki     *pki
	backend *backend
	dialer  *dialer
	child   *child
	limit   time.Duration
	log     io.Writer
}

// clientTLS is the client configuration for idle, bulk and greeting.
func (e *runEnv) clientTLS() *tls.Config {
	var curves []tls.CurveID
	if e.opts.curves == "x25519" {
		curves = []tls.CurveID{tls.X25519}
	}
	return tlsClient(e.pki.pool, curves, nil)
}

func (e *runEnv) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "%s mfload: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// startChild starts a fresh mailfront for one mode.
func (e *runEnv) startChild() error {
	env := append([]string(nil), e.opts.childEnv...)
	if e.opts.gctrace {
		env = append(env, "GODEBUG=gctrace=1")
	}
	c, err := startChild(e.opts.binary, e.dir, e.pki, e.backend.Addr(), 2*e.opts.sessions+1000, e.opts.extraYAML, env)
	if err != nil {
		return err
	}
	e.child = c
	e.logf("mailfront pid %d listening on %s (implicit TLS) and %s (STARTTLS)", c.Pid(), c.implicit, c.starttls)
	return nil
}

func (e *runEnv) stopChild() {
	if e.child != nil {
		e.child.Stop()
		e.child = nil
	}
}

func run(o options, stdout, stderr io.Writer) int {
	binary, err := filepath.Abs(o.binary)
	if err != nil {
		fmt.Fprintf(stderr, "mfload: %v\n", err)
		return 1
	}
	o.binary = binary
	dir, err := os.MkdirTemp("", "mfload-")
	if err != nil {
		fmt.Fprintf(stderr, "mfload: %v\n", err)
		return 1
	}
	e := &runEnv{opts: o, dir: dir, dialer: newDialer(o.sources), limit: o.phase, log: stderr}
	cleanup := func() {
		e.stopChild()
		if e.backend != nil {
			e.backend.Close()
		}
		if !o.keep {
			os.RemoveAll(dir)
		}
	}
	defer cleanup()
	// Ctrl-C, SIGTERM or the overall time bound: kill mailfront and leave.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sig:
			e.logf("%s: stopping", s)
		case <-time.After(o.timeout):
			e.logf("run took longer than -timeout %s: stopping", o.timeout)
		}
		cleanup()
		os.Exit(3)
	}()
	if o.keep {
		e.logf("keeping %s", dir)
	}

	// Two sockets per session here (client, backend), plus slack.
	limit, err := raiseFileLimit(uint64(2*o.sessions + 4096))
	if err != nil {
		e.logf("cannot raise the open-file limit: %v", err)
	}
	if need := uint64(2*o.sessions + 100); limit < need {
		e.logf("warning: open-file limit %d is below the %d this run needs (tool and mailfront each hold two sockets per session)", limit, need)
	}
	if e.pki, err = mintPKI(dir); err != nil {
		fmt.Fprintf(stderr, "mfload: %v\n", err)
		return 1
	}
	if e.backend, err = startBackend(); err != nil {
		fmt.Fprintf(stderr, "mfload: %v\n", err)
		return 1
	}
	rep := &report{opts: o, fileLimit: limit}
	modes := []string{o.mode}
	if o.mode == "all" {
		modes = []string{"greeting", "handshake", "bulk", "cipher", "idle"}
	}
	failed := false
	for _, m := range modes {
		if err := e.runMode(m, rep, stdout); err != nil {
			fmt.Fprintf(stderr, "mfload: %s: %v\n", m, err)
			if e.child != nil {
				fmt.Fprintf(stderr, "mailfront's last output:\n%s\n", e.child.stderrTail(15))
			}
			failed = true
		}
		e.stopChild()
	}
	rep.summary(stdout)
	if failed {
		return 1
	}
	return 0
}

// loadAverage is /proc/loadavg's first three fields: other work on the
// machine shows in wall-clock figures (MB/s, latency) far more than in CPU
// time per unit of work.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (e *runEnv) runMode(mode string, rep *report, out io.Writer) error {
	if mode == "cipher" {
		rep.loads = append(rep.loads, mode+" "+loadAverage())
		r, err := runCiphers(e, e.opts.cipherGB)
		if err != nil {
			return err
		}
		rep.ciphers = r
		printCiphers(out, r)
		return nil
	}
	switch mode {
	case "idle", "bulk", "handshake", "greeting":
	default:
		return fmt.Errorf("unknown mode %q (idle, bulk, handshake, greeting, cipher, all)", mode)
	}
	if err := e.startChild(); err != nil {
		return err
	}
	rep.loads = append(rep.loads, mode+" "+loadAverage())
	switch mode {
	case "idle":
		r, err := runIdle(e, e.opts.sessions, e.opts.concurrency, e.opts.settle)
		rep.idle = &r
		r.print(out)
		return err
	case "bulk":
		r, err := runBulk(e, e.opts.downMB*1e6, e.opts.upMB*1e6, e.opts.chunkMB*1e6, e.opts.bulkSessions, e.opts.bulkRepeat)
		rep.bulk = r
		printBulk(out, r)
		return err
	case "handshake":
		r, err := runHandshakes(e, e.opts.handshakes, e.opts.hsConc, e.opts.hsRepeat)
		rep.handshakes = r
		printHandshakes(out, r)
		return err
	default:
		r, err := runGreeting(e, e.opts.greetings)
		rep.greeting = r
		printGreeting(out, r)
		return err
	}
}
