package metrics_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
	"github.com/mailfront/mailfront/internal/testpki"
	"github.com/mailfront/mailfront/metrics"
	"github.com/mailfront/mailfront/proxy"
	"github.com/prometheus/client_golang/prometheus"
)

// toyHandler is a line protocol: greeting "+ hi"; "plain" is refused as a
// login before TLS; "login USER PASS" asks the gate, then fails unless PASS
// is "hunter2", dials the backend and hands off.
type toyHandler struct{ be *proxy.Backend }

func (h toyHandler) Serve(ctx context.Context, s *proxy.Session) (*proxy.Handoff, error) {
	if err := s.Conn.WriteString("+ hi\r\n"); err != nil {
		return nil, err
	}
	for {
		line, err := s.Conn.ReadLine()
		if err != nil {
			return nil, err
		}
		f := strings.Fields(string(line))
		switch {
		case len(f) == 1 && f[0] == "plain":
			s.Conn.WriteString("- " + s.RefusePlaintext("plain", "", "tls first") + "\r\n")
		case len(f) == 3 && f[0] == "login":
			return toyLogin(ctx, s, h.be, f[1], f[2])
		default:
			s.Conn.WriteString("- what\r\n")
		}
	}
}

func toyLogin(ctx context.Context, s *proxy.Session, b *proxy.Backend, user, pass string) (*proxy.Handoff, error) {
	h, err := s.Login(ctx, user, pass, "toy", time.Minute, func() (*proxy.Conn, string, proxy.LoginResult, error) {
		if pass != "hunter2" {
			return nil, "", proxy.LoginFailed, errors.New("wrong password")
		}
		be, err := b.Open(ctx, nil)
		if err != nil {
			return nil, "", proxy.LoginBackendError, err
		}
		return be, "+ in\r\n", proxy.LoginOK, nil
	})
	var le *proxy.LoginError
	switch {
	case errors.Is(err, proxy.ErrLoginRefused):
		return nil, s.Conn.WriteString("- refused\r\n")
	case errors.As(err, &le) && le.Result == proxy.LoginFailed:
		return nil, s.Conn.WriteString("- no\r\n")
	case errors.As(err, &le):
		return nil, s.Conn.WriteString("- unavailable\r\n")
	}
	return h, err
}

// toyGate admits connections unless deny is set, refuses logins of users
// named mallory, and penalises a failure by a millisecond. It records the
// addresses it saw.
type toyGate struct {
	deny  atomic.Bool
	mu    sync.Mutex
	addrs []string
}

func (g *toyGate) Connect(_ string, addr netip.Addr) (proxy.Verdict, string, func()) {
	g.mu.Lock()
	g.addrs = append(g.addrs, addr.String())
	g.mu.Unlock()
	if g.deny.Load() {
		return proxy.Deny, "deny", nil
	}
	return proxy.Admit, "", func() {}
}

func (g *toyGate) Handshake(netip.Addr) bool { return true }

func (g *toyGate) Login(_ context.Context, _ netip.Addr, user, _ string) (func(proxy.LoginResult) time.Duration, error) {
	if strings.HasPrefix(user, "mallory") {
		return nil, proxy.ErrLoginRefused
	}
	return func(r proxy.LoginResult) time.Duration {
		if r == proxy.LoginFailed {
			return time.Millisecond
		}
		return 0
	}, nil
}

// echoBackend accepts connections and echoes what it reads.
func echoBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// deadAddress is a loopback address nothing listens on.
func deadAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type toyClient struct {
	net.Conn
	r *bufio.Reader
}

func (c *toyClient) say(t *testing.T, line, want string) {
	t.Helper()
	if line != "" {
		if _, err := io.WriteString(c, line+"\r\n"); err != nil {
			t.Fatalf("write %q: %v", line, err)
		}
	}
	got, err := c.r.ReadString('\n')
	if err != nil || strings.TrimRight(got, "\r\n") != want {
		t.Fatalf("after %q: got %q, %v; want %q", line, got, err, want)
	}
}

// closed waits for the server to close the connection.
func (c *toyClient) closed(t *testing.T) {
	t.Helper()
	if rest, err := io.ReadAll(c.r); len(rest) > 0 {
		t.Fatalf("got %q, %v; want the connection closed", rest, err)
	}
	c.Close()
}

func dialToy(t *testing.T, l *proxy.Listener, cfg *tls.Config) *toyClient {
	t.Helper()
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.Dial("tcp", l.Addr().String(), cfg)
	} else {
		c, err = net.Dial("tcp", l.Addr().String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &toyClient{Conn: c, r: bufio.NewReader(c)}
}

// TestEndToEndThroughProxy runs real sessions through package proxy with
// user names, passwords and a client address, and checks that the scrape
// counts them by outcome and carries none of them in a label.
func TestEndToEndThroughProxy(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	ca := testpki.NewCA(t)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "mail.example.org")}, MinVersion: tls.VersionTLS12}
	cliTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "mail.example.org"}
	gate := &toyGate{}
	imaps := &proxy.Listener{Name: "imaps", Protocol: "toy", Address: "127.0.0.1:0", Mode: proxy.Implicit, TLS: srvTLS,
		Handler: toyHandler{&proxy.Backend{Address: echoBackend(t)}}}
	plain := &proxy.Listener{Name: "plain", Protocol: "toy2", Address: "127.0.0.1:0", Mode: proxy.STARTTLS, TLS: srvTLS,
		Handler: toyHandler{&proxy.Backend{Address: deadAddress(t), DialFailed: func() { m.BackendDialFailed("toy2") }}}}
	srv := &proxy.Server{Listeners: []*proxy.Listener{imaps, plain}, Log: logtest.New(t, slog.LevelDebug).Logger(),
		Drain: 5 * time.Second, Gate: gate, Observer: m}
	for _, l := range srv.Listeners {
		m.AddListener(l.Name, l.Protocol)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })

	c := dialToy(t, imaps, cliTLS) // logs in and relays
	c.say(t, "", "+ hi")
	c.say(t, "login alice@example.org hunter2", "+ in")
	c.say(t, "ping", "ping")
	c.Close()

	c = dialToy(t, imaps, cliTLS) // wrong password
	c.say(t, "", "+ hi")
	c.say(t, "login bob@example.org wrong", "- no")
	c.closed(t)

	c = dialToy(t, imaps, cliTLS) // refused by the guard
	c.say(t, "", "+ hi")
	c.say(t, "login mallory@example.org hunter2", "- refused")
	c.closed(t)

	c = dialToy(t, imaps, nil) // plaintext on the implicit TLS listener
	io.WriteString(c, "login eve@example.org hunter2\r\n")
	c.closed(t)

	c = dialToy(t, plain, nil) // login before TLS, then the backend is down
	c.say(t, "", "+ hi")
	c.say(t, "plain", "- tls first")
	c.say(t, "login carol@example.org hunter2", "- unavailable")
	c.closed(t)

	gate.deny.Store(true)
	c = dialToy(t, imaps, nil) // denied at accept
	c.closed(t)

	// Shutdown returns once every session has ended and been observed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, reg)

	gate.mu.Lock()
	secrets := append([]string{"alice", "bob", "mallory", "eve", "carol", "example.org", "hunter2", "wrong"}, gate.addrs...)
	gate.mu.Unlock()
	if len(secrets) == 8 {
		t.Fatal("the gate saw no client address")
	}
	checkFamilies(t, fams, secrets...)

	tests := []struct {
		name   string
		labels labels
		want   float64
	}{
		{"mailfront_sessions_total", labels{"listener": "imaps", "outcome": "ok"}, 1},
		{"mailfront_sessions_total", labels{"listener": "imaps", "outcome": "auth-failed"}, 1},
		{"mailfront_sessions_total", labels{"listener": "imaps", "outcome": "refused"}, 1},
		{"mailfront_sessions_total", labels{"listener": "imaps", "outcome": "tls-failed"}, 1},
		{"mailfront_sessions_total", labels{"listener": "plain", "outcome": "backend-down"}, 1},
		{"mailfront_sessions_open", labels{"listener": "imaps", "phase": "pre_login"}, 0},
		{"mailfront_sessions_open", labels{"listener": "imaps", "phase": "relayed"}, 0},
		{"mailfront_sessions_open", labels{"listener": "plain", "phase": "pre_login"}, 0},
		{"mailfront_relayed_bytes_total", labels{"listener": "imaps", "direction": "client_to_backend"}, 6},
		{"mailfront_relayed_bytes_total", labels{"listener": "imaps", "direction": "backend_to_client"}, 6},
		{"mailfront_tls_handshake_failures_total", labels{"listener": "imaps", "reason": "not-tls"}, 1},
		{"mailfront_connections_refused_total", labels{"listener": "imaps", "reason": "deny"}, 1},
		{"mailfront_logins_total", labels{"protocol": "toy", "result": "ok"}, 1},
		{"mailfront_logins_total", labels{"protocol": "toy", "result": "failed"}, 1},
		{"mailfront_logins_total", labels{"protocol": "toy", "result": "refused"}, 1},
		{"mailfront_logins_total", labels{"protocol": "toy2", "result": "backend_error"}, 1},
		{"mailfront_plaintext_logins_refused_total", labels{"protocol": "toy2"}, 1},
		{"mailfront_backend_dial_failures_total", labels{"protocol": "toy2"}, 1},
	}
	for _, tt := range tests {
		if got := value(t, fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s: got %v, want %v", series(tt.name, tt.labels), got, tt.want)
		}
	}
	var handshakes float64
	for _, s := range fams["mailfront_tls_handshakes_total"].GetMetric() {
		if v := labelMap(s)["version"]; v != "TLS 1.3" {
			t.Errorf("handshake version: got %q, want TLS 1.3", v)
		}
		handshakes += s.GetCounter().GetValue()
	}
	if handshakes != 3 {
		t.Errorf("mailfront_tls_handshakes_total: got %v in all, want 3", handshakes)
	}
	if h := sample(fams, "mailfront_guard_delay_seconds", labels{}); h.GetHistogram().GetSampleCount() != 1 {
		t.Errorf("mailfront_guard_delay_seconds: got %d observations, want 1", h.GetHistogram().GetSampleCount())
	}
}
