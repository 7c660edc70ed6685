package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/mailfront/mailfront/internal/logtest"
)

// startProxied serves lineHandler on a listener that trusts the given
// balancers, with a gate that admits all and records what it is asked
// about, an observer and a log recorder.
func startProxied(t *testing.T, mode TLSMode, trusted string, timeout time.Duration) (*Listener, *fakeGate, *recorder, *logtest.Recorder, *tls.Config) {
	t.Helper()
	srvCfg, cliCfg := serverTLS(t)
	logs := logtest.New(t, slog.LevelDebug)
	l := &Listener{Name: "lb", Protocol: "toy", Address: "127.0.0.1:0", Mode: mode, TLS: srvCfg,
		Handler:       lineHandler{&Backend{Address: echoBackend(t)}},
		ProxyProtocol: ProxyProtocol{Trusted: []netip.Prefix{netip.MustParsePrefix(trusted)}, Timeout: timeout}}
	g, obs := &fakeGate{}, newRecorder()
	s := &Server{Listeners: []*Listener{l}, Log: logs.Logger(), Drain: time.Second, Gate: g, Observer: obs}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return l, g, obs, logs, cliCfg
}

// firstWrite sends prefix in the same write (one segment on loopback) as
// the connection's first bytes.
type firstWrite struct {
	net.Conn
	prefix []byte
}

func (c *firstWrite) Write(p []byte) (int, error) {
	if c.prefix == nil {
		return c.Conn.Write(p)
	}
	b := append(c.prefix, p...)
	c.prefix = nil
	if _, err := c.Conn.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

func v2Header(t testing.TB, src, dst string) []byte {
	return mustFormat(t, proxyproto.HeaderProxyFromAddrs(2, tcp(src), tcp(dst)))
}

// TestProxiedClient: through a trusted balancer, the client the header
// names is the client everywhere (the gate, the log's remote, with the
// balancer as via), and nothing sent with the header is lost: a command
// (STARTTLS listener) or a ClientHello (implicit TLS) in the same segment.
func TestProxiedClient(t *testing.T) {
	t.Parallel()
	t.Run("starttls, v1 and a command in one segment", func(t *testing.T) {
		t.Parallel()
		l, g, obs, logs, _ := startProxied(t, STARTTLS, "127.0.0.0/8", 0)
		c := dial(t, l)
		c.Write([]byte("PROXY TCP4 203.0.113.7 192.0.2.10 51234 143\r\nhello\r\n"))
		c.expect(t, "+ hi")
		c.expect(t, "echo hello")
		c.Close()
		obs.waitEnded(t)
		if got := g.addrs; len(got) != 1 || got[0] != netip.MustParseAddr("203.0.113.7") {
			t.Errorf("gate asked about %v, want [203.0.113.7]", got)
		}
		line := logs.Wait(1, `msg="session end"`)
		if !strings.Contains(line, "remote=203.0.113.7:51234 via=127.0.0.1:") {
			t.Errorf("session end: %s; want remote= the client and via= the balancer", line)
		}
		if !obs.has("proxy-header lb ok") {
			t.Errorf("observer: %q, want the header counted", obs.events)
		}
	})
	t.Run("implicit, v2 and a ClientHello in one segment", func(t *testing.T) {
		t.Parallel()
		l, g, obs, logs, cliCfg := startProxied(t, Implicit, "127.0.0.1/32", 0)
		raw, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		tc := tls.Client(&firstWrite{Conn: raw, prefix: v2Header(t, "[2001:db8::7]:40000", "[2001:db8::1]:993")}, cliCfg)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			t.Fatalf("handshake after the header: %v", err)
		}
		line, err := readLine(tc)
		if err != nil || line != "+ hi" {
			t.Fatalf("got %q, %v; want the greeting", line, err)
		}
		tc.Close()
		obs.waitEnded(t)
		if got := g.addrs; len(got) != 1 || got[0] != netip.MustParseAddr("2001:db8::7") {
			t.Errorf("gate asked about %v, want [2001:db8::7]", got)
		}
		if line := logs.Wait(1, `msg="session end"`); !strings.Contains(line, "remote=[2001:db8::7]:40000 via=127.0.0.1:") {
			t.Errorf("session end: %s; want remote= the client and via= the balancer", line)
		}
	})
	t.Run("v2 LOCAL is the balancer itself", func(t *testing.T) {
		t.Parallel()
		l, g, obs, logs, _ := startProxied(t, STARTTLS, "127.0.0.0/8", 0)
		c := dial(t, l)
		c.Write(mustFormat(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}))
		c.expect(t, "+ hi")
		c.Close()
		obs.waitEnded(t)
		if got := g.addrs; len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
			t.Errorf("gate asked about %v, want the balancer [127.0.0.1]", got)
		}
		if line := logs.Wait(1, `msg="session end"`); strings.Contains(line, "via=") {
			t.Errorf("session end: %s; want no via for the balancer's own connection", line)
		}
		if !obs.has("proxy-header lb local") {
			t.Errorf("observer: %q, want a local header counted", obs.events)
		}
	})
}

// TestBalancerHealthCheck: a balancer's own connection (v2 LOCAL, or a v1
// header naming the connection's own peer, as HAProxy's checks send) that
// closes after its header is logged at debug level, as client-closed, and
// is no TLS failure.
func TestBalancerHealthCheck(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"v2 local", "v1 own address"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			l, g, obs, logs, _ := startProxied(t, Implicit, "127.0.0.0/8", 0)
			c := dial(t, l)
			hdr := mustFormat(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC})
			if v == "v1 own address" {
				own := c.LocalAddr().(*net.TCPAddr)
				hdr = []byte(fmt.Sprintf("PROXY TCP4 %s %s %d %d\r\n", own.IP, l.Addr().(*net.TCPAddr).IP, own.Port, l.Addr().(*net.TCPAddr).Port))
			}
			c.Write(hdr)
			c.Conn.(*net.TCPConn).CloseWrite()
			if b, err := closedWithoutAWord(c); err != nil {
				t.Fatalf("got %q, %v; want a close", b, err)
			}
			obs.waitEnded(t)
			line := logs.Wait(1, `msg="session end"`)
			if !strings.Contains(line, "level=DEBUG") || !strings.Contains(line, "outcome=client-closed") || strings.Contains(line, "via=") {
				t.Errorf("session end: %s; want a debug line, client-closed, no via", line)
			}
			if obs.hasPrefix("handshake-failed") || !obs.has("proxy-header lb local") {
				t.Errorf("observer: %q; want a local header and no TLS failure", obs.events)
			}
			if got := g.addrs; len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("gate asked about %v, want the balancer", got)
			}
		})
	}
}

// TestProxyHeaderRefused: from a trusted source, a connection without a
// valid header is closed before the session starts (no greeting, no
// handshake), logged and counted; the gate is never asked about the
// balancer.
func TestProxyHeaderRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mode   TLSMode
		send   []byte // nil: nothing
		close  bool   // close after sending
		result string
	}{
		{"a direct TLS client", Implicit, clientHello, false, HeaderMissing},
		{"a direct client waiting for the greeting", STARTTLS, nil, false, HeaderMissing},
		{"a header cut short", STARTTLS, []byte("PROXY TCP4 203.0.113.7 "), false, HeaderTimeout},
		{"garbage", STARTTLS, []byte("PROXY TCP9 what is this\r\n"), false, HeaderMalformed},
		{"a health check that only connects", Implicit, nil, true, HeaderEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, g, obs, logs, _ := startProxied(t, tt.mode, "127.0.0.0/8", 300*time.Millisecond)
			c := dial(t, l)
			if tt.send != nil {
				c.Write(tt.send)
			}
			if tt.close {
				c.Conn.(*net.TCPConn).CloseWrite()
			}
			if b, err := closedWithoutAWord(c); err != nil {
				t.Fatalf("got %q, %v; want a close without a byte", b, err)
			}
			line := logs.Wait(1, `msg="PROXY header refused"`, "reason="+tt.result)
			if want := "level=WARN"; tt.result != HeaderEmpty && !strings.Contains(line, want) {
				t.Errorf("log: %s; want %s", line, want)
			}
			if !obs.has("proxy-header lb " + tt.result) {
				t.Errorf("observer: %q, want proxy-header lb %s", obs.events, tt.result)
			}
			if obs.has("started lb") || len(g.addrs) != 0 {
				t.Errorf("a refused header started a session (%q) or asked the gate (%v)", obs.events, g.addrs)
			}
		})
	}
}

// TestProxyHeaderUntrusted: a PROXY header from a source the listener does
// not trust is an attempt to speak for clients; it is refused (with the
// protocol's line on a STARTTLS listener, without a word on an implicit
// TLS one), counted as untrusted rather than as a TLS failure, and the
// session ends as a protocol error.
func TestProxyHeaderUntrusted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		mode   TLSMode
		header []byte
	}{
		{"starttls v1", STARTTLS, []byte("PROXY TCP4 203.0.113.7 192.0.2.10 51234 143\r\n")},
		{"starttls v2", STARTTLS, v2Header(t, "203.0.113.7:51234", "192.0.2.10:143")},
		{"implicit v1", Implicit, []byte("PROXY TCP4 203.0.113.7 192.0.2.10 51234 993\r\n")},
		{"implicit v2", Implicit, v2Header(t, "203.0.113.7:51234", "192.0.2.10:993")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, g, obs, logs, _ := startProxied(t, tt.mode, "10.0.0.0/8", 0)
			c := dial(t, l)
			if tt.mode == STARTTLS {
				c.expect(t, "+ hi")
			}
			c.Write(tt.header)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if b, err := io.ReadAll(c.r); len(b) != 0 || err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("got %q, %v; want the connection closed", b, err)
			}
			obs.waitEnded(t)
			logs.Wait(1, `msg="PROXY header refused"`, "reason=untrusted")
			if line := logs.Wait(1, `msg="session end"`); !strings.Contains(line, "outcome=protocol-error") || !strings.Contains(line, "remote=127.0.0.1:") {
				t.Errorf("session end: %s; want outcome=protocol-error from the real peer", line)
			}
			if !obs.has("proxy-header lb untrusted") || obs.hasPrefix("handshake-failed") {
				t.Errorf("observer: %q, want an untrusted header and no TLS failure", obs.events)
			}
			if got := g.addrs; len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("gate asked about %v, want the real peer", got)
			}
		})
	}
}

// TestProxyHeaderShutdown: a connection waiting for its header does not
// hold a shutdown up.
func TestProxyHeaderShutdown(t *testing.T) {
	t.Parallel()
	srvCfg, _ := serverTLS(t)
	l := &Listener{Name: "lb", Protocol: "toy", Address: "127.0.0.1:0", Mode: Implicit, TLS: srvCfg,
		Handler:       lineHandler{&Backend{Address: echoBackend(t)}},
		ProxyProtocol: ProxyProtocol{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Timeout: time.Hour}}
	logs := logtest.New(t, slog.LevelDebug)
	s := &Server{Listeners: []*Listener{l}, Log: logs.Logger(), Drain: time.Second}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, l)
	c.Write([]byte("PROXY TCP4 "))
	for s.conns.Load() == 0 { // accepted: on its way to the header's reader
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with a header pending: %v", err)
	}
	if b, err := closedWithoutAWord(c); err != nil {
		t.Fatalf("got %q, %v; want a close", b, err)
	}
	logs.MustNotContain("PROXY header refused")
}

// closedWithoutAWord reads until the server closes c and returns an error
// unless it closed without sending a byte: an end of stream, or a reset
// (the server closed with the client's bytes unread).
func closedWithoutAWord(c *client) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c.r)
	if errors.Is(err, syscall.ECONNRESET) {
		err = nil
	}
	if err == nil && len(b) > 0 {
		err = errors.New("bytes before the close")
	}
	return b, err
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return strings.TrimRight(string(b), "\r"), nil
		}
		b = append(b, one[0])
	}
}
