package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/internal/pop3mem"
	"github.com/mailfront/mailfront/internal/testpki"
	"github.com/mailfront/mailfront/proxy"
	"github.com/mailfront/mailfront/tlsconf"
)

// Test accounts. Passwords are distinctive so that a leak into the logs is
// easy to spot.
const (
	alicePassword = "alice-Secr3t-pw"
	wrongPassword = "wrong-Secr3t-pw"
)

var testUsers = map[string]string{"alice": alicePassword, "bob": "bob-Secr3t-pw"}

// ioTimeout is a safety net on test reads, never a synchronisation.
const ioTimeout = 10 * time.Second

// config is what startProxy builds.
type config struct {
	limits  proxy.Limits
	mem     pop3mem.Options
	login   time.Duration // backend login timeout
	idle    time.Duration // post-login idle
	now     func() time.Time
	forbid  bool   // fail the test if the backend is dialled
	address string // backend address instead of a pop3mem
	gate    proxy.Gate
	refusal string // listeners' PlaintextRefusal
	tell    proxy.ClientAddress
	edit    proxy.CapabilityEdit // the listener's capabilities key
}

type option func(*config)

func withLimits(l proxy.Limits) option        { return func(c *config) { c.limits = l } }
func withBackend(o pop3mem.Options) option    { return func(c *config) { c.mem = o } }
func withLoginTimeout(d time.Duration) option { return func(c *config) { c.login = d } }
func withIdle(d time.Duration) option         { return func(c *config) { c.idle = d } }
func withClock(now func() time.Time) option   { return func(c *config) { c.now = now } }
func withBackendAddress(a string) option      { return func(c *config) { c.address = a } }
func withGate(g proxy.Gate) option            { return func(c *config) { c.gate = g } }
func withRefusal(text string) option          { return func(c *config) { c.refusal = text } }
func withCapabilities(e proxy.CapabilityEdit) option {
	return func(c *config) { c.edit = e }
}
func withClientAddress(a proxy.ClientAddress) option {
	return func(c *config) { c.tell = a }
}

// forbidBackend makes any backend dial fail the test: nothing before a
// valid login under TLS may reach it (ARCHITECTURE.md invariants 1 and 4).
func forbidBackend() option { return func(c *config) { c.forbid = true } }

// fixture is a running proxy with an implicit TLS and a STARTTLS listener in
// front of one backend.
type fixture struct {
	srv       *proxy.Server
	implicit  *proxy.Listener
	starttls  *proxy.Listener
	mem       *pop3mem.Server // nil with withBackendAddress
	backend   *proxy.Backend
	handler   *Handler
	clientTLS *tls.Config
	logs      *logtest.Recorder

	dials    atomic.Int64
	down     atomic.Bool  // backend dials fail with connection refused
	sessions atomic.Int64 // client connections the test opened
}

// startProxy starts a pop3mem backend (alice has two messages) and a proxy
// in front of it, both stopped at cleanup.
func startProxy(t *testing.T, opts ...option) *fixture {
	t.Helper()
	cfg := config{}
	for _, o := range opts {
		o(&cfg)
	}
	f := &fixture{logs: logtest.New(t, levelTrace)}
	addr := cfg.address
	if addr == "" {
		if cfg.mem.Users == nil {
			cfg.mem.Users = testUsers
		}
		mem, err := pop3mem.ListenOptions("127.0.0.1:0", cfg.mem)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { mem.Close() })
		mem.AddMessage("alice", []byte("Subject: one\r\n\r\nfirst\r\n"))
		mem.AddMessage("alice", []byte("Subject: two\r\n\r\n.dotted\r\n"))
		f.mem, addr = mem, mem.Addr()
	}
	refused := closedPort(t)
	f.backend = &proxy.Backend{Address: addr, Login: cfg.login, Connect: 2 * time.Second, ClientAddress: cfg.tell,
		Dial: func(ctx context.Context, network, a string) (net.Conn, error) {
			f.dials.Add(1)
			if cfg.forbid {
				t.Errorf("backend dialled; the test forbids it")
				return nil, errors.New("test forbids backend dials")
			}
			if f.down.Load() {
				a = refused
			}
			var d net.Dialer
			return d.DialContext(ctx, network, a)
		}}
	h := New(Options{Backend: f.backend, Idle: cfg.idle, Now: cfg.now, Log: f.logs.Logger(), Capabilities: cfg.edit})
	f.handler = h
	srvTLS, cliTLS := testTLS(t)
	f.clientTLS = cliTLS
	f.implicit = &proxy.Listener{Name: "pop3s", Protocol: "pop3", Address: "127.0.0.1:0", Mode: proxy.Implicit,
		TLS: srvTLS, Handler: h, Limits: cfg.limits}
	f.starttls = &proxy.Listener{Name: "pop3", Protocol: "pop3", Address: "127.0.0.1:0", Mode: proxy.STARTTLS,
		TLS: srvTLS, Handler: h, Limits: cfg.limits, Refuse: h.Refuse, PlaintextRefusal: cfg.refusal}
	f.srv = &proxy.Server{Listeners: []*proxy.Listener{f.implicit, f.starttls}, Gate: cfg.gate, Drain: -1,
		Log: f.logs.Logger()}
	if err := f.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Clients were closed by their own cleanups; every session must
		// end on its own before shutdown, relays included.
		if n := int(f.sessions.Load()); n > 0 {
			f.logs.Wait(n, "session end")
		}
		ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
		defer cancel()
		f.srv.Shutdown(ctx)
		f.logs.MustNotContain(alicePassword, wrongPassword, "bob-Secr3t-pw")
	})
	return f
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// wire is a raw client connection.
type wire struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func newWire(t *testing.T, c net.Conn) *wire {
	t.Cleanup(func() { c.Close() })
	return &wire{t: t, conn: c, r: bufio.NewReader(c)}
}

// dialPlain connects to the STARTTLS listener without reading anything.
func (f *fixture) dialPlain(t *testing.T) *wire {
	t.Helper()
	c, err := net.Dial("tcp", f.starttls.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	f.sessions.Add(1)
	return newWire(t, c)
}

// greeted is a plaintext client on the STARTTLS listener past the greeting.
func (f *fixture) greeted(t *testing.T) *wire {
	t.Helper()
	w := f.dialPlain(t)
	w.expect(greeting)
	return w
}

// tlsReady is a client under TLS past the greeting: through STLS when
// mode is "stls", else on the implicit TLS listener.
// ready is a connection ready for a command: plaintext past the greeting
// ("plain"), or under TLS ("implicit", "stls"; see tlsReady).
func (f *fixture) ready(t *testing.T, mode string) *wire {
	t.Helper()
	if mode == "plain" {
		return f.greeted(t)
	}
	return f.tlsReady(t, mode)
}

func (f *fixture) tlsReady(t *testing.T, mode string) *wire {
	t.Helper()
	if mode == "stls" {
		w := f.greeted(t)
		w.send("STLS")
		w.expect("+OK Begin TLS negotiation")
		if err := w.upgrade(f.clientTLS); err != nil {
			t.Fatalf("stls handshake: %v", err)
		}
		return w
	}
	w := f.dialTLS(t)
	w.expect(greeting)
	return w
}

// dialTLS connects to the implicit TLS listener without reading anything.
func (f *fixture) dialTLS(t *testing.T) *wire {
	t.Helper()
	c, err := tls.Dial("tcp", f.implicit.Addr().String(), f.clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	f.sessions.Add(1)
	return newWire(t, c)
}

// modes are the two ways to reach TLS.
var modes = []string{"implicit", "stls"}

func (w *wire) send(lines ...string) {
	w.t.Helper()
	w.write(strings.Join(lines, "\r\n") + "\r\n")
}

func (w *wire) write(s string) {
	w.t.Helper()
	w.conn.SetWriteDeadline(time.Now().Add(ioTimeout))
	if _, err := w.conn.Write([]byte(s)); err != nil {
		w.t.Fatalf("write %q: %v", s, err)
	}
}

// line reads one line without its CRLF.
func (w *wire) line() string {
	w.t.Helper()
	w.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	l, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: got %q, %v; want a line", l, err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
}

// expect reads one line and checks it.
func (w *wire) expect(want string) {
	w.t.Helper()
	if got := w.line(); got != want {
		w.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectPrefix reads one line and checks how it starts.
func (w *wire) expectPrefix(want string) string {
	w.t.Helper()
	got := w.line()
	if !strings.HasPrefix(got, want) {
		w.t.Fatalf("got %q, want %q...", got, want)
	}
	return got
}

// multiline reads a multi-line body up to ".".
func (w *wire) multiline() []string {
	w.t.Helper()
	var out []string
	for {
		l := w.line()
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

// closed checks that the server closes the connection with nothing more
// to say.
func (w *wire) closed() {
	w.t.Helper()
	w.conn.SetReadDeadline(time.Now().Add(ioTimeout))
	rest, err := io.ReadAll(w.r)
	if len(rest) > 0 {
		w.t.Fatalf("got %q before close, want nothing", rest)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		w.t.Fatalf("connection still open after %v", ioTimeout)
	}
}

// upgrade runs a client TLS handshake over the connection.
func (w *wire) upgrade(cfg *tls.Config) error {
	if w.r.Buffered() > 0 {
		w.t.Fatalf("server sent %d bytes before the handshake", w.r.Buffered())
	}
	tc := tls.Client(w.conn, cfg)
	tc.SetDeadline(time.Now().Add(ioTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	w.conn, w.r = tc, bufio.NewReader(tc)
	return nil
}

// testTLS returns the proxy's TLS configuration, built by tlsconf as the
// command builds it, over a leaf for localhost minted now, and a client
// configuration that trusts it and offers ALPN "pop3".
func testTLS(t testing.TB) (srv, cli *tls.Config) {
	t.Helper()
	ca := testpki.NewCA(t)
	srv = tlsconf.NewWithCertificates(0, ca.Leaf(t, "localhost", "127.0.0.1")).Config("pop3")
	cli = &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"pop3"}}
	return srv, cli
}
