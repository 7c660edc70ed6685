package pop3

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// scriptConn is a net.Conn that reads a fixed input, then EOF, and records
// what is written. Deadlines are ignored.
type scriptConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzPlaintextDialogue feeds arbitrary client bytes to a session before
// TLS and checks ARCHITECTURE.md invariant 1 whatever they are: no continuation, no
// login, and the backend is never dialled.
func FuzzPlaintextDialogue(f *testing.F) {
	for _, s := range []string{
		"CAPA\r\nUSER a\r\nPASS b\r\nQUIT\r\n",
		"AUTH PLAIN\r\nAGEAYg==\r\n",
		"AUTH LOGIN YQ==\r\n*\r\n",
		"STLS\r\nUSER a\r\n",
		"APOP a b\r\nNOOP\r\n\x00\r\n",
		"user a\npass b\n",
	} {
		f.Add([]byte(s))
	}
	var dials atomic.Int64
	h := New(Options{Backend: &proxy.Backend{Address: "192.0.2.1:110", Dial: func(context.Context, string, string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("no")
	}}})
	f.Fuzz(func(t *testing.T, input []byte) {
		dials.Store(0)
		c := &scriptConn{in: bytes.NewReader(input)}
		s := &proxy.Session{
			Conn: proxy.NewConn(c, proxy.Limits{}),
			Mode: proxy.STARTTLS,
			Log:  slog.New(slog.DiscardHandler),
		}
		ho, err := h.Serve(context.Background(), s)
		if ho != nil {
			t.Fatalf("got a handoff before TLS")
		}
		if n := dials.Load(); n != 0 {
			t.Fatalf("backend dialled %d times before TLS", n)
		}
		if s.Outcome == proxy.OutcomeInternal {
			t.Fatalf("internal error: %v", err)
		}
		for _, line := range strings.Split(c.out.String(), "\r\n") {
			if strings.HasPrefix(line, "+ ") || line == "+" || strings.HasPrefix(line, "+OK Logged in") {
				t.Fatalf("got %q before TLS", line)
			}
		}
	})
}
