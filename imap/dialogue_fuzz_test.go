package imap

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// FuzzPreAuthDialogue runs the whole pre-login dialogue over an in-memory
// pipe. The first byte picks the state (plaintext or under TLS); the rest
// is what the client sends. It checks that the session always ends, and
// that before TLS the backend is never dialled. Under TLS the backend dial
// fails at once, so logins end in NO [UNAVAILABLE].
func FuzzPreAuthDialogue(f *testing.F) {
	for _, s := range []string{
		"\x00a CAPABILITY\r\nb NOOP\r\nc ID (\"name\" \"x\")\r\nd LOGIN alice secret\r\ne LOGOUT\r\n",
		"\x00a AUTHENTICATE PLAIN\r\nb LOGIN {5}\r\nalice x\r\n",
		"\x01a LOGIN alice secret\r\nb AUTHENTICATE PLAIN\r\nAGFsaWNlAHg=\r\nc AUTHENTICATE LOGIN\r\nYQ==\r\n*\r\n",
		"\x01a LOGIN {5+}\r\nalice {3}\r\nxyz\r\n",
		"\x01a STARTTLS\r\nb ID NIL\r\n",
		"\x00a STARTTLS\r\n\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(s))
	}
	srvTLS, _ := testTLS(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		tlsState := in[0]&1 == 1
		var dials atomic.Int64
		be := &proxy.Backend{Address: "fuzz", Dial: func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, errors.New("fuzz backend down")
		}}
		h := New(Options{Backend: be})
		cli, srv := net.Pipe()
		conn := proxy.NewConn(srv, proxy.Limits{Idle: time.Second, Total: 2 * time.Second, Handshake: time.Second})
		ps := &proxy.Session{Conn: conn, Mode: proxy.STARTTLS, TLSConfig: srvTLS,
			Log: slog.New(slog.DiscardHandler)}
		go func() {
			cli.Write(in[1:])
			cli.Close()
		}()
		go io.Copy(io.Discard, cli)
		s := newSession(context.Background(), h, ps)
		if tlsState {
			s.state = stateTLS
		}
		handoff, _ := proxy.Converse(ps, s)
		conn.Close()
		if handoff != nil {
			t.Fatal("got a hand-off from a backend that cannot be dialled")
		}
		if !tlsState && !ps.StartedTLS && dials.Load() != 0 {
			t.Fatalf("backend dialled %d times before TLS", dials.Load())
		}
	})
}
