package imap

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailfront/mailfront/internal/imapmem"
	"github.com/mailfront/mailfront/proxy"
)

// dialClient connects go-imap's client through the proxy, over implicit
// TLS or STARTTLS.
func (e *proxyEnv) dialClient(t *testing.T, starttls bool, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = e.client.Clone()
	var c *imapclient.Client
	var err error
	if starttls {
		c, err = imapclient.DialStartTLS(e.starttls.Addr().String(), opts)
	} else {
		c, err = imapclient.DialTLS(e.implicit.Addr().String(), opts)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// loggedIn is a go-imap client logged in as alice with INBOX selected.
func (e *proxyEnv) loggedIn(t *testing.T, starttls bool, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c := e.dialClient(t, starttls, opts)
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	return c
}

// fetchBodies fetches BODY.PEEK[] of the given sequence numbers.
func fetchBodies(t *testing.T, c *imapclient.Client, nums ...uint32) [][]byte {
	t.Helper()
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(nums...), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var out [][]byte
	for _, m := range msgs {
		if len(m.BodySection) != 1 {
			t.Fatalf("message %d: got %d body sections, want 1", m.SeqNum, len(m.BodySection))
		}
		out = append(out, m.BodySection[0].Bytes)
	}
	return out
}

func TestIMAPClientEndToEnd(t *testing.T) {
	t.Parallel()
	for _, starttls := range []bool{false, true} {
		t.Run(map[bool]string{false: "implicit TLS", true: "STARTTLS"}[starttls], func(t *testing.T) {
			e := startProxy(t, proxyConfig{})
			c := e.dialClient(t, starttls, nil)
			if caps := c.Caps(); caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.Cap("AUTH=PLAIN")) {
				t.Errorf("capabilities under TLS: got %v, want AUTH=PLAIN and no STARTTLS/LOGINDISABLED", caps)
			}
			if err := c.Login(testUser, testPassword).Wait(); err != nil {
				t.Fatalf("login: %v", err)
			}
			if caps := c.Caps(); !caps.Has(imap.CapIdle) || caps.Has(imap.Cap("AUTH=PLAIN")) {
				t.Errorf("capabilities after login: got %v, want the backend's (IDLE) without AUTH=", caps)
			}
			sel, err := c.Select("INBOX", nil).Wait()
			if err != nil {
				t.Fatalf("select: %v", err)
			}
			want := imapmem.DemoMessages()
			if sel.NumMessages != uint32(len(want)) {
				t.Errorf("select: got %d messages, want %d", sel.NumMessages, len(want))
			}
			got := fetchBodies(t, c, 1, 2, 3)
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Errorf("message %d: got %q, want %q", i+1, got[i], want[i])
				}
			}
			if err := c.Logout().Wait(); err != nil {
				t.Errorf("logout: %v", err)
			}
		})
	}
}

func TestFetchLargeMessageByteExact(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	var big bytes.Buffer
	big.WriteString("From: big@example.test\r\nSubject: 5 MB\r\n\r\n")
	for i := 0; big.Len() < 5<<20; i++ {
		fmt.Fprintf(&big, "line %07d %s\r\n", i, strings.Repeat("abcdefghij", 7))
	}
	if err := e.mem.AddMessage(testUser, "INBOX", big.Bytes()); err != nil {
		t.Fatal(err)
	}
	c := e.loggedIn(t, false, nil)
	got := fetchBodies(t, c, 4)
	if !bytes.Equal(got[0], big.Bytes()) {
		t.Fatalf("got %d bytes, want the %d-byte message byte for byte", len(got[0]), big.Len())
	}
}

// TestIdleReceivesExists holds IDLE for several times the pre-login idle
// limit (the relay uses the post-login one) and sees a delivery arrive.
func TestIdleReceivesExists(t *testing.T) {
	t.Parallel()
	const preLoginIdle = 150 * time.Millisecond
	e := startProxy(t, proxyConfig{Limits: proxy.Limits{Idle: preLoginIdle}})
	exists := make(chan uint32, 8)
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}}
	c := e.loggedIn(t, true, opts)
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	// Elapsed time is what is under test here, not a synchronisation.
	time.Sleep(3 * preLoginIdle)
	if err := e.mem.AddMessage(testUser, "INBOX", []byte("Subject: new\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-exists:
		if n != 4 {
			t.Errorf("got EXISTS %d, want 4", n)
		}
	case <-time.After(safety):
		t.Fatal("no EXISTS while idling")
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("idle close: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("idle end: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("logout: %v", err)
	}
}
