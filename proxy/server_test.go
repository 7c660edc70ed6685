package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/logtest"
)

// lineHandler is a toy protocol: "+ hi" greeting; "tls" upgrades; "login"
// dials the backend and hands off; anything else is echoed.
type lineHandler struct{ be *Backend }

func (h lineHandler) Serve(ctx context.Context, s *Session) (*Handoff, error) {
	if err := s.Conn.WriteString("+ hi\r\n"); err != nil {
		return nil, err
	}
	for {
		line, err := s.Conn.ReadLine()
		if errors.Is(err, ErrShutdown) {
			s.Conn.WriteString("- shutting down\r\n")
			return nil, err
		}
		if err != nil {
			return nil, err
		}
		switch string(line) {
		case "tls":
			s.Conn.WriteString("+ go\r\n")
			if err := s.StartTLS(ctx); err != nil {
				return nil, err
			}
		case "login":
			be, err := h.be.Open(ctx, nil)
			if err != nil {
				s.Outcome = OutcomeBackendDown
				s.Conn.WriteString("- unavailable\r\n")
				continue
			}
			s.User = "u"
			s.Conn.WriteString("+ in\r\n")
			return &Handoff{Backend: be, Idle: time.Minute}, nil
		default:
			s.Conn.WriteString("echo " + string(line) + "\r\n")
		}
	}
}

func testLogger(t *testing.T) *slog.Logger { return logtest.New(t, slog.LevelDebug).Logger() }

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

func startServer(t *testing.T, mode TLSMode, maxConns int) (*Server, *Listener) {
	t.Helper()
	srvCfg, _ := serverTLS(t)
	l := &Listener{Name: "test", Protocol: "toy", Address: "127.0.0.1:0", Mode: mode, TLS: srvCfg,
		Handler: lineHandler{&Backend{Address: echoBackend(t)}}}
	s := &Server{Listeners: []*Listener{l}, Log: testLogger(t), MaxConns: maxConns, Drain: time.Second}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, l
}

type client struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, l *Listener) *client {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{Conn: c, r: bufio.NewReader(c)}
}

func (c *client) expect(t *testing.T, want string) {
	t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil || strings.TrimRight(line, "\r\n") != want {
		t.Fatalf("got %q, %v; want %q", line, err, want)
	}
}

func TestServerLoginAndRelay(t *testing.T) {
	t.Parallel()
	_, l := startServer(t, STARTTLS, 0)
	c := dial(t, l)
	c.expect(t, "+ hi")
	c.Write([]byte("login\r\nhello backend\r\n"))
	c.expect(t, "+ in")
	c.expect(t, "hello backend") // pipelined after login, echoed by the backend once
	c.Write([]byte("again\r\n"))
	c.expect(t, "again")
}

func TestServerMaxConnections(t *testing.T) {
	t.Parallel()
	_, l := startServer(t, STARTTLS, 1)
	first := dial(t, l)
	first.expect(t, "+ hi")
	second := dial(t, l)
	if _, err := second.r.ReadString('\n'); err == nil {
		t.Fatal("second connection was served past MaxConns 1")
	}
	first.Close()
	// The slot frees once the first session has ended.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c := dial(t, l)
		if line, err := c.r.ReadString('\n'); err == nil && line == "+ hi\r\n" {
			return
		}
	}
	t.Fatal("slot never freed")
}

func TestServerShutdownSaysGoodbyeAndDrains(t *testing.T) {
	t.Parallel()
	s, l := startServer(t, STARTTLS, 0)
	pre := dial(t, l)
	pre.expect(t, "+ hi")
	relayed := dial(t, l)
	relayed.expect(t, "+ hi")
	relayed.Write([]byte("login\r\n"))
	relayed.expect(t, "+ in")

	done := make(chan error, 1)
	go func() { done <- s.Shutdown(context.Background()) }()
	pre.expect(t, "- shutting down")
	// The relayed session keeps working during the drain period...
	relayed.Write([]byte("still here\r\n"))
	relayed.expect(t, "still here")
	// ...and is closed when it ends.
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := relayed.r.ReadString('\n'); err == nil {
		t.Fatal("relayed session still open after the drain")
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("listener still accepting after shutdown")
	}
}

func TestServerImplicitTLSHandshakeFailure(t *testing.T) {
	t.Parallel()
	_, l := startServer(t, Implicit, 0)
	c := dial(t, l)
	c.Write([]byte("not tls\r\n"))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Logf("read: %v", err)
	}
	// The server is still healthy.
	_, cliCfg := serverTLS(t)
	cliCfg.InsecureSkipVerify = true
	tc, err := tls.Dial("tcp", l.Addr().String(), cliCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	line, _ := bufio.NewReader(tc).ReadString('\n')
	if line != "+ hi\r\n" {
		t.Fatalf("got %q, want greeting", line)
	}
}

func TestServerBackendDown(t *testing.T) {
	t.Parallel()
	_, l := startServer(t, STARTTLS, 0)
	l.Handler.(lineHandler).be.Address = "127.0.0.1:1"
	c := dial(t, l)
	c.expect(t, "+ hi")
	c.Write([]byte("login\r\n"))
	c.expect(t, "- unavailable")
}

// TestStartNamesWhatToDo: a listener that cannot bind fails the start,
// every listener unbound, with what to do about it: a port in use (real)
// and a port below 1024 without the privilege.
func TestStartNamesWhatToDo(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srvCfg, _ := serverTLS(t)
	free := &Listener{Name: "free", Protocol: "toy", Address: "127.0.0.1:0", Mode: Implicit, TLS: srvCfg, Handler: lineHandler{}}
	busy := &Listener{Name: "busy", Protocol: "toy", Address: taken.Addr().String(), Mode: Implicit, TLS: srvCfg, Handler: lineHandler{}}
	s := &Server{Listeners: []*Listener{free, busy}, Log: testLogger(t)}
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), "(busy): ") || !strings.Contains(err.Error(), "another program listens on this address") {
		t.Fatalf("got %v, want the busy listener named and what to do", err)
	}
	if c, err := net.Dial("tcp", free.ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the free listener serves after a failed start")
	}
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	if hint := bindHint(":993", denied); !strings.Contains(hint, "CAP_NET_BIND_SERVICE") || !strings.Contains(hint, "setcap") {
		t.Errorf("port 993 denied: got %q", hint)
	}
	if hint := bindHint(":10993", denied); hint != "" {
		t.Errorf("port 10993 denied: got %q, want no privilege hint", hint)
	}
}
