package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/imapmem"
	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/proxy"
)

// safety bounds a test's wait for the proxy, so a broken test fails instead
// of hanging. It is never how a test synchronises.
const safety = 10 * time.Second

// proxyConfig says what startProxy builds. Zero values are defaults.
type proxyConfig struct {
	Backend string        // backend address (default: a fresh imapmem server)
	Limits  proxy.Limits  // pre-login limits of both listeners
	Login   time.Duration // backend login timeout
	Options Options
	Gate    proxy.Gate // nil: none
	Refusal string     // listeners' PlaintextRefusal
	// ClientAddress is the backend's client_address; "" is none here, so
	// that tests of the canonical login see nothing else.
	ClientAddress string
}

// proxyEnv is a running proxy.Server with an implicit TLS and a STARTTLS
// IMAP listener in front of one backend.
type proxyEnv struct {
	srv                *proxy.Server
	implicit, starttls *proxy.Listener
	backend            *proxy.Backend
	handler            *Handler
	mem                *imapmem.Server // when startProxy started one
	client             *tls.Config
	logs               *logtest.Recorder
	dials              atomic.Int64 // backend dials, counted before they happen
}

const (
	testUser     = "alice"
	testPassword = "s3cret pass\"word\\"
)

// startMem starts an imapmem backend with alice and the demo messages.
func startMem(t *testing.T) *imapmem.Server {
	t.Helper()
	mem := imapmem.New(map[string]string{testUser: testPassword, "bob": "bob-password"})
	for _, m := range imapmem.DemoMessages() {
		if err := mem.AddMessage(testUser, "INBOX", m); err != nil {
			t.Fatal(err)
		}
	}
	mem.Log = logtest.New(t, slog.LevelInfo).Logger()
	if err := mem.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return mem
}

func startProxy(t *testing.T, cfg proxyConfig) *proxyEnv {
	t.Helper()
	e := &proxyEnv{logs: logtest.New(t, levelTrace)}
	if cfg.Backend == "" {
		e.mem = startMem(t)
		cfg.Backend = e.mem.Addr
	}
	srvTLS, cliTLS := testTLS(t)
	e.client = cliTLS
	tell := proxy.ClientAddressNone
	if cfg.ClientAddress != "" {
		var ok bool
		if tell, ok = proxy.ParseClientAddress(cfg.ClientAddress); !ok {
			t.Fatalf("client address %q", cfg.ClientAddress)
		}
	}
	e.backend = &proxy.Backend{Address: cfg.Backend, Login: cfg.Login, Connect: cfg.Login, ClientAddress: tell,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			e.dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	if tell == proxy.ClientAddressLoopback {
		e.backend.Dial = nil // the engine's own dialer chooses the source
	}
	cfg.Options.Backend = e.backend
	e.handler = New(cfg.Options)
	listener := func(name string, mode proxy.TLSMode) *proxy.Listener {
		return &proxy.Listener{Name: name, Protocol: "imap", Address: "127.0.0.1:0", Mode: mode,
			TLS: srvTLS, Handler: e.handler, Limits: cfg.Limits,
			Refuse: e.handler.Refuse, PlaintextRefusal: cfg.Refusal}
	}
	e.implicit, e.starttls = listener("imaps", proxy.Implicit), listener("imap", proxy.STARTTLS)
	log := e.logs.Logger()
	e.srv = &proxy.Server{Listeners: []*proxy.Listener{e.implicit, e.starttls}, Log: log, Drain: time.Second, Gate: cfg.Gate}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.srv.Shutdown(context.Background()) })
	return e
}

// wire is a raw IMAP client.
type wire struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func newWire(t *testing.T, c net.Conn) *wire {
	t.Cleanup(func() { c.Close() })
	return &wire{t: t, c: c, r: bufio.NewReader(c)}
}

// dialPlain connects to the STARTTLS listener without reading anything.
func (e *proxyEnv) dialPlain(t *testing.T) *wire {
	t.Helper()
	c, err := net.Dial("tcp", e.starttls.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return newWire(t, c)
}

// greeted is a plaintext connection past the greeting.
func (e *proxyEnv) greeted(t *testing.T) *wire {
	t.Helper()
	w := e.dialPlain(t)
	w.expect("* OK [CAPABILITY ")
	return w
}

// tlsReady is a STARTTLS connection under TLS, ready for a command.
func (e *proxyEnv) tlsReady(t *testing.T) *wire {
	t.Helper()
	w := e.greeted(t)
	w.send("s STARTTLS\r\n")
	w.expect("s OK ")
	w.upgrade(e.client)
	return w
}

// ready is a connection past the greeting: under implicit TLS when tls,
// else in plaintext on the STARTTLS listener.
func (e *proxyEnv) ready(t *testing.T, tls bool) *wire {
	t.Helper()
	if tls {
		return e.implicitReady(t)
	}
	return e.greeted(t)
}

// implicitReady is an implicit TLS connection past the greeting.
func (e *proxyEnv) implicitReady(t *testing.T) *wire {
	t.Helper()
	c, err := tls.Dial("tcp", e.implicit.Addr().String(), e.client)
	if err != nil {
		t.Fatal(err)
	}
	w := newWire(t, c)
	w.expect("* OK [CAPABILITY ")
	return w
}

func (w *wire) upgrade(cfg *tls.Config) {
	w.t.Helper()
	if w.r.Buffered() > 0 {
		w.t.Fatalf("got %d bytes before the TLS handshake, want none", w.r.Buffered())
	}
	tc := tls.Client(w.c, cfg)
	tc.SetDeadline(time.Now().Add(safety))
	if err := tc.Handshake(); err != nil {
		w.t.Fatalf("tls handshake: %v", err)
	}
	tc.SetDeadline(time.Time{})
	w.c, w.r = tc, bufio.NewReader(tc)
}

func (w *wire) send(s string) {
	w.t.Helper()
	if _, err := io.WriteString(w.c, s); err != nil {
		w.t.Fatalf("send %q: %v", s, err)
	}
}

// line reads one line without its CRLF.
func (w *wire) line() string {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(safety))
	l, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: got %q, %v; want a line", l, err)
	}
	return strings.TrimRight(l, "\r\n")
}

// expect reads a line and checks its prefix.
func (w *wire) expect(prefix string) string {
	w.t.Helper()
	l := w.line()
	if !strings.HasPrefix(l, prefix) {
		w.t.Fatalf("got %q, want a line starting %q", l, prefix)
	}
	return l
}

// tagged reads lines up to and including the one tagged tag.
func (w *wire) tagged(tag string) []string {
	w.t.Helper()
	var lines []string
	for {
		l := w.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, tag+" ") {
			return lines
		}
	}
}

// closed reads until the proxy closes the connection and returns what came
// before: the close itself is the signal.
func (w *wire) closed() string {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(safety))
	b, err := io.ReadAll(w.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		w.t.Fatalf("connection still open after %v; got %q", safety, b)
	}
	return string(b)
}

// relayed checks that the session is in the relay: a command goes to the
// backend and its answer comes back. (It also orders the test's end after
// the engine has started the relay.)
func (w *wire) relayed() {
	w.t.Helper()
	w.send("r NOOP\r\n")
	w.expect("r OK")
}

// stillServes checks that the proxy accepts and greets a new connection.
func (e *proxyEnv) stillServes(t *testing.T) {
	t.Helper()
	w := e.implicitReady(t)
	w.send("h NOOP\r\n")
	w.expect("h OK")
}
