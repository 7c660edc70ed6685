package proxy

import (
	"context"
	"errors"
	"math"
	"net"
	"testing"
	"time"
)

// TestCapCache: what was learnt is fresh for less than the TTL (the one
// boundary imap and pop3 share), stays available as Last after, and its
// age is "very long" before the first time.
func TestCapCache(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	c := &CapCache[[]string]{TTL: time.Minute, Now: func() time.Time { return now }}
	if v, fresh := c.Fresh(); v != nil || fresh || c.Age() != math.MaxInt64 {
		t.Fatalf("before learning: got %q, %v, age %v", v, fresh, c.Age())
	}
	c.Put([]string{"IDLE"})
	now = now.Add(time.Minute - time.Nanosecond)
	if _, fresh := c.Fresh(); !fresh {
		t.Fatal("just under the TTL: got stale, want fresh")
	}
	now = now.Add(time.Nanosecond)
	if v, fresh := c.Fresh(); fresh || len(v) != 1 {
		t.Fatalf("at the TTL: got %q, %v; want the list, stale", v, fresh)
	}
	if got := c.Last(); len(got) != 1 || c.Age() != time.Minute {
		t.Fatalf("Last %q, Age %v; want the list, 1m", got, c.Age())
	}
	if (&CapCache[int]{}).ttl() != DefaultCapabilityTTL {
		t.Fatal("zero TTL is not DefaultCapabilityTTL")
	}
}

// TestCapCacheProbe: a probe stores what ask learnt on its own backend
// connection, and stores nothing when the backend or ask fails.
func TestCapCacheProbe(t *testing.T) {
	t.Parallel()
	var c CapCache[string]
	if err := c.Probe(context.Background(), nil, nil); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("no backend: got %v, want ErrNoBackend", err)
	}
	b := &Backend{Address: echoBackend(t)}
	ask := func(conn *Conn) (string, error) {
		if err := conn.WriteString("hello\r\n"); err != nil {
			return "", err
		}
		line, err := conn.ReadLine()
		return string(line), err
	}
	if err := c.Probe(context.Background(), b, ask); err != nil || c.Last() != "hello" {
		t.Fatalf("got %v, %q; want hello learnt", err, c.Last())
	}
	failing := func(*Conn) (string, error) { return "", errors.New("not a mail server") }
	var d CapCache[string]
	if err := d.Probe(context.Background(), b, failing); err == nil || d.Age() != math.MaxInt64 {
		t.Fatalf("failed ask: got %v, age %v; want an error and nothing learnt", err, d.Age())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := d.Probe(context.Background(), &Backend{Address: ln.Addr().String()}, ask); err == nil || d.Age() != math.MaxInt64 {
		t.Fatalf("backend down: got %v, age %v; want an error and nothing learnt", err, d.Age())
	}
}
