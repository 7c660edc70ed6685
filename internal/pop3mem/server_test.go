package pop3mem_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/pop3client"
	"github.com/mailfront/mailfront/internal/pop3mem"
)

var users = map[string]string{"alice": "alice-pw", "bob": "bob pw with spaces"}

// start runs a server with opts (Users defaulting to users) and alice's
// maildrop seeded with msgs.
func start(t *testing.T, opts pop3mem.Options, msgs ...string) *pop3mem.Server {
	t.Helper()
	if opts.Users == nil {
		opts.Users = users
	}
	s, err := pop3mem.ListenOptions("127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, m := range msgs {
		s.AddMessage("alice", []byte(m))
	}
	return s
}

func dial(t *testing.T, s *pop3mem.Server) *pop3client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pop3client.Dial(ctx, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c.Timeout = 10 * time.Second
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLogin(t *testing.T) {
	tests := []struct {
		name    string
		opts    pop3mem.Options
		login   func(c *pop3client.Client) error
		wantErr string // prefix of the -ERR line, "" for success
	}{
		{"USER PASS", pop3mem.Options{}, func(c *pop3client.Client) error { return c.Login("alice", "alice-pw") }, ""},
		{"PASS with spaces", pop3mem.Options{}, func(c *pop3client.Client) error { return c.Login("bob", "bob pw with spaces") }, ""},
		{"wrong password", pop3mem.Options{}, func(c *pop3client.Client) error { return c.Login("alice", "nope") }, "-ERR [AUTH]"},
		{"unknown user", pop3mem.Options{}, func(c *pop3client.Client) error { return c.Login("mallory", "x") }, "-ERR [AUTH]"},
		{"AUTH PLAIN", pop3mem.Options{}, func(c *pop3client.Client) error { return c.AuthPlain("alice", "alice-pw") }, ""},
		{"AUTH PLAIN wrong", pop3mem.Options{}, func(c *pop3client.Client) error { return c.AuthPlain("alice", "x") }, "-ERR [AUTH]"},
		{"no USER", pop3mem.Options{NoUSER: true}, func(c *pop3client.Client) error { return c.Login("alice", "alice-pw") }, "-ERR USER not supported"},
		{"no USER, AUTH PLAIN", pop3mem.Options{NoUSER: true}, func(c *pop3client.Client) error { return c.AuthPlain("alice", "alice-pw") }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, start(t, tt.opts))
			err := tt.login(c)
			line, isERR := pop3client.IsERR(err)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want success", err)
			case tt.wantErr != "" && (!isERR || !strings.HasPrefix(line, tt.wantErr)):
				t.Fatalf("got %v, want %q...", err, tt.wantErr)
			}
		})
	}
}

func TestGreetingHasAPOPTimestamp(t *testing.T) {
	c := dial(t, start(t, pop3mem.Options{}))
	if !strings.Contains(c.Greeting, "@pop3mem>") {
		t.Fatalf("got greeting %q, want an APOP timestamp for fronts to hide", c.Greeting)
	}
}

func TestCAPA(t *testing.T) {
	tests := []struct {
		name string
		opts pop3mem.Options
		want []string
	}{
		{"default", pop3mem.Options{}, []string{"PIPELINING", "TOP", "UIDL", "RESP-CODES", "USER", "SASL PLAIN"}},
		{"no USER", pop3mem.Options{NoUSER: true}, []string{"PIPELINING", "TOP", "UIDL", "RESP-CODES", "SASL PLAIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dial(t, start(t, tt.opts)).Capa()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("no CAPA", func(t *testing.T) {
		_, err := dial(t, start(t, pop3mem.Options{NoCAPA: true})).Capa()
		if _, ok := pop3client.IsERR(err); !ok {
			t.Fatalf("got %v, want -ERR", err)
		}
	})
}

func TestRetrDotStuffing(t *testing.T) {
	msgs := []string{
		"Subject: a\r\n\r\nplain body\r\n",
		"Subject: dots\r\n\r\n.\r\n..\r\n.leading\r\nend\r\n",
		"Subject: bare lf\n\nline\n",
		"Subject: no final newline\r\n\r\nlast",
		"Subject: long\r\n\r\n." + strings.Repeat("x", 10000) + "\r\n",
	}
	s := start(t, pop3mem.Options{}, msgs...)
	c := dial(t, s)
	if err := c.Login("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	want := s.Messages("alice")
	count, size, err := c.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var wantSize int64
	for _, m := range want {
		wantSize += int64(len(m))
	}
	if count != len(msgs) || size != wantSize {
		t.Fatalf("got STAT %d %d, want %d %d", count, size, len(msgs), wantSize)
	}
	for i, w := range want {
		got, err := c.Retr(i + 1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("RETR %d: got %q, want %q", i+1, got, w)
		}
	}
	if got := string(want[2]); got != "Subject: bare lf\r\n\r\nline\r\n" {
		t.Errorf("stored bare-LF message: got %q, want CRLF endings", got)
	}
	if got := string(want[3]); !strings.HasSuffix(got, "last\r\n") {
		t.Errorf("stored message without final newline: got %q, want a final CRLF", got)
	}
	sizes, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		if sizes[i+1] != int64(len(w)) {
			t.Errorf("LIST %d: got %d, want %d", i+1, sizes[i+1], len(w))
		}
	}
}

func TestTop(t *testing.T) {
	s := start(t, pop3mem.Options{}, "A: 1\r\nB: 2\r\n\r\none\r\n.two\r\nthree\r\n")
	c := dial(t, s)
	if err := c.Login("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		n    int
		want string
	}{
		{0, "A: 1\r\nB: 2\r\n\r\n"},
		{2, "A: 1\r\nB: 2\r\n\r\none\r\n.two\r\n"},
		{10, "A: 1\r\nB: 2\r\n\r\none\r\n.two\r\nthree\r\n"},
	}
	for _, tt := range tests {
		if _, err := c.Cmd("TOP 1 " + strconv.Itoa(tt.n)); err != nil {
			t.Fatal(err)
		}
		got, err := c.ReadMultiline()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("TOP 1 %d: got %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestDeleExpungesOnQuit(t *testing.T) {
	s := start(t, pop3mem.Options{}, "Subject: 1\r\n\r\n", "Subject: 2\r\n\r\n")
	c := dial(t, s)
	if err := c.Login("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	if err := c.Dele(1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retr(1); err == nil {
		t.Fatal("RETR of a deleted message succeeded")
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if got := s.Messages("alice"); len(got) != 1 || !strings.Contains(string(got[0]), "Subject: 2") {
		t.Fatalf("got maildrop %q, want only message 2", got)
	}
}

func TestLockInUse(t *testing.T) {
	s := start(t, pop3mem.Options{Lock: true})
	if err := dial(t, s).Login("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	err := dial(t, s).Login("alice", "alice-pw")
	if line, _ := pop3client.IsERR(err); !strings.HasPrefix(line, "-ERR [IN-USE]") {
		t.Fatalf("got %v, want -ERR [IN-USE]", err)
	}
}

func TestReceivedRecordsEachConnection(t *testing.T) {
	s := start(t, pop3mem.Options{})
	c := dial(t, s)
	c.Login("alice", "alice-pw")
	c.Quit()
	dial(t, s).Quit()
	got := s.Received()
	want := [][]string{{"USER alice", "PASS alice-pw", "QUIT"}, {"QUIT"}}
	if len(got) != len(want) || !slices.Equal(got[0], want[0]) || !slices.Equal(got[1], want[1]) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSilentNeverGreets(t *testing.T) {
	s := start(t, pop3mem.Options{Silent: true})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("CAPA\r\n"))
	// Once the server has recorded the line it is past any greeting.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = s.Wait(ctx, func(r [][]string) bool { return len(r) == 1 && slices.Equal(r[0], []string{"CAPA"}) })
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, _ := io.ReadAll(conn); len(got) != 0 {
		t.Fatalf("got %q from a silent server, want nothing", got)
	}
}

func TestDemo(t *testing.T) {
	s, err := pop3mem.ListenDemo("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := dial(t, s)
	if err := c.Login(pop3mem.DemoUser, pop3mem.DemoPassword); err != nil {
		t.Fatal(err)
	}
	n, _, err := c.Stat()
	if err != nil || n != len(pop3mem.DemoMessages()) {
		t.Fatalf("got STAT %d, %v; want %d messages", n, err, len(pop3mem.DemoMessages()))
	}
	got, err := c.Retr(2)
	if err != nil || !bytes.Equal(got, pop3mem.DemoMessages()[1]) {
		t.Fatalf("got RETR 2 %q, %v; want %q", got, err, pop3mem.DemoMessages()[1])
	}
}
