package pop3

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// errNoBackend is returned by Probe on a handler built without a backend.
var errNoBackend = errors.New("pop3: no backend configured")

// Probe learns the backend's capabilities on a connection of its own: it
// reads the greeting, asks CAPA and quits without logging in. The list then
// shapes CAPA for clients (TOP, UIDL, PIPELINING...) and the login method
// from the first client on.
func (h *Handler) Probe(ctx context.Context) error {
	if h.backend == nil {
		return errNoBackend
	}
	be, err := h.backend.Open(ctx)
	if err != nil {
		return fmt.Errorf("probe backend: %w", err)
	}
	defer be.Close()
	stop := context.AfterFunc(ctx, be.Stop)
	defer stop()
	line, err := be.ReadLine()
	if err != nil {
		return fmt.Errorf("probe backend: %w", backendErr("read backend greeting", err))
	}
	if !strings.HasPrefix(string(line), "+OK") {
		return fmt.Errorf("probe backend: greeting not +OK: %w", errUnavailable)
	}
	caps, err := fetchCaps(be)
	if err != nil {
		return fmt.Errorf("probe backend: %w", err)
	}
	// Polite, but not waited for: the answer changes nothing.
	be.WriteString("QUIT\r\n")
	h.caps.put(caps)
	return nil
}

// Watch keeps the backend's capabilities fresh until ctx ends: it probes
// whenever they are older than Options.CapabilityTTL (logins refresh them
// too) and retries a failed probe with backoff.
func (h *Handler) Watch(ctx context.Context) {
	r := proxy.Refresher{TTL: h.caps.ttl, Age: h.caps.age, Probe: h.Probe, Log: h.log}
	if h.backend != nil {
		r.Backend = h.backend.Address
	}
	r.Run(ctx)
}
