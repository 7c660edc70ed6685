package tlsconf

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestChallengeListenerLimit checks that a challenge listener serves at
// most maxChallengeConns connections at once, closes the ones beyond at
// accept, and takes new ones again once a slot is free.
func TestChallengeListenerLimit(t *testing.T) {
	t.Parallel()
	ln, err := listenLimited("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for range maxChallengeConns {
		dial()
		held = append(held, <-accepted)
	}
	extra := dial()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection %d: got %v, want it closed by the listener (EOF)", maxChallengeConns+1, err)
	}
	held[0].Close()
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not given to the next connection")
	}
	for _, c := range held[1:] {
		c.Close()
	}
}
