//go:build linux

package proxy

// Benchmarks for the engine. They report numbers and never fail on a time:
//
//	go test -run '^$' -bench . -benchtime 2s ./proxy/
//	go test -run '^$' -bench IdleSessions ./proxy/ -args -idle-sessions 4000
//
// The figures for the whole process (RSS per idle session at 10,000
// sessions, CPU per GB relayed, CPU per handshake, greeting latency) come
// from the load tool, cmd/mfload, which drives the built binary.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mailfront/mailfront/internal/testpki"
)

var idleSessions = flag.Int("idle-sessions", 1000, "sessions BenchmarkIdleSessions holds open")

// benchTLS mints an ECDSA P-256 certificate (testpki's leaf), the default
// this engine is tuned for, and returns matching server and client
// configurations.
func benchTLS(tb testing.TB) (srv, cli *tls.Config) {
	tb.Helper()
	ca := testpki.NewCA(tb)
	srv = &tls.Config{Certificates: []tls.Certificate{ca.Leaf(tb, "localhost")}, MinVersion: tls.VersionTLS12}
	cli = &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS13}
	return srv, cli
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(tb testing.TB) (a, b net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	if b = <-accepted; b == nil {
		tb.Fatal("accept failed")
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// serverTLSConn runs the engine's real path for an implicit TLS client:
// NewConn, StartTLS (over recordConn) and Detach. It returns the client's
// end and the engine's end.
func serverTLSConn(tb testing.TB, srvCfg, cliCfg *tls.Config) (client *tls.Conn, engine net.Conn) {
	tb.Helper()
	cliRaw, srvRaw := tcpPair(tb)
	c := NewConn(srvRaw, Limits{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.StartTLS(context.Background(), srvCfg)
		errc <- err
	}()
	client = tls.Client(cliRaw, cliCfg)
	if err := client.Handshake(); err != nil {
		tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	engine, _ = c.Detach()
	return client, engine
}

const relayChunk = 64 << 10

// benchRelay moves b.N chunks through Relay in one direction: from the
// backend to the client ("down", a FETCH) or the other way ("up", an APPEND).
func benchRelay(b *testing.B, client, clientEngine net.Conn, down bool) {
	backendEngine, backend := tcpPair(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		relaySync(ctx, relayOptions{mode: RelayOptimized, releaseTLS: true}, clientEngine, backendEngine, nil, nil, time.Minute)
		close(done)
	}()
	b.Cleanup(func() { cancel(); <-done })
	src, dst := client, backend
	if down {
		src, dst = backend, client
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), relayChunk/16)
	b.SetBytes(relayChunk)
	b.ResetTimer()
	werr := make(chan error, 1)
	go func() {
		for range b.N {
			if _, err := src.Write(chunk); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	if _, err := io.CopyN(io.Discard, dst, int64(b.N)*relayChunk); err != nil {
		b.Fatalf("read relayed bytes: %v", err)
	}
	b.StopTimer()
	if err := <-werr; err != nil {
		b.Fatalf("write: %v", err)
	}
}

// BenchmarkRelayTLS measures bytes through Relay between a plaintext TCP
// backend and a TLS 1.3 client over loopback. The benchmark process also
// does the client's side of the crypto, so the cost per byte here is about
// twice the engine's own; cmd/mfload measures the engine alone.
func BenchmarkRelayTLS(b *testing.B) {
	srvCfg, cliCfg := benchTLS(b)
	for _, dir := range []string{"down", "up"} {
		b.Run(dir, func(b *testing.B) {
			client, engine := serverTLSConn(b, srvCfg, cliCfg)
			benchRelay(b, client, engine, dir == "down")
		})
	}
}

// BenchmarkRelayPlain is BenchmarkRelayTLS without TLS: the engine's own
// overhead (readiness waits, pooled buffers, deadlines, syscalls).
func BenchmarkRelayPlain(b *testing.B) {
	for _, dir := range []string{"down", "up"} {
		b.Run(dir, func(b *testing.B) {
			client, engine := tcpPair(b)
			benchRelay(b, client, engine, dir == "down")
		})
	}
}

// threadCPU is the CPU time the calling OS thread has used
// (CLOCK_THREAD_CPUTIME_ID: getrusage's RUSAGE_THREAD is tick-grained on
// some kernels).
func threadCPU() time.Duration {
	const clockThreadCPUTime = 3
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// BenchmarkHandshakeTLS13ECDSA measures the server side of a TLS 1.3
// handshake through Conn.StartTLS with an ECDSA P-256 certificate, and the
// greeting written after it. server-CPU-µs/op is the CPU time of the
// server's goroutine, which runs every handshake in turn on one locked OS
// thread (so crypto/tls's work is all on it) and keeps its grown stack from
// one handshake to the next, as the Server's workers do. ns/op is the wall
// time of a handshake with the client's work included (the loopback
// connection is made outside the timer). resumed/op is the fraction of
// handshakes that resumed a session. Variants: the client's default key
// shares (X25519MLKEM768 first, as Go clients send), X25519 only (most mail
// clients today), and a resumed session (PSK with (EC)DHE).
func BenchmarkHandshakeTLS13ECDSA(b *testing.B) {
	srvCfg, cliCfg := benchTLS(b)
	cases := []struct {
		name   string
		client func() *tls.Config
	}{
		{"full-default-curves", func() *tls.Config { return cliCfg.Clone() }},
		{"full-x25519", func() *tls.Config {
			c := cliCfg.Clone()
			c.CurvePreferences = []tls.CurveID{tls.X25519}
			return c
		}},
		{"resumed-x25519", func() *tls.Config {
			c := cliCfg.Clone()
			c.CurvePreferences = []tls.CurveID{tls.X25519}
			c.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			return c
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			cfg := tc.client()
			srv := startHandshakeServer(b, srvCfg)
			srv.handshake(b, cfg) // warm the session cache and the server's stack
			var serverCPU time.Duration
			resumed := 0
			b.ResetTimer()
			for range b.N {
				d, didResume := srv.handshake(b, cfg)
				serverCPU += d
				if didResume {
					resumed++
				}
			}
			b.ReportMetric(float64(serverCPU.Microseconds())/float64(b.N), "server-CPU-µs/op")
			b.ReportMetric(float64(resumed)/float64(b.N), "resumed/op")
		})
	}
}

// handshakeServer runs the server side of handshakes, one at a time, on one
// goroutine locked to its OS thread.
type handshakeServer struct {
	conns chan net.Conn
	cpu   chan time.Duration // 0 when the handshake failed
}

func startHandshakeServer(b *testing.B, cfg *tls.Config) *handshakeServer {
	s := &handshakeServer{conns: make(chan net.Conn), cpu: make(chan time.Duration)}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for raw := range s.conns {
			start := threadCPU()
			c := NewConn(raw, Limits{})
			if _, err := c.StartTLS(context.Background(), cfg); err != nil {
				c.Close()
				s.cpu <- 0
				continue
			}
			c.WriteString("* OK ready\r\n")
			d := threadCPU() - start
			c.Close()
			s.cpu <- d
		}
	}()
	b.Cleanup(func() { close(s.conns) })
	return s
}

// handshake runs one handshake and a greeting over a fresh connection and
// returns the server's CPU time for them. Reading the greeting lets a TLS
// 1.3 client take the session ticket.
func (s *handshakeServer) handshake(b *testing.B, cliCfg *tls.Config) (time.Duration, bool) {
	b.StopTimer()
	cliRaw, srvRaw := tcpPair(b)
	b.StartTimer()
	s.conns <- srvRaw
	tc := tls.Client(cliRaw, cliCfg)
	var buf [64]byte
	_, rerr := tc.Read(buf[:])
	d := <-s.cpu
	if rerr != nil || d == 0 {
		b.Fatalf("handshake failed: client: %v", rerr)
	}
	tc.Close()
	return d, tc.ConnectionState().DidResume
}

// linesConn serves the same command line forever from memory, so that
// BenchmarkConnReadLine measures the reader and not the network.
type linesConn struct {
	net.Conn
	line []byte
	off  int
}

func (c *linesConn) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], c.line[c.off:])
		n += m
		c.off = (c.off + m) % len(c.line)
	}
	return n, nil
}

func (c *linesConn) SetReadDeadline(time.Time) error { return nil }

func BenchmarkConnReadLine(b *testing.B) {
	line := []byte("a001 UID FETCH 1:* (FLAGS INTERNALDATE RFC822.SIZE)\r\n")
	c := NewConn(&linesConn{line: line}, Limits{})
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.ReadLine(); err != nil {
			b.Fatal(err)
		}
	}
}

// idleHandler is the smallest protocol that reaches the relay: greet, read
// one line, dial the backend and hand off.
type idleHandler struct{ be *Backend }

func (h idleHandler) Serve(ctx context.Context, s *Session) (*Handoff, error) {
	if err := s.Conn.WriteString("* OK ready\r\n"); err != nil {
		return nil, err
	}
	if _, err := s.Conn.ReadLine(); err != nil {
		return nil, err
	}
	be, err := h.be.Open(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := s.Conn.WriteString("+ in\r\n"); err != nil {
		be.Close()
		return nil, err
	}
	return &Handoff{Backend: be, Idle: 31 * time.Minute}, nil
}

// holdBackend accepts connections and holds them without reading: a quiet
// backend that costs the benchmark process one socket per session.
func holdBackend(b *testing.B) (addr string, conns func() []net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String(), func() []net.Conn {
		mu.Lock()
		defer mu.Unlock()
		out := held
		held = nil
		return out
	}
}

// memSnapshot is the process's Go memory after two collections (the
// second empties sync.Pool's victim cache).
type memSnapshot struct {
	heapAlloc, heapInuse, stackInuse uint64
	goroutines                       int
}

func snapshot() memSnapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{
		heapAlloc:  ms.HeapAlloc,
		heapInuse:  ms.HeapInuse,
		stackInuse: ms.StackInuse,
		goroutines: runtime.NumGoroutine(),
	}
}

// BenchmarkIdleSessions opens -idle-sessions implicit-TLS sessions through a
// real Server, logs each in so that it sits in the relay with both sides
// quiet, waits until the relay has parked them (see parker), and reports
// what one idle session costs the engine: live heap, heap in use, goroutine
// stacks and goroutines, each as a delta over the server before the
// sessions, divided by the count. The test's own residue per session (the
// client's and the backend's raw sockets; the clients' TLS state is dropped
// once logged in) is measured separately with plain socket pairs and
// subtracted from the heap figures. ns/op is the time to open, settle and
// close all the sessions (after a first round that is not measured).
//
// Resident memory is not reported: in one process with the clients, whose
// handshakes leave garbage, and after a first run has grown the heap, the
// process's RSS says little about the engine. cmd/mfload measures it on the
// built binary.
//
// The clients offer either X25519 alone or Go's default key shares
// (X25519MLKEM768 first, as recent mail clients do): crypto/tls would keep
// input buffers sized for the larger ClientHello for the connection's life
// if the engine did not drop them (see releaseTLSBuffers).
func BenchmarkIdleSessions(b *testing.B) {
	for _, tc := range []struct {
		name   string
		curves []tls.CurveID
	}{
		{"client=x25519", []tls.CurveID{tls.X25519}},
		{"client=default", nil},
	} {
		b.Run(tc.name, func(b *testing.B) { benchIdle(b, tc.curves) })
	}
}

func benchIdle(b *testing.B, curves []tls.CurveID) {
	n := *idleSessions
	srvCfg, cliCfg := benchTLS(b)
	cliCfg.CurvePreferences = curves
	beAddr, backendConns := holdBackend(b)
	l := &Listener{Name: "bench", Protocol: "imap", Address: "127.0.0.1:0", Mode: Implicit,
		TLS: srvCfg, Handler: idleHandler{&Backend{Address: beAddr}}}
	srv := &Server{Listeners: []*Listener{l}, MaxConns: 2*n + 100, Drain: time.Second}
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	residue := socketResidue(b, n)
	// A first round grows what the process keeps once grown (maps, the
	// timer heap), so that the figures are the steady cost of a session.
	for _, c := range openIdle(b, l.Addr().String(), cliCfg, n) {
		c.Close()
	}
	for _, c := range backendConns() {
		c.Close()
	}
	waitDrained(b, srv)

	var before, after memSnapshot
	for range b.N {
		// Idle workers (see workerIdle) from the last round would count.
		time.Sleep(workerIdle + 100*time.Millisecond)
		before = snapshot()
		clients := openIdle(b, l.Addr().String(), cliCfg, n)
		waitQuiet(b, n)
		after = snapshot()
		for _, c := range clients {
			c.Close()
		}
		for _, c := range backendConns() {
			c.Close()
		}
		waitDrained(b, srv)
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	b.ReportMetric(per(after.heapAlloc, before.heapAlloc)-residue.heapAlloc, "heap-live-B/session")
	b.ReportMetric(per(after.heapInuse, before.heapInuse)-residue.heapInuse, "heap-inuse-B/session")
	b.ReportMetric(per(after.stackInuse, before.stackInuse), "stack-B/session")
	b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/session")
	b.ReportMetric(residue.heapInuse, "residue-B/session")
}

// waitQuiet waits until the relay directions of n quiet sessions have
// parked, and the workers that logged them in have gone (or 30 seconds).
func waitQuiet(b *testing.B, n int) {
	deadline := time.Now().Add(30 * time.Second)
	time.Sleep(max(parkAfter, workerIdle) + 100*time.Millisecond)
	for pipeGoroutines() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
}

// pipeGoroutines counts the goroutines running a relay direction.
func pipeGoroutines() int {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("proxy.(*pipe).run("))
}

type perSession struct{ heapAlloc, heapInuse float64 }

// socketResidue measures what holding two plain loopback sockets (the
// benchmark's client end and backend end of one session) costs, per session.
func socketResidue(b *testing.B, n int) perSession {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	before := snapshot()
	conns := make([]net.Conn, 0, 2*n)
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c, s)
	}
	after := snapshot()
	for _, c := range conns {
		c.Close()
	}
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return perSession{
		heapAlloc: per(after.heapAlloc, before.heapAlloc),
		heapInuse: per(after.heapInuse, before.heapInuse),
	}
}

// openIdle logs n clients in with bounded concurrency and returns their raw
// sockets; their TLS state is dropped so that only the engine's side stays.
func openIdle(b *testing.B, addr string, cliCfg *tls.Config, n int) []net.Conn {
	conns := make([]net.Conn, n)
	errs := make(chan error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				c, err := loginIdle(addr, cliCfg)
				if err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
					continue
				}
				conns[i] = c
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return conns
}

func loginIdle(addr string, cliCfg *tls.Config) (net.Conn, error) {
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cliCfg)
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := expectLine(tc, "* OK ready"); err != nil {
		raw.Close()
		return nil, err
	}
	if _, err := tc.Write([]byte("a LOGIN\r\n")); err != nil {
		raw.Close()
		return nil, err
	}
	if err := expectLine(tc, "+ in"); err != nil {
		raw.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	return raw, nil
}

// expectLine reads one short line byte by byte (no buffer outlives it).
func expectLine(c net.Conn, want string) error {
	var line []byte
	var one [1]byte
	for len(line) < 256 {
		if _, err := c.Read(one[:]); err != nil {
			return err
		}
		if one[0] == '\n' {
			if got := strings.TrimSuffix(string(line), "\r"); got != want {
				return fmt.Errorf("got %q, want %q", got, want)
			}
			return nil
		}
		line = append(line, one[0])
	}
	return errors.New("line too long")
}

func waitDrained(b *testing.B, srv *Server) {
	deadline := time.Now().Add(30 * time.Second)
	for srv.conns.Load() > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d sessions still open 30s after their clients closed", srv.conns.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkReadProxyHeader is the cost a trusted balancer's header adds
// to each connection: reading it off a loopback TCP socket exactly (the
// system calls included) and parsing it, for the typical headers HAProxy
// sends (v1 and v2 for an IPv4 client, v2 for an IPv6 one), and, for
// comparison, the parse alone from memory.
func BenchmarkReadProxyHeader(b *testing.B) {
	headers := []struct {
		name string
		raw  []byte
	}{
		{"v1-tcp4", []byte("PROXY TCP4 203.0.113.7 192.0.2.10 51234 993\r\n")},
		{"v2-tcp4", v2Header(b, "203.0.113.7:51234", "192.0.2.10:993")},
		{"v2-tcp6", v2Header(b, "[2001:db8::7]:51234", "[2001:db8::1]:993")},
	}
	b.Run("baseline/socket", func(b *testing.B) {
		// One write and one read of 16 bytes: what every socket
		// benchmark below pays besides reading the header.
		client, server := tcpPair(b)
		buf := make([]byte, 16)
		for b.Loop() {
			if _, err := client.Write(buf); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(server, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, h := range headers {
		b.Run(h.name+"/socket", func(b *testing.B) {
			client, server := tcpPair(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.Write(h.raw); err != nil {
					b.Fatal(err)
				}
				if _, err := ReadProxyHeader(server); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(h.name+"/memory", func(b *testing.B) {
			b.ReportAllocs()
			r := bytes.NewReader(h.raw)
			for b.Loop() {
				r.Reset(h.raw)
				if _, err := ReadProxyHeader(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
