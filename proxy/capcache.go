package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
)

// ErrNoBackend is returned by a probe of a handler built without a backend.
var ErrNoBackend = errors.New("proxy: no backend configured")

// CapCache remembers what a protocol handler learnt about its backend's
// capabilities, in the handler's own form T (an IMAP capability list, what
// a POP3 CAPA says about logging in). It is learnt by probes (Probe, kept
// fresh by Watch) and by the handler on the connections it logs clients in
// with. It is safe for concurrent use; the zero value is ready.
type CapCache[T any] struct {
	// TTL is how long what was learnt counts as fresh (default
	// DefaultCapabilityTTL).
	TTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu    sync.Mutex
	val   T
	at    time.Time
	known bool
}

func (c *CapCache[T]) ttl() time.Duration {
	if c.TTL <= 0 {
		return DefaultCapabilityTTL
	}
	return c.TTL
}

func (c *CapCache[T]) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}

// Fresh returns what was learnt and whether it is younger than the TTL.
func (c *CapCache[T]) Fresh() (T, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.val, c.known && now.Sub(c.at) < c.ttl()
}

// Last returns what was last learnt, of any age (the zero T before the
// first time). Offering it while a refresh is due keeps what clients see
// from flapping when the backend is briefly down.
func (c *CapCache[T]) Last() T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.val
}

// Age is how long ago it was learnt; a very long time when it never was.
func (c *CapCache[T]) Age() time.Duration {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known {
		return math.MaxInt64
	}
	return now.Sub(c.at)
}

// Put records v as learnt now.
func (c *CapCache[T]) Put(v T) {
	now := c.now()
	c.mu.Lock()
	c.val, c.at, c.known = v, now, true
	c.mu.Unlock()
}

// Probe learns on a connection of its own: it dials b, runs ask on it
// (which reads the greeting, asks for the capabilities and says goodbye,
// without waiting for the answer, since it changes nothing), and stores
// what ask learnt. No login is attempted. ctx ending interrupts it.
func (c *CapCache[T]) Probe(ctx context.Context, b *Backend, ask func(*Conn) (T, error)) error {
	if b == nil {
		return ErrNoBackend
	}
	conn, err := b.Open(ctx, nil)
	if err != nil {
		return fmt.Errorf("probe backend: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, conn.Stop)
	defer stop()
	v, err := ask(conn)
	if err != nil {
		return fmt.Errorf("probe backend: %w", err)
	}
	c.Put(v)
	return nil
}

// Watch keeps what was learnt fresh until ctx ends: it probes (Probe with
// b and ask) whenever it is older than the TTL, so a backend that logins
// already keep fresh is never probed and an idle one is probed once per
// TTL. A failed probe is retried with backoff (DefaultRefreshRetry,
// doubling up to the TTL); the backend becoming unreachable and reachable
// again is logged once each, not at every retry.
func (c *CapCache[T]) Watch(ctx context.Context, b *Backend, ask func(*Conn) (T, error), log *slog.Logger) {
	r := refresher{
		TTL:   c.ttl(),
		Age:   c.Age,
		Probe: func(ctx context.Context) error { return c.Probe(ctx, b, ask) },
		Log:   log,
	}
	if b != nil {
		r.Backend = b.Address
	}
	r.Run(ctx)
}
