package imapmem

import (
	"bytes"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestDemoServer(t *testing.T) {
	s, err := Start("127.0.0.1:0", map[string]string{DemoUser: DemoPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := imapclient.DialInsecure(s.Addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if caps := c.Caps(); caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) {
		t.Errorf("got capabilities %v, want a plaintext backend that takes LOGIN", caps)
	}
	if err := c.Login(DemoUser, "wrong").Wait(); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if err := c.Login(DemoUser, DemoPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if !c.Caps().Has(imap.CapIdle) {
		t.Errorf("got capabilities %v after login, want IDLE", c.Caps())
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	want := DemoMessages()
	if int(sel.NumMessages) != len(want) {
		t.Fatalf("got %d messages, want %d", sel.NumMessages, len(want))
	}
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0].BodySection[0].Bytes, want[0]) {
		t.Fatalf("fetch: got %v, %v; want the first demo message", msgs, err)
	}
}

func TestAddMessage(t *testing.T) {
	s := New(map[string]string{"u": "p"})
	if err := s.AddMessage("u", "Archive", []byte("Subject: x\r\n\r\ny\r\n")); err != nil {
		t.Fatalf("add to a new mailbox: %v", err)
	}
	if err := s.AddMessage("nobody", "INBOX", []byte("x")); err == nil {
		t.Fatal("add for an unknown user: got nil, want an error")
	}
}
