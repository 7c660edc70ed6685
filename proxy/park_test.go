//go:build linux

package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// optimized is the relay path these tests are about.
var optimized = relayOptions{mode: RelayOptimized, releaseTLS: true}

// waitParked waits until no relay direction has a goroutine.
func waitParked(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(parkAfter + 5*time.Second)
	for pipeGoroutines() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d relay directions still hold a goroutine %s after going quiet", pipeGoroutines(), parkAfter)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A quiet session holds no goroutine, and wakes for traffic either way.
func TestRelayParksWhenQuiet(t *testing.T) {
	if theParker() == nil {
		t.Skip("epoll unavailable")
	}
	client, backend, _, done := tlsRelay(t, context.Background(), optimized, time.Minute, nil)
	client.SetDeadline(time.Now().Add(20 * time.Second))
	backend.SetDeadline(time.Now().Add(20 * time.Second))
	for i := range 2 {
		waitParked(t)
		if _, err := client.Write([]byte("a IDLE\r\n")); err != nil {
			t.Fatal(err)
		}
		if got := readN(t, backend, 8); got != "a IDLE\r\n" {
			t.Fatalf("round %d: backend got %q", i, got)
		}
		waitParked(t)
		backend.Write([]byte("* 2 EXISTS\r\n"))
		buf := make([]byte, 12)
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "* 2 EXISTS\r\n" {
			t.Fatalf("round %d: client got %q, %v", i, buf, err)
		}
	}
	client.Close()
	backend.Close()
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
}

// The idle limit and shutdown still end a session whose directions are
// parked.
func TestRelayParkedIdleAndShutdown(t *testing.T) {
	if theParker() == nil {
		t.Skip("epoll unavailable")
	}
	t.Run("idle", func(t *testing.T) {
		idle := parkAfter + 700*time.Millisecond
		client, _, _, done := tlsRelay(t, context.Background(), optimized, idle, nil)
		waitParked(t)
		select {
		case err := <-done:
			if !errors.Is(err, errRelayIdle) {
				t.Fatalf("got %v, want idle timeout", err)
			}
		case <-time.After(idle + 5*time.Second):
			t.Fatal("parked session outlived its idle limit")
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := client.Read(make([]byte, 1)); err == nil {
			t.Fatal("client connection still open after idle timeout")
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		_, backend, _, done := tlsRelay(t, ctx, optimized, time.Minute, nil)
		waitParked(t)
		cancel()
		if err := <-done; !errors.Is(err, ErrShutdown) {
			t.Fatalf("got %v, want ErrShutdown", err)
		}
		backend.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := backend.Read(make([]byte, 1)); err == nil {
			t.Fatal("backend connection still open after shutdown")
		}
	})
}

// Half-close still passes through a parked direction: the backend's EOF
// reaches the client while the client's direction is parked, and the
// client can still send.
func TestRelayParkedHalfClose(t *testing.T) {
	if theParker() == nil {
		t.Skip("epoll unavailable")
	}
	client, backend, _, done := tlsRelay(t, context.Background(), optimized, time.Minute, nil)
	waitParked(t)
	backend.Write([]byte("* BYE\r\n"))
	backend.(*net.TCPConn).CloseWrite()
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "* BYE\r\n" {
		t.Fatalf("client got %q, %v; want the reply then EOF", got, err)
	}
	waitParked(t)
	client.Write([]byte("late"))
	client.CloseWrite()
	backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	if got, _ := io.ReadAll(backend); string(got) != "late" {
		t.Fatalf("backend got %q, want late", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("relay: %v", err)
	}
}

// crypto/tls keeps its input buffers at the largest size they reached; the
// engine drops them at hand-off and whenever a relayed client goes quiet.
// This also fails when a Go release renames crypto/tls's fields, so that
// releaseTLSBuffers is updated rather than silently doing nothing.
func TestReleaseTLSBuffers(t *testing.T) {
	if !tlsBufs.ok {
		t.Fatal("crypto/tls.Conn has no rawInput, input and hand buffers of the expected types: update tlsbuf.go")
	}
	client, backend, engine, _ := tlsRelay(t, context.Background(), optimized, time.Minute, func(c *tls.Conn) {
		if raw, hand := tlsBuffersCap(c); raw != 0 || hand != 0 {
			t.Errorf("after hand-off: rawInput cap %d, hand cap %d; want 0, 0", raw, hand)
		}
	})
	big := bytes.Repeat([]byte("x"), 64<<10)
	go client.Write(big)
	backend.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(backend, make([]byte, len(big))); err != nil {
		t.Fatal(err)
	}
	waitParked(t)
	// The parker's lock orders the parked direction's last access to
	// engine before this goroutine's.
	pk := theParker()
	pk.mu.Lock()
	raw, hand := tlsBuffersCap(engine)
	pk.mu.Unlock()
	if raw != 0 || hand != 0 {
		t.Fatalf("quiet after 16 KiB records: rawInput cap %d, hand cap %d; want 0, 0", raw, hand)
	}
}

// tlsBuffersCap is the capacity c's input buffers hold.
func tlsBuffersCap(c *tls.Conn) (rawInput, hand int) {
	return bufferAt(c, tlsBufs.rawInput).Cap(), bufferAt(c, tlsBufs.hand).Cap()
}
