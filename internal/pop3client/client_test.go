package pop3client_test

import (
	"bufio"
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/pop3client"
)

// serve answers each command line with the next canned reply, on loopback.
func serve(t *testing.T, greeting string, replies ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte(greeting))
		r := bufio.NewReader(c)
		for _, reply := range replies {
			if _, err := r.ReadString('\n'); err != nil {
				return
			}
			c.Write([]byte(reply))
		}
		r.ReadString('\n')
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) *pop3client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pop3client.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRetrUnstuffs(t *testing.T) {
	long := strings.Repeat("a", 4096) // fills bufio's buffer: the next fragment starts with '.'
	tests := []struct {
		name, wire, want string
	}{
		{"plain", "one\r\ntwo\r\n", "one\r\ntwo\r\n"},
		{"stuffed", "..\r\n...x\r\n.y\r\n", ".\r\n..x\r\ny\r\n"},
		{"empty", "", ""},
		{"dot inside a long line", long + ".b\r\n", long + ".b\r\n"},
		{"long stuffed line", "." + long + "\r\n", long + "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, serve(t, "+OK hi\r\n", "+OK\r\n"+tt.wire+".\r\n"))
			got, err := c.Retr(1)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestReplies(t *testing.T) {
	c := dial(t, serve(t, "+OK hi\r\n",
		"+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\n.\r\n",
		"+OK 2 320\r\n",
		"-ERR [AUTH] no\r\n"))
	if c.Greeting != "+OK hi" {
		t.Fatalf("got greeting %q, want %q", c.Greeting, "+OK hi")
	}
	caps, err := c.Capa()
	if err != nil || !slices.Equal(caps, []string{"USER", "SASL PLAIN"}) {
		t.Fatalf("got CAPA %q, %v; want USER, SASL PLAIN", caps, err)
	}
	n, size, err := c.Stat()
	if err != nil || n != 2 || size != 320 {
		t.Fatalf("got STAT %d %d, %v; want 2 320", n, size, err)
	}
	err = c.Noop()
	if line, ok := pop3client.IsERR(err); !ok || line != "-ERR [AUTH] no" {
		t.Fatalf("got %v, want the -ERR line", err)
	}
}

func TestGreetingERR(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := pop3client.Dial(ctx, serve(t, "-ERR go away\r\n"))
	if _, ok := pop3client.IsERR(err); !ok {
		t.Fatalf("got %v, want a -ERR greeting error", err)
	}
}
