package imap

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// errNoBackend is returned by Probe on a handler built without a backend.
var errNoBackend = errors.New("imap: no backend configured")

// Probe learns the backend's pre-login capabilities on a connection of its
// own: it reads the greeting, asks CAPABILITY when the greeting carries no
// list, and logs out without logging in. The list then shapes what clients
// are offered from the first greeting on (a backend's IDLE, LITERAL+ or
// IMAP4rev2), before any client has logged in.
func (h *Handler) Probe(ctx context.Context) error {
	if h.opts.Backend == nil {
		return errNoBackend
	}
	c, err := h.opts.Backend.Open(ctx)
	if err != nil {
		return fmt.Errorf("probe backend: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Stop)
	defer stop()
	b := &backendConn{c: c}
	caps, err := b.greeting()
	if err == nil && caps == nil {
		caps, err = b.capability()
	}
	if err != nil {
		return fmt.Errorf("probe backend: %w", err)
	}
	// Polite, but not waited for: the answer changes nothing.
	c.WriteString(b.tag() + " LOGOUT\r\n")
	if caps == nil {
		return fmt.Errorf("probe backend: %w: no capability list", errBackendProtocol)
	}
	h.learnCaps(caps)
	return nil
}

// Watch keeps the backend's capabilities fresh until ctx ends: it probes
// whenever they are older than Options.CapabilityTTL (logins refresh them
// too, so a busy backend is rarely probed) and retries a failed probe with
// backoff.
func (h *Handler) Watch(ctx context.Context) {
	r := proxy.Refresher{
		TTL:   h.opts.CapabilityTTL,
		Age:   func() time.Duration { return h.caps.age(h.opts.Now()) },
		Probe: h.Probe,
		Log:   h.opts.Log,
	}
	if h.opts.Backend != nil {
		r.Backend = h.opts.Backend.Address
	}
	r.Run(ctx)
}
