//go:build integration

package integration

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailfront/mailfront/internal/pop3client"
)

// The Go client suite: the clients the unit tests drive against the
// in-memory backends (imap.TestIMAPClientEndToEnd,
// TestFetchLargeMessageByteExact, TestIdleReceivesExists,
// pop3.TestLoginRetrieve5MB), here through the real binary to a real
// Dovecot, on each relay path (relay.mode optimized, the default, and
// standard).

// relayModes are the values of relay.mode the Go client suite runs with.
var relayModes = []string{"optimized", "standard"}

// setupRelay is setup with relay.mode set, checked in mailfront's
// "listening" lines.
func setupRelay(t *testing.T, mode string) *env {
	t.Helper()
	dv := startDovecot(t)
	mf := startFront(t, dv, frontSpec{yaml: "relay:\n  mode: " + mode + "\n"})
	mf.log.wait(t, 0, regexp.MustCompile(`msg=listening listener=`+lnIMAPS+` .* relay=`+mode+`( |$)`), mf.exited)
	return &env{dv: dv, mf: mf.front}
}

var tlsModes = []struct {
	name     string
	starttls bool
}{
	{"implicit TLS", false},
	{"STARTTLS", true},
}

// dialIMAP connects go-imap's client to mailfront.
func (e *env) dialIMAP(t *testing.T, starttls bool, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	if opts == nil {
		opts = &imapclient.Options{}
	}
	opts.TLSConfig = e.mf.tlsConfig()
	var c *imapclient.Client
	var err error
	if starttls {
		c, err = imapclient.DialStartTLS(e.mf.imap, opts)
	} else {
		c, err = imapclient.DialTLS(e.mf.imaps, opts)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fetchUID fetches BODY.PEEK[] of one message by UID.
func fetchUID(t *testing.T, c *imapclient.Client, uid imap.UID) []byte {
	t.Helper()
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatalf("fetch UID %d: %v", uid, err)
	}
	if len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		t.Fatalf("fetch UID %d: got %d messages, want 1 with one body section", uid, len(msgs))
	}
	return msgs[0].BodySection[0].Bytes
}

func TestGoIMAPClient(t *testing.T) {
	for _, relay := range relayModes {
		t.Run("relay "+relay, func(t *testing.T) {
			e := setupRelay(t, relay)
			for _, mode := range tlsModes {
				t.Run(mode.name, func(t *testing.T) {
					c := e.dialIMAP(t, mode.starttls, nil)
					if caps := c.Caps(); caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.Cap("AUTH=PLAIN")) {
						t.Errorf("capabilities under TLS: got %v, want AUTH=PLAIN and neither STARTTLS nor LOGINDISABLED", caps)
					}
					if err := c.Login(testUser, testPassword).Wait(); err != nil {
						t.Fatalf("login: %v", err)
					}
					if caps := c.Caps(); !caps.Has(imap.CapIdle) || !caps.Has(imap.CapUIDPlus) {
						t.Errorf("capabilities after login: got %v, want Dovecot's (IDLE, UIDPLUS)", caps)
					}
					sel, err := c.Select("INBOX", nil).Wait()
					if err != nil {
						t.Fatalf("select: %v", err)
					}
					want := testMessages()
					if sel.NumMessages != uint32(len(want)) {
						t.Fatalf("select INBOX: got %d messages, want %d", sel.NumMessages, len(want))
					}
					for i, w := range want {
						uid := imap.UID(i + 1)
						if got := fetchUID(t, c, uid); !bytes.Equal(got, w) {
							t.Errorf("UID %d: got %d bytes (%.60q...), want the %d bytes stored, byte for byte", uid, len(got), got, len(w))
						}
					}
					if err := c.Logout().Wait(); err != nil {
						t.Errorf("logout: %v", err)
					}
				})
			}
		})
	}
}

// TestGoIMAPIdle idles through mailfront while a message arrives, either
// delivered into the maildir or appended by a second session through
// mailfront; Dovecot's EXISTS must come through the relay at once, and the
// message must be there, byte for byte. The 5 MB APPEND checks the relay
// from client to backend as the fetches check the other way.
func TestGoIMAPIdle(t *testing.T) {
	for _, relay := range relayModes {
		t.Run("relay "+relay, func(t *testing.T) {
			e := setupRelay(t, relay)
			tests := []struct {
				name     string
				starttls bool
				msg      []byte
				deliver  func(t *testing.T, msg []byte)
			}{
				{"implicit TLS, maildir delivery", false, newMessage("delivered over implicit TLS"), e.dv.deliver},
				{"STARTTLS, maildir delivery", true, newMessage("delivered over STARTTLS"), e.dv.deliver},
				{"STARTTLS, 5 MB APPEND over implicit TLS", true, bigMessage(), func(t *testing.T, msg []byte) {
					c := e.dialIMAP(t, false, nil)
					if err := c.Login(testUser, testPassword).Wait(); err != nil {
						t.Fatalf("appender login: %v", err)
					}
					if _, err := appendMessage(c, msg); err != nil {
						t.Fatalf("append: %v", err)
					}
					if err := c.Logout().Wait(); err != nil {
						t.Errorf("appender logout: %v", err)
					}
				}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					// The session stays quiet for longer than mailfront's
					// relay takes to park a quiet direction (half a second)
					// before the message arrives, so the EXISTS must wake a
					// parked session: this wait is the scenario (a client
					// idling), not a synchronisation.
					c, sel := e.idleThrough(t, tt.starttls, testUser, testPassword, func() {
						time.Sleep(2 * time.Second)
						tt.deliver(t, tt.msg)
					}, 30*time.Second)
					uid := sel.UIDNext
					if got := fetchUID(t, c, uid); !bytes.Equal(got, tt.msg) {
						t.Errorf("UID %d: got %d bytes (%.60q...), want the %d bytes delivered, byte for byte", uid, len(got), got, len(tt.msg))
					}
					if err := c.Logout().Wait(); err != nil {
						t.Errorf("logout: %v", err)
					}
				})
			}
		})
	}
}

func TestGoPOP3Client(t *testing.T) {
	for _, relay := range relayModes {
		t.Run("relay "+relay, func(t *testing.T) {
			e := setupRelay(t, relay)
			for _, mode := range tlsModes {
				t.Run(mode.name, func(t *testing.T) {
					c := e.pop3Client(t, mode.starttls)
					if err := c.Login(testUser, testPassword); err != nil {
						t.Fatalf("USER/PASS: %v", err)
					}
					want := testMessages()
					var total int64
					for _, m := range want {
						total += int64(len(m))
					}
					n, size, err := c.Stat()
					if err != nil || n != len(want) || size != total {
						t.Fatalf("STAT: got %d %d (%v), want %d %d", n, size, err, len(want), total)
					}
					sizes, err := c.List()
					if err != nil {
						t.Fatalf("LIST: %v", err)
					}
					for i, w := range want {
						if sizes[i+1] != int64(len(w)) {
							t.Errorf("LIST %d: got %d octets, want %d", i+1, sizes[i+1], len(w))
						}
						got, err := c.Retr(i + 1)
						if err != nil {
							t.Fatalf("RETR %d: %v", i+1, err)
						}
						if !bytes.Equal(got, w) {
							t.Errorf("RETR %d: got %d bytes (%.60q...), want the %d bytes stored, byte for byte", i+1, len(got), got, len(w))
						}
					}
					if err := c.Quit(); err != nil {
						t.Errorf("QUIT: %v", err)
					}
				})
			}
		})
	}
}

// pop3Client connects internal/pop3client to mailfront and is ready to log
// in: over implicit TLS, or upgraded with STLS.
func (e *env) pop3Client(t *testing.T, starttls bool) *pop3client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	var c *pop3client.Client
	var err error
	if starttls {
		c, err = pop3client.Dial(ctx, e.mf.pop3)
		if err == nil {
			err = c.STLS(e.mf.tlsConfig())
		}
	} else {
		c, err = pop3client.DialTLS(ctx, e.mf.pop3s, e.mf.tlsConfig())
	}
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// idleThrough logs user in through mailfront (implicit TLS, or STARTTLS),
// selects INBOX and idles; once the server's "+ idling" has come through
// (it is watching the mailbox), it calls arrive, which puts one message in
// the INBOX, and waits up to within for the EXISTS that counts it. It ends
// the IDLE and returns the client, still logged in, and what SELECT said.
func (e *env) idleThrough(t *testing.T, starttls bool, user, password string, arrive func(), within time.Duration) (*imapclient.Client, *imap.SelectData) {
	t.Helper()
	exists := make(chan uint32, 16)
	opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	}}
	c := e.dialIMAP(t, starttls, opts)
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("SELECT: %v", err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	arrive()
	want := sel.NumMessages + 1
	deadline := time.After(within)
	for n := uint32(0); n != want; {
		select {
		case n = <-exists:
		case <-deadline:
			t.Fatalf("no EXISTS %d while idling within %v", want, within)
		}
	}
	if err := idle.Close(); err != nil {
		t.Fatalf("IDLE end: %v", err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	return c, sel
}
