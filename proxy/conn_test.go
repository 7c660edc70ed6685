package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/testpki"
)

// pair returns the two ends of a real loopback TCP connection.
func pair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func serverTLS(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	ca := testpki.NewCA(t)
	srv := &tls.Config{Certificates: []tls.Certificate{ca.Leaf(t, "localhost")}, MinVersion: tls.VersionTLS12}
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	return srv, cli
}

func TestReadLine(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 100)
	tests := []struct {
		name, in string
		want     []string
		wantErr  bool
	}{
		{name: "crlf", in: "a NOOP\r\nb NOOP\r\n", want: []string{"a NOOP", "b NOOP"}},
		{name: "bare lf", in: "a NOOP\n", want: []string{"a NOOP"}},
		{name: "empty line", in: "\r\n", want: []string{""}},
		{name: "at limit", in: long + "\r\n", want: []string{long}},
		{name: "over limit", in: long + "y\r\n", wantErr: true},
		{name: "over limit, no newline", in: strings.Repeat("y", 2*readerSize), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, srv := pair(t)
			go cli.Write([]byte(tt.in))
			c := NewConn(srv, Limits{Line: 100})
			for _, want := range tt.want {
				got, err := c.ReadLine()
				if err != nil {
					t.Fatalf("ReadLine: %v", err)
				}
				if string(got) != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			if tt.wantErr {
				_, err := c.ReadLine()
				var le *LimitError
				if !errors.As(err, &le) || le.Kind != LimitLine {
					t.Fatalf("got %v, want a line length LimitError", err)
				}
			}
		})
	}
}

// A line longer than the reader's buffer is assembled from fragments.
func TestReadLineLongerThanBuffer(t *testing.T) {
	t.Parallel()
	cli, srv := pair(t)
	line := strings.Repeat("z", 3*readerSize)
	go cli.Write([]byte(line + "\r\n"))
	c := NewConn(srv, Limits{Line: 4 * readerSize})
	got, err := c.ReadLine()
	if err != nil || string(got) != line {
		t.Fatalf("got %d bytes, %v; want %d bytes", len(got), err, len(line))
	}
}

func TestReadLineIdle(t *testing.T) {
	t.Parallel()
	_, srv := pair(t)
	c := NewConn(srv, Limits{Idle: 50 * time.Millisecond})
	if _, err := c.ReadLine(); !errors.Is(err, ErrIdle) {
		t.Fatalf("got %v, want ErrIdle", err)
	}
}

// A client that drips a byte at a time never trips the idle limit but does
// trip the total one.
func TestReadLineTotal(t *testing.T) {
	t.Parallel()
	cli, srv := pair(t)
	c := NewConn(srv, Limits{Idle: time.Second, Total: 200 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				cli.Write([]byte("x"))
			}
		}
	}()
	defer close(done)
	if _, err := c.ReadLine(); !errors.Is(err, ErrTotalTime) {
		t.Fatalf("got %v, want ErrTotalTime", err)
	}
}

func TestStopUnblocksReadButNotWrite(t *testing.T) {
	t.Parallel()
	cli, srv := pair(t)
	c := NewConn(srv, Limits{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.ReadLine()
		errc <- err
	}()
	c.Stop()
	if err := <-errc; !errors.Is(err, ErrShutdown) {
		t.Fatalf("got %v, want ErrShutdown", err)
	}
	if err := c.WriteString("bye\r\n"); err != nil {
		t.Fatalf("write after stop: %v", err)
	}
	line, _ := bufio.NewReader(cli).ReadString('\n')
	if line != "bye\r\n" {
		t.Fatalf("got %q, want bye", line)
	}
}

// TestStartTLSDiscardsPlaintext_CVE_2011_0411: bytes sent after the STARTTLS
// command, before the handshake, must not be read as commands under TLS.
func TestStartTLSDiscardsPlaintext_CVE_2011_0411(t *testing.T) {
	t.Parallel()
	srvCfg, cliCfg := serverTLS(t)
	cli, srv := pair(t)
	c := NewConn(srv, Limits{})
	if _, err := cli.Write([]byte("STARTTLS\r\nINJECTED\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := c.ReadLine()
	if err != nil || string(line) != "STARTTLS" {
		t.Fatalf("got %q, %v; want STARTTLS", line, err)
	}
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		n, err := c.StartTLS(context.Background(), srvCfg)
		res <- result{n, err}
	}()
	tc := tls.Client(cli, cliCfg)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("StartTLS: %v", r.err)
	}
	if r.n != len("INJECTED\r\n") {
		t.Fatalf("got %d discarded, want %d", r.n, len("INJECTED\r\n"))
	}
	tc.Write([]byte("CLEAN\r\n"))
	line, err = c.ReadLine()
	if err != nil || string(line) != "CLEAN" {
		t.Fatalf("got %q, %v; want CLEAN", line, err)
	}
	if _, err := c.StartTLS(context.Background(), srvCfg); !errors.Is(err, ErrTLSActive) {
		t.Fatalf("second StartTLS: got %v, want ErrTLSActive", err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	srvCfg, _ := serverTLS(t)
	_, srv := pair(t)
	c := NewConn(srv, Limits{Handshake: 50 * time.Millisecond})
	if _, err := c.StartTLS(context.Background(), srvCfg); err == nil {
		t.Fatal("handshake with a silent client succeeded")
	}
}

// Detach hands over what the reader and crypto/tls hold, exactly once.
func TestDetachReturnsPipelinedBytes(t *testing.T) {
	t.Parallel()
	srvCfg, cliCfg := serverTLS(t)
	cli, srv := pair(t)
	c := NewConn(srv, Limits{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.StartTLS(context.Background(), srvCfg)
		errc <- err
	}()
	tc := tls.Client(cli, cliCfg)
	// One TLS record larger than the line reader's buffer.
	tail := strings.Repeat("p", 3*readerSize)
	if _, err := tc.Write([]byte("LOGIN\r\n" + tail)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	line, err := c.ReadLine()
	if err != nil || string(line) != "LOGIN" {
		t.Fatalf("got %q, %v", line, err)
	}
	conn, pending := c.Detach()
	// The rest of the stream (later records) is still in the socket; what
	// the reader and crypto/tls held comes back in pending, in order.
	rest := make([]byte, len(tail)-len(pending))
	if _, err := io.ReadFull(conn, rest); err != nil {
		t.Fatalf("read rest: %v", err)
	}
	if got := string(pending) + string(rest); got != tail {
		t.Fatalf("got %d bytes back, want the %d pipelined bytes in order", len(got), len(tail))
	}
	// The connection still works after the drain's deadline.
	tc.Write([]byte("more"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "more" {
		t.Fatalf("got %q, %v", buf, err)
	}
}

// A limit reply must reach a client whose excess input is still unread:
// a plain close would answer that input with a reset and lose the reply.
func TestCloseLingeringDeliversLastReply(t *testing.T) {
	t.Parallel()
	cli, srv := pair(t)
	c := NewConn(srv, Limits{Line: 600})
	flood := strings.Repeat("x", 200<<10)
	go cli.Write([]byte(flood))
	if _, err := c.ReadLine(); err == nil {
		t.Fatal("over-long line accepted")
	}
	c.WriteString("* BYE line too long\r\n")
	c.CloseLingering()
	got, err := io.ReadAll(cli)
	if err != nil || string(got) != "* BYE line too long\r\n" {
		t.Fatalf("got %q, %v; want the BYE then EOF", got, err)
	}
}
