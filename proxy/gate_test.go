package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
)

// fakeGate answers Connect with verdict, counts releases, refuses
// handshakes when noHandshake, and answers Login with wait and err.
type fakeGate struct {
	mu          sync.Mutex
	verdict     Verdict
	noHandshake bool
	wait        time.Duration
	loginErr    error
	addrs       []netip.Addr
	released    int
	results     []LoginResult
}

func (g *fakeGate) Connect(listener string, addr netip.Addr) (Verdict, string, func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addrs = append(g.addrs, addr)
	var once sync.Once
	return g.verdict, "test", func() { once.Do(func() { g.mu.Lock(); g.released++; g.mu.Unlock() }) }
}

func (g *fakeGate) Handshake(netip.Addr) bool { return !g.noHandshake }

func (g *fakeGate) Login(ctx context.Context, addr netip.Addr, user, password string) (func(LoginResult) time.Duration, error) {
	if g.loginErr != nil {
		return nil, g.loginErr
	}
	return func(r LoginResult) time.Duration {
		g.mu.Lock()
		g.results = append(g.results, r)
		g.mu.Unlock()
		return g.wait
	}, nil
}

func (g *fakeGate) releases() int { g.mu.Lock(); defer g.mu.Unlock(); return g.released }

// recorder is an Observer that keeps what it is told, as strings.
type recorder struct {
	mu     sync.Mutex
	events []string
	done   chan struct{} // gets a value at every SessionEnded
}

func newRecorder() *recorder { return &recorder{done: make(chan struct{}, 16)} }

func (r *recorder) add(e string) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }
func (r *recorder) has(e string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.events {
		if x == e {
			return true
		}
	}
	return false
}

func (r *recorder) hasPrefix(prefix string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.events {
		if strings.HasPrefix(x, prefix) {
			return true
		}
	}
	return false
}

// waitEnded waits for a session's end.
func (r *recorder) waitEnded(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("no session ended; events %q", r.events)
	}
}

func (r *recorder) ConnectionRefused(l, reason string) { r.add("refused " + l + " " + reason) }
func (r *recorder) SessionStarted(l string)            { r.add("started " + l) }
func (r *recorder) SessionRelayed(l string)            { r.add("relayed " + l) }
func (r *recorder) SessionEnded(l string, o Outcome, relayed bool, in, out int64) {
	r.add("ended " + l + " " + string(o))
	r.done <- struct{}{}
}
func (r *recorder) Handshake(l string, v, c uint16) {
	r.add("handshake " + l + " " + tls.VersionName(v))
}
func (r *recorder) HandshakeFailed(l, reason string)                 { r.add("handshake-failed " + l + " " + reason) }
func (r *recorder) Login(p string, res LoginResult, d time.Duration) { r.add("login " + p) }
func (r *recorder) LoginRefused(p string)                            { r.add("login-refused " + p) }
func (r *recorder) PlaintextRefused(p string)                        { r.add("plaintext-refused " + p) }
func (r *recorder) GuardDelay(d time.Duration)                       { r.add("delay") }
func (r *recorder) BackendDialFailed(p string)                       { r.add("dial-failed " + p) }
func (r *recorder) SelfTestFailed(shortcut string)                   { r.add("self-test-failed " + shortcut) }
func (r *recorder) ProxyHeader(listener, result string) {
	r.add("proxy-header " + listener + " " + result)
}

func startGated(t *testing.T, mode TLSMode, g Gate, obs Observer, refuse func(*Conn)) *Listener {
	t.Helper()
	srvCfg, _ := serverTLS(t)
	l := &Listener{Name: "gated", Protocol: "toy", Address: "127.0.0.1:0", Mode: mode, TLS: srvCfg,
		Handler: lineHandler{&Backend{Address: echoBackend(t)}}, Refuse: refuse}
	s := &Server{Listeners: []*Listener{l}, Log: testLogger(t), Drain: time.Second, Gate: g, Observer: obs}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return l
}

// TestGateRefusesBeforeHandshake: a connection the gate refuses on an
// implicit TLS listener is closed before the server says anything, so no
// handshake work is done; one it denies is closed the same way on a
// STARTTLS listener; one it refuses on a STARTTLS listener gets the
// protocol's goodbye instead of the greeting.
func TestGateRefusesBeforeHandshake(t *testing.T) {
	t.Parallel()
	goodbye := func(c *Conn) { c.WriteString("- go away\r\n") }
	tests := []struct {
		name    string
		mode    TLSMode
		verdict Verdict
		want    string // first line, "" for a close without a byte
	}{
		{"implicit refused", Implicit, Refuse, ""},
		{"implicit denied", Implicit, Deny, ""},
		{"starttls denied", STARTTLS, Deny, ""},
		{"starttls refused", STARTTLS, Refuse, "- go away"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := &fakeGate{verdict: tt.verdict}
			obs := newRecorder()
			l := startGated(t, tt.mode, g, obs, goodbye)
			c := dial(t, l)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if tt.want == "" {
				if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
					t.Fatalf("got %d bytes, %v; want a close without a byte (no ServerHello)", n, err)
				}
			} else {
				c.expect(t, tt.want)
			}
			if !obs.has("refused gated test") {
				t.Errorf("observer: got %q, want the refusal counted", obs.events)
			}
			if obs.has("started gated") {
				t.Error("a refused connection started a session")
			}
			if got := g.addrs[0]; got != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("gate asked about %v, want 127.0.0.1", got)
			}
		})
	}
}

// TestGateAdmitReleasesOnce: an admitted connection's release runs once
// when it ends, and the observer sees the session start, its handshake
// and its end.
func TestGateAdmitReleasesOnce(t *testing.T) {
	t.Parallel()
	g := &fakeGate{verdict: Admit}
	obs := newRecorder()
	l := startGated(t, Implicit, g, obs, nil)
	c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{InsecureSkipVerify: true}) // the chain is not this test's subject
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-obs.done
	if got := g.releases(); got != 1 {
		t.Errorf("got %d releases, want 1", got)
	}
	for _, e := range []string{"started gated", "handshake gated TLS 1.3", "ended gated client-closed"} {
		if !obs.has(e) {
			t.Errorf("observer: got %q, want %q", obs.events, e)
		}
	}
}

// TestGateRefusesStartTLSHandshake: when the gate refuses a STARTTLS
// handshake, Session.StartTLS returns ErrRefused without one.
func TestGateRefusesStartTLSHandshake(t *testing.T) {
	t.Parallel()
	g := &fakeGate{verdict: Admit, noHandshake: true}
	obs := newRecorder()
	l := startGated(t, STARTTLS, g, obs, nil)
	c := dial(t, l)
	c.expect(t, "+ hi")
	c.Write([]byte("tls\r\n"))
	c.expect(t, "+ go")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("got %d bytes, %v; want a close without a ServerHello", n, err)
	}
	<-obs.done
	if !obs.has("refused gated handshake rate") || !obs.has("ended gated refused") {
		t.Errorf("observer: got %q", obs.events)
	}
}

// TestLogin: a login's verdict reaches the gate and the observer, and is
// logged once; the gate's failure penalty is waited out before the verdict
// is returned, and the wait ends early with ErrShutdown when the server
// stops; a refusal by the gate is passed on without a backend login.
func TestLogin(t *testing.T) {
	t.Parallel()
	obs := newRecorder()
	logs := logtest.New(t, slog.LevelDebug)
	gate := &fakeGate{wait: 20 * time.Millisecond}
	c, _ := pair(t)
	s := &Session{Protocol: "toy", Observer: obs, Gate: gate, Conn: NewConn(c, Limits{}), Log: logs.Logger()}
	failed := errors.New("backend said no")
	attempts := 0
	attempt := func(r LoginResult, err error) Attempt {
		return func() (*Conn, string, LoginResult, error) { attempts++; return nil, "", r, err }
	}
	_, err := s.Login(context.Background(), "u", "p", "LOGIN", time.Minute, attempt(LoginFailed, failed))
	var le *LoginError
	if !errors.As(err, &le) || le.Result != LoginFailed || !errors.Is(err, failed) {
		t.Fatalf("got %v, want a LoginError for LoginFailed", err)
	}
	if !obs.has("login toy") || !obs.has("delay") {
		t.Errorf("observer: got %q", obs.events)
	}
	if len(gate.results) != 1 || gate.results[0] != LoginFailed {
		t.Errorf("gate got %v, want one LoginFailed", gate.results)
	}
	if got := logs.String(); !strings.Contains(got, `msg="login failed" user=u outcome=auth-failed method=LOGIN failures=1`) || s.Outcome != OutcomeAuthFailed {
		t.Errorf("outcome %q, log:\n%s\nwant one login failed line", s.Outcome, got)
	}

	s.Gate = &fakeGate{wait: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Login(ctx, "u", "p", "LOGIN", time.Minute, attempt(LoginFailed, failed)); !errors.Is(err, ErrShutdown) {
		t.Fatalf("login with a penalty after shutdown: got %v, want ErrShutdown", err)
	}

	attempts = 0
	s.Gate = &fakeGate{loginErr: ErrLoginRefused}
	if _, err := s.Login(context.Background(), "u", "p", "LOGIN", time.Minute, attempt(LoginOK, nil)); !errors.Is(err, ErrLoginRefused) {
		t.Fatalf("got %v, want ErrLoginRefused", err)
	}
	if !obs.has("login-refused toy") || attempts != 0 {
		t.Errorf("observer: got %q, %d attempts; want login-refused and none", obs.events, attempts)
	}
}

// TestHandshakeFailureReason checks the labels stay in their small set.
func TestHandshakeFailureReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{io.EOF, "client-closed"},
		{ErrShutdown, "shutdown"},
		{errors.New("tls: client offered only unsupported versions: [302 301]"), "protocol-version"},
		{errors.New("tls: no cipher suite supported by both client and server"), "no-shared-cipher"},
		{errors.New("tls: client requested unsupported application protocols ([smtp])"), "alpn"},
		{errors.New("tls: first record does not look like a TLS handshake"), "not-tls"},
		{errors.New("remote error: tls: bad certificate"), "client-alert"},
		{errors.New("something new"), "other"},
	}
	for _, tt := range tests {
		if got := HandshakeFailureReason(tt.err); got != tt.want {
			t.Errorf("%v: got %q, want %q", tt.err, got, tt.want)
		}
	}
}
