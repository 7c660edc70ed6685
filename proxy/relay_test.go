package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// relayPaths are the relay's two paths. Every relay test runs on both: the
// standard one is the reference, the optimized one must behave the same.
var relayPaths = []struct {
	name string
	opts relayOptions
}{
	{"standard", relayOptions{mode: RelayStandard}},
	{"optimized", relayOptions{mode: RelayOptimized, releaseTLS: true}},
}

// onBothPaths runs test as a subtest on each relay path.
func onBothPaths(t *testing.T, test func(t *testing.T, opts relayOptions)) {
	for _, p := range relayPaths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			test(t, p.opts)
		})
	}
}

// relaySync runs a relay to its end.
func relaySync(ctx context.Context, opts relayOptions, client, backend net.Conn, toBackend, toClient []byte, idle time.Duration) (RelayStats, error) {
	type result struct {
		st  RelayStats
		err error
	}
	done := make(chan result, 1)
	runRelay(ctx, opts, client, backend, toBackend, toClient, idle, nil, func(st RelayStats, err error) {
		done <- result{st, err}
	})
	r := <-done
	return r.st, r.err
}

type relayRun struct {
	client  net.Conn // the client's end
	backend net.Conn // the backend's end
	done    chan error
}

// startRelay relays between a plain client and a plain backend, both real
// loopback sockets.
func startRelay(t *testing.T, ctx context.Context, opts relayOptions, toBackend, toClient string, idle time.Duration) *relayRun {
	t.Helper()
	cli, cliProxy := pair(t)
	beProxy, be := pair(t)
	r := &relayRun{client: cli, backend: be, done: make(chan error, 1)}
	go func() {
		_, err := relaySync(ctx, opts, cliProxy, beProxy, []byte(toBackend), []byte(toClient), idle)
		r.done <- err
	}()
	return r
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return string(buf)
}

func TestRelayPendingFirstThenBothWays(t *testing.T) {
	t.Parallel()
	onBothPaths(t, func(t *testing.T, opts relayOptions) {
		r := startRelay(t, context.Background(), opts, "b SELECT INBOX\r\n", "* 1 EXISTS\r\n", time.Minute)
		if got := readN(t, r.backend, 16); got != "b SELECT INBOX\r\n" {
			t.Fatalf("backend got %q, want the pipelined command", got)
		}
		if got := readN(t, r.client, 12); got != "* 1 EXISTS\r\n" {
			t.Fatalf("client got %q, want the backend's buffered bytes", got)
		}
		r.client.Write([]byte("ping"))
		if got := readN(t, r.backend, 4); got != "ping" {
			t.Fatalf("backend got %q, want ping", got)
		}
		r.backend.Write([]byte("pong"))
		if got := readN(t, r.client, 4); got != "pong" {
			t.Fatalf("client got %q, want pong", got)
		}
	})
}

// The client half-closes: the backend sees EOF, can still answer, and its
// close ends the session.
func TestRelayHalfCloseFromClient(t *testing.T) {
	t.Parallel()
	onBothPaths(t, func(t *testing.T, opts relayOptions) {
		r := startRelay(t, context.Background(), opts, "", "", time.Minute)
		r.client.Write([]byte("a LOGOUT\r\n"))
		r.client.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(r.backend)
		if err != nil || string(got) != "a LOGOUT\r\n" {
			t.Fatalf("backend got %q, %v; want the command then EOF", got, err)
		}
		r.backend.Write([]byte("* BYE\r\na OK\r\n"))
		r.backend.Close()
		got, err = io.ReadAll(r.client)
		if err != nil || string(got) != "* BYE\r\na OK\r\n" {
			t.Fatalf("client got %q, %v; want the reply then EOF", got, err)
		}
		if err := <-r.done; err != nil {
			t.Fatalf("relay: %v", err)
		}
	})
}

func TestRelayHalfCloseFromBackend(t *testing.T) {
	t.Parallel()
	onBothPaths(t, func(t *testing.T, opts relayOptions) {
		r := startRelay(t, context.Background(), opts, "", "", time.Minute)
		r.backend.Write([]byte("+OK bye\r\n"))
		r.backend.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(r.client)
		if err != nil || string(got) != "+OK bye\r\n" {
			t.Fatalf("client got %q, %v", got, err)
		}
		r.client.Write([]byte("late"))
		r.client.Close()
		got, _ = io.ReadAll(r.backend)
		if string(got) != "late" {
			t.Fatalf("backend got %q, want late", got)
		}
		if err := <-r.done; err != nil {
			t.Fatalf("relay: %v", err)
		}
	})
}

func TestRelayIdleTimeout(t *testing.T) {
	t.Parallel()
	onBothPaths(t, func(t *testing.T, opts relayOptions) {
		r := startRelay(t, context.Background(), opts, "", "", 100*time.Millisecond)
		if err := <-r.done; !errors.Is(err, errRelayIdle) {
			t.Fatalf("got %v, want idle timeout", err)
		}
		if _, err := r.client.Read(make([]byte, 1)); err == nil {
			t.Fatal("client connection still open after idle timeout")
		}
	})
}

// Traffic in one direction keeps the whole session alive (IMAP IDLE: the
// server talks, the client is silent).
func TestRelayIdleCountsBothDirections(t *testing.T) {
	t.Parallel()
	onBothPaths(t, func(t *testing.T, opts relayOptions) {
		r := startRelay(t, context.Background(), opts, "", "", 150*time.Millisecond)
		for range 10 {
			r.backend.Write([]byte("* 1 EXISTS\r\n"))
			readN(t, r.client, 12)
			time.Sleep(50 * time.Millisecond) // the client stays silent longer than the idle limit in total
		}
		select {
		case err := <-r.done:
			t.Fatalf("relay ended while the backend was talking: %v", err)
		default:
		}
	})
}

func TestRelayShutdown(t *testing.T) {
	t.Parallel()
	onBothPaths(t, func(t *testing.T, opts relayOptions) {
		ctx, cancel := context.WithCancel(context.Background())
		r := startRelay(t, ctx, opts, "", "", time.Minute)
		cancel()
		if err := <-r.done; !errors.Is(err, ErrShutdown) {
			t.Fatalf("got %v, want ErrShutdown", err)
		}
	})
}

// TestRelayShutdownGoodbye: when the shutdown drain ends a relayed session
// whose backend is quiet at the end of a line, the client is told the
// protocol's goodbye before the close (so that its mail app reconnects at
// once); never in the middle of a backend response.
func TestRelayShutdownGoodbye(t *testing.T) {
	t.Parallel()
	const bye = "* BYE [UNAVAILABLE] Server shutting down\r\n"
	tests := []struct {
		name, fromBackend, want string
	}{
		{"quiet at a line end", "* OK Still here\r\n", "* OK Still here\r\n" + bye},
		{"nothing relayed yet", "", bye},
		{"inside a response", "* 1 FETCH (BODY[] {100}\r\npart of a message", "* 1 FETCH (BODY[] {100}\r\npart of a message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			onBothPaths(t, func(t *testing.T, opts relayOptions) {
				ctx, cancel := context.WithCancel(context.Background())
				cli, cliProxy := pair(t)
				beProxy, be := pair(t)
				done := make(chan error, 1)
				runRelay(ctx, opts, cliProxy, beProxy, nil, nil, time.Minute, []byte(bye), func(_ RelayStats, err error) { done <- err })
				if tt.fromBackend != "" {
					be.Write([]byte(tt.fromBackend))
					readN(t, cli, len(tt.fromBackend))
				}
				// Quiet: the backend sends nothing for longer than the
				// relay waits before it may speak (a time, not an event).
				time.Sleep(quietForGoodbye + 100*time.Millisecond)
				cancel()
				if err := <-done; !errors.Is(err, ErrShutdown) {
					t.Fatalf("got %v, want ErrShutdown", err)
				}
				cli.SetReadDeadline(time.Now().Add(10 * time.Second))
				rest, _ := io.ReadAll(cli)
				if got := string(rest); tt.fromBackend+got != tt.want {
					t.Errorf("client got %q after the backend's bytes, want %q in all", got, tt.want)
				}
			})
		})
	}
}

// tlsRelay relays between a TLS 1.3 client (through the engine's real
// path: NewConn, StartTLS, Detach) and a plain backend. atHandoff, if not
// nil, sees the engine's TLS connection before the relay starts.
func tlsRelay(t *testing.T, ctx context.Context, opts relayOptions, idle time.Duration, atHandoff func(*tls.Conn)) (client *tls.Conn, backend net.Conn, engine *tls.Conn, done chan error) {
	t.Helper()
	srvCfg, cliCfg := serverTLS(t)
	cli, cliProxy := pair(t)
	beProxy, be := pair(t)
	c := NewConn(cliProxy, Limits{})
	c.relay = opts
	hs := make(chan error, 1)
	go func() { _, err := c.StartTLS(context.Background(), srvCfg); hs <- err }()
	tc := tls.Client(cli, cliCfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-hs; err != nil {
		t.Fatal(err)
	}
	tlsConn, pending := c.Detach()
	if atHandoff != nil {
		atHandoff(tlsConn.(*tls.Conn))
	}
	done = make(chan error, 1)
	go func() {
		_, err := relaySync(ctx, opts, tlsConn, beProxy, pending, nil, idle)
		done <- err
	}()
	return tc, be, tlsConn.(*tls.Conn), done
}

// A TLS client exchanging megabytes both ways at once gets every byte, in
// order, through the record-bounded reader and readiness waits.
func TestRelayTLSByteExact(t *testing.T) {
	t.Parallel()
	onBothPaths(t, func(t *testing.T, opts relayOptions) {
		tc, be, _, done := tlsRelay(t, context.Background(), opts, time.Minute, nil)
		up := make([]byte, 5<<20)
		down := make([]byte, 5<<20)
		rand.Read(up)
		rand.Read(down)
		go func() {
			tc.Write(up)
			tc.CloseWrite()
		}()
		go func() {
			be.Write(down)
			be.(*net.TCPConn).CloseWrite()
		}()
		gotUp := make(chan []byte, 1)
		go func() { b, _ := io.ReadAll(be); gotUp <- b }()
		gotDown, err := io.ReadAll(tc)
		if err != nil {
			t.Fatalf("client read: %v", err)
		}
		if !bytes.Equal(gotDown, down) {
			t.Fatalf("client got %d bytes, want %d identical", len(gotDown), len(down))
		}
		if b := <-gotUp; !bytes.Equal(b, up) {
			t.Fatalf("backend got %d bytes, want %d identical", len(b), len(up))
		}
		if err := <-done; err != nil {
			t.Fatalf("relay: %v", err)
		}
	})
}
