package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mailfront/mailfront/internal/logtest"
)

// TestTLSReleaseSelfTest: the self-test passes for the real release on
// this Go, and catches a release that drops bytes crypto/tls still holds.
func TestTLSReleaseSelfTest(t *testing.T) {
	t.Parallel()
	dropAll := func(c *tls.Conn) {
		*bufferAt(c, tlsBufs.rawInput) = bytes.Buffer{}
		*(*bytes.Reader)(unsafe.Add(unsafe.Pointer(c), tlsBufs.input)) = bytes.Reader{}
	}
	tests := []struct {
		name    string
		release func(*tls.Conn)
		wantErr bool
	}{
		{"release", releaseTLSBuffers, false},
		{"release dropping unread bytes", dropAll, true},
		{"release doing nothing", func(*tls.Conn) {}, true}, // the buffers must go
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tlsReleaseSelfTest(tt.release, 2*time.Second)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// startPathServer serves lineHandler on an implicit TLS listener with the
// relay path mode; selfTest, if not nil, replaces the TLS release's
// self-test.
func startPathServer(t *testing.T, mode RelayMode, selfTest func() error, obs Observer, logs *logtest.Recorder) (*Server, *Listener, *tls.Config) {
	t.Helper()
	srvCfg, cliCfg := serverTLS(t)
	l := &Listener{Name: "paths", Protocol: "toy", Address: "127.0.0.1:0", Mode: Implicit, TLS: srvCfg,
		Handler: lineHandler{&Backend{Address: echoBackend(t)}}}
	log := testLogger(t)
	if logs != nil {
		log = logs.Logger()
	}
	s := &Server{Listeners: []*Listener{l}, Log: log, Drain: time.Second, Relay: mode, Observer: obs, tlsSelfTest: selfTest}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, l, cliCfg
}

// echoThrough logs in through l and checks that megabytes sent at once
// come back from the echo backend byte for byte.
func echoThrough(t *testing.T, l *Listener, cliCfg *tls.Config) {
	t.Helper()
	c, err := tls.Dial("tcp", l.Addr().String(), cliCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	cl := &client{Conn: c, r: bufioReader(c)}
	cl.expect(t, "+ hi")
	c.Write([]byte("login\r\n"))
	cl.expect(t, "+ in")
	data := make([]byte, 3<<20)
	rand.Read(data)
	go c.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(cl.r, got); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the echo differs from what was sent")
	}
}

// Both relay paths carry a logged-in TLS session byte-exact through a
// Server, and the standard path runs crypto/tls directly on the socket.
func TestServerRelayPaths(t *testing.T) {
	t.Parallel()
	for _, p := range relayPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			s, l, cliCfg := startPathServer(t, p.opts.mode, nil, nil, nil)
			if s.relayOpts != p.opts {
				t.Fatalf("relay options %+v, want %+v", s.relayOpts, p.opts)
			}
			echoThrough(t, l, cliCfg)
		})
	}
	t.Run("standard TLS has no recordConn", func(t *testing.T) {
		t.Parallel()
		tlsRelay(t, context.Background(), relayOptions{mode: RelayStandard}, time.Minute, func(c *tls.Conn) {
			if _, ok := c.NetConn().(*net.TCPConn); !ok {
				t.Errorf("standard path: TLS over %T, want *net.TCPConn", c.NetConn())
			}
		})
	})
}

// A failed self-test turns the buffer release off, with one warning and
// one count, and sessions are relayed as before.
func TestServerWithoutTLSReleaseWhenSelfTestFails(t *testing.T) {
	t.Parallel()
	obs := newRecorder()
	logs := logtest.New(t, slog.LevelDebug)
	s, l, cliCfg := startPathServer(t, RelayOptimized, func() error { return errors.New("bytes changed on the way") }, obs, logs)
	if s.relayOpts.releaseTLS {
		t.Fatal("the buffer release is on after its self-test failed")
	}
	if !obs.has("self-test-failed " + ShortcutTLSBufferRelease) {
		t.Errorf("observer got %q, want the self-test failure counted", obs.events)
	}
	if n := logs.Count("level=WARN", "relaying without releasing crypto/tls buffers"); n != 1 {
		t.Errorf("got %d warnings, want 1", n)
	}
	echoThrough(t, l, cliCfg)
}

// A client's first line in another protocol is refused at once: an HTTP
// request line or an SMTP EHLO, and a TLS ClientHello on a plaintext
// connection without waiting for a line end. Later lines are not checked.
func TestReadLineRefusesOtherProtocols(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, send, want string // want: protocol, or "" for a line
	}{
		{"http", "GET / HTTP/1.1\r\nHost: mail.example.com\r\n\r\n", "http"},
		{"http post", "POST /login HTTP/1.0\r\n", "http"},
		{"http/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "http"},
		{"smtp ehlo", "EHLO client.example.com\r\n", "smtp"},
		{"smtp helo lower case", "helo x\r\n", "smtp"},
		{"tls client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "tls"},
		{"imap", "a1 CAPABILITY\r\n", ""},
		{"imap tag GET", "GET LOGIN alice secret\r\n", ""},
		{"pop3", "CAPA\r\n", ""},
		{"pop3 user named HTTP", "USER GET / HTTP\r\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cli, srv := pair(t)
			c := NewConn(srv, Limits{Idle: 10 * time.Second})
			c.sniff = true
			cli.Write([]byte(tt.send))
			line, err := c.ReadLine()
			var ce *CrossProtocolError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want the line", err)
			case tt.want != "" && (!errors.As(err, &ce) || ce.Protocol != tt.want || !errors.Is(err, ErrCrossProtocol)):
				t.Fatalf("got %q, %v; want a %s CrossProtocolError", line, err, tt.want)
			}
		})
	}
	t.Run("only the first line", func(t *testing.T) {
		t.Parallel()
		cli, srv := pair(t)
		c := NewConn(srv, Limits{Idle: 10 * time.Second})
		c.sniff = true
		cli.Write([]byte("a1 NOOP\r\nGET / HTTP/1.1\r\n"))
		for _, want := range []string{"a1 NOOP", "GET / HTTP/1.1"} {
			if line, err := c.ReadLine(); err != nil || string(line) != want {
				t.Fatalf("got %q, %v; want %q", line, err, want)
			}
		}
	})
}

// startObserved serves lineHandler on a STARTTLS listener named name,
// reporting to obs.
func startObserved(t *testing.T, name string, obs Observer) *Listener {
	t.Helper()
	srvCfg, _ := serverTLS(t)
	l := &Listener{Name: name, Protocol: "toy", Address: "127.0.0.1:0", Mode: STARTTLS, TLS: srvCfg,
		Handler: lineHandler{&Backend{Address: echoBackend(t)}}}
	s := &Server{Listeners: []*Listener{l}, Log: testLogger(t), Drain: time.Second, Observer: obs}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return l
}

// Through the engine: a browser's request to a STARTTLS port gets the
// greeting, then the connection ends with outcome protocol-error.
func TestServerClosesCrossProtocol(t *testing.T) {
	t.Parallel()
	obs := newRecorder()
	c := dial(t, startObserved(t, "cross", obs))
	c.expect(t, "+ hi")
	c.Write([]byte("POST / HTTP/1.1\r\nHost: mail.example.com\r\nContent-Length: 20\r\n\r\na LOGIN alice secret"))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if rest, err := io.ReadAll(c.r); err != nil || len(rest) != 0 {
		t.Fatalf("got %q, %v; want the connection closed", rest, err)
	}
	<-obs.done
	if !obs.has("ended cross " + string(OutcomeProtocolError)) {
		t.Fatalf("observer got %q, want outcome %s", obs.events, OutcomeProtocolError)
	}
}

// TestOutcomeOf: how a session that ended with an error and no outcome of
// its handler is counted. A reset or a broken pipe is the client leaving,
// not a bug.
func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	pipe := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	tests := []struct {
		name string
		err  error
		want Outcome
	}{
		{"nil", nil, OutcomeClientClosed},
		{"eof", io.EOF, OutcomeClientClosed},
		{"reset", reset, OutcomeClientClosed},
		{"broken pipe", errWrap(pipe), OutcomeClientClosed},
		{"closed", net.ErrClosed, OutcomeClientClosed},
		{"shutdown", errWrap(ErrShutdown), OutcomeShutdown},
		{"idle", ErrIdle, OutcomeTimeout},
		{"line", &LimitError{Kind: LimitLine, Max: 1}, OutcomeLimit},
		{"invalid", &LimitError{Kind: LimitInvalidCommands, Max: 1}, OutcomeProtocolError},
		{"cross protocol", &CrossProtocolError{Protocol: "http"}, OutcomeProtocolError},
		{"alert after the handshake", &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, OutcomeTLSFailed},
		{"something else", errors.New("unexpected"), OutcomeInternal},
	}
	for _, tt := range tests {
		if got := outcomeOf(tt.err); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

func errWrap(err error) error { return fmt.Errorf("read: %w", err) }

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// A client that resets its connection is a client that went away
// (client-closed), not a bug (internal-error): under a scan, resets are
// the common end of a session.
func TestServerClientResetIsClientClosed(t *testing.T) {
	t.Parallel()
	obs := newRecorder()
	c := dial(t, startObserved(t, "reset", obs))
	c.expect(t, "+ hi")
	c.Write([]byte("a half line")) // unread when the reset comes
	tc := c.Conn.(*net.TCPConn)
	tc.SetLinger(0)
	tc.Close()
	<-obs.done
	if !obs.has("ended reset " + string(OutcomeClientClosed)) {
		t.Fatalf("observer got %q, want outcome %s", obs.events, OutcomeClientClosed)
	}
}
