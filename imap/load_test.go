package imap

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailfront/mailfront/internal/imapmem"
)

// TestConcurrentSessions holds 300 logged-in sessions at once through both
// listeners, then has each fetch a message and log out. Handshakes are
// staggered (a few at a time) so that a slow machine under the race
// detector does not hit the handshake limit; the sessions themselves are
// all open together.
func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	e := startProxy(t, proxyConfig{})
	const n = 300
	want := imapmem.DemoMessages()[1]
	handshakes := make(chan struct{}, 8)
	var all, done sync.WaitGroup
	all.Add(n)
	errs := make(chan error, n)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			handshakes <- struct{}{}
			c, err := e.loginOnce(i%2 == 0)
			<-handshakes
			all.Done()
			if err == nil {
				all.Wait() // every session is open now
				err = fetchOnce(c, want)
				c.Close()
			}
			if err != nil {
				errs <- fmt.Errorf("session %d: %w", i, err)
			}
		}()
	}
	done.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// loginOnce dials and logs in; it reports rather than fails, as it runs
// off the test goroutine.
func (e *proxyEnv) loginOnce(starttls bool) (*imapclient.Client, error) {
	opts := &imapclient.Options{TLSConfig: e.client.Clone()}
	var c *imapclient.Client
	var err error
	if starttls {
		c, err = imapclient.DialStartTLS(e.starttls.Addr().String(), opts)
	} else {
		c, err = imapclient.DialTLS(e.implicit.Addr().String(), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		c.Close()
		return nil, fmt.Errorf("login: %w", err)
	}
	return c, nil
}

func fetchOnce(c *imapclient.Client, want []byte) error {
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return fmt.Errorf("select: %w", err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if len(msgs) != 1 || len(msgs[0].BodySection) != 1 || !bytes.Equal(msgs[0].BodySection[0].Bytes, want) {
		return fmt.Errorf("fetch: got %d messages, want message 2 byte for byte", len(msgs))
	}
	if err := c.Logout().Wait(); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
}
