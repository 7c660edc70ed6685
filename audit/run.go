package audit

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// probesPerPort bounds one port's connections at a time.
const probesPerPort = 4

// Run checks every port of opts.Host and returns the report. It never
// takes longer than opts.Deadline; the report's Error says why the check
// could not run at all (the name does not resolve, nothing answered).
func Run(ctx context.Context, opts Options) *Report {
	opts = opts.withDefaults()
	r := &Report{Host: opts.Host, Name: opts.Name, Started: opts.Now(), FailOn: opts.FailOn}
	begin := time.Now()
	defer func() { r.Elapsed = time.Since(begin) }()
	ctx, cancel := context.WithTimeout(ctx, opts.Deadline)
	defer cancel()

	addr, err := resolve(ctx, opts)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Address = addr
	user := "mfcheck-" + randomHex(4)
	targets := make([]*target, len(opts.Ports))
	var wg sync.WaitGroup
	for i, p := range opts.Ports {
		targets[i] = newTarget(ctx, opts, addr, p, user)
		wg.Go(targets[i].run)
	}
	wg.Wait()
	if opts.ProbeGuard {
		probeGuards(targets)
	}
	for _, t := range targets {
		r.Ports = append(r.Ports, t.result())
		if t.loginSent {
			r.Throwaway = user
		}
	}
	if !anyService(r.Ports) {
		r.Error = fmt.Sprintf("nothing on %s answered as IMAP, POP3 or SMTP on ports %s: check the address and the ports, and that this machine may connect to them", addr, portList(opts.Ports))
	}
	return r
}

// resolve returns the address to check: Host itself, or the first
// address its name resolves to.
func resolve(ctx context.Context, opts Options) (string, error) {
	if ip := net.ParseIP(opts.Host); ip != nil {
		return ip.String(), nil
	}
	if opts.Host == "" {
		return "", errors.New("no host given")
	}
	lctx, cancel := context.WithTimeout(ctx, opts.StepTimeout)
	defer cancel()
	addrs, err := opts.LookupHost(lctx, opts.Host)
	if err != nil || len(addrs) == 0 {
		var dnsErr *net.DNSError
		why := "no address"
		switch {
		case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
			why = "no such name"
		case errors.As(err, &dnsErr) && dnsErr.IsTimeout, errors.Is(err, context.DeadlineExceeded):
			why = fmt.Sprintf("no answer from DNS within %v", opts.StepTimeout)
		case err != nil:
			why = "DNS lookup failed"
		}
		return "", fmt.Errorf("resolve %s: %s: check the name, or give an address", opts.Host, why)
	}
	return addrs[0], nil
}

func anyService(ports []PortResult) bool {
	for _, p := range ports {
		if p.Answered {
			return true
		}
	}
	return false
}

func portList(ports []Port) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p.Number)
	}
	return strings.Join(s, ", ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// target is one port being checked, and its findings so far. Probes run
// in parallel, at most probesPerPort at a time, and add their findings.
type target struct {
	ctx   context.Context
	addr  string // ip:port
	port  int
	kind  Kind   // what it speaks, once known
	how   string // how the kind was known
	name  string // the certificate name
	sni   string // the SNI sent: name, or empty when name is an address
	step  time.Duration
	roots *x509.CertPool
	now   time.Time
	user  string // the throwaway user
	sem   chan struct{}

	mu        sync.Mutex
	findings  []Finding
	answered  bool // something answered as kind
	tlsOK     bool // the main TLS connection worked and spoke the protocol
	loginSent bool // a throwaway login was sent
}

func newTarget(ctx context.Context, opts Options, addr string, p Port, user string) *target {
	t := &target{
		ctx: ctx, addr: net.JoinHostPort(addr, strconv.Itoa(p.Number)), port: p.Number, kind: p.Kind,
		name: opts.Name, step: opts.StepTimeout, roots: opts.Roots, now: opts.Now(), user: user,
		sem: make(chan struct{}, probesPerPort),
	}
	if net.ParseIP(opts.Name) == nil {
		t.sni = opts.Name
	}
	return t
}

// add records a finding; a second one for the same id replaces the first.
func (t *target) add(id string, sev Severity, seen, fix string) {
	t.addFinding(Finding{ID: id, Severity: sev, Seen: seen, Fix: fix})
}

func (t *target) addFinding(f Finding) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.Port, f.TestSSL = t.port, testsslID(f.ID)
	for i := range t.findings {
		if t.findings[i].ID == f.ID {
			t.findings[i] = f
			return
		}
	}
	t.findings = append(t.findings, f)
}

// sentLogin records that a throwaway login was sent, which the report
// says.
func (t *target) sentLogin() {
	t.mu.Lock()
	t.loginSent = true
	t.mu.Unlock()
}

// greeted records that the port answered as its kind.
func (t *target) greeted() {
	t.mu.Lock()
	t.answered = true
	t.mu.Unlock()
}

func (t *target) result() PortResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	fs := t.findings
	for i := range fs {
		fs[i].Service = t.kind
	}
	sortFindings(fs)
	return PortResult{Port: t.port, Kind: t.kind, How: t.how, Answered: t.answered, Findings: fs}
}

// parallel runs fns at once, at most probesPerPort at a time, and waits
// for all of them.
func (t *target) parallel(fns ...func()) {
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Go(func() {
			t.sem <- struct{}{}
			defer func() { <-t.sem }()
			fn()
		})
	}
	wg.Wait()
}

// dial connects to the port within one step.
func (t *target) dial() (*conn, error) { return dial(t.ctx, t.addr, t.step) }

// run checks the port: what it is, then the checks for its kind.
func (t *target) run() {
	if !t.recognise() {
		return
	}
	if t.kind.implicitTLS() {
		t.runImplicit()
		return
	}
	t.runSTARTTLS()
}
