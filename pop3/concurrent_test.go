package pop3

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/mailfront/mailfront/internal/pop3client"
)

// TestConcurrentSessions runs many whole sessions at once, over both
// listeners, and checks each got its own messages intact.
func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	const n = 100
	f := startProxy(t)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		f.sessions.Add(1)
		go func() {
			defer wg.Done()
			if err := f.session(modes[i%2]); err != nil {
				errs <- fmt.Errorf("session %d (%s): %w", i, modes[i%2], err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := f.mem.Connections(); got != n {
		t.Errorf("backend saw %d connections, want %d", got, n)
	}
}

// session logs in as alice, checks STAT and RETR 2, and quits.
func (f *fixture) session(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	var c *pop3client.Client
	var err error
	if mode == "implicit" {
		c, err = pop3client.DialTLS(ctx, f.implicit.Addr().String(), f.clientTLS)
	} else if c, err = pop3client.Dial(ctx, f.starttls.Addr().String()); err == nil {
		err = c.STLS(f.clientTLS)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login("alice", alicePassword); err != nil {
		return err
	}
	count, _, err := c.Stat()
	if err != nil || count != 2 {
		return fmt.Errorf("got STAT %d, %v; want 2 messages", count, err)
	}
	msg, err := c.Retr(2)
	if err != nil {
		return err
	}
	if want := f.mem.Messages("alice")[1]; !bytes.Equal(msg, want) {
		return fmt.Errorf("got RETR 2 %q, want %q", msg, want)
	}
	return c.Quit()
}
