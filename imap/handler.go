package imap

import (
	"context"
	"log/slog"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// IdleTimeout is the post-login idle limit handed to the relay: RFC 9051
// section 5.4 asks for an autologout timer of at least 30 minutes.
const IdleTimeout = 31 * time.Minute // RFC 9051 section 5.4 (>= 30 min)

// plaintextRefusal is the default text refusing a login before TLS: it
// tells the user what to change in their mail app.
const plaintextRefusal = "TLS is required to log in: use STARTTLS, or SSL/TLS on port 993"

// Options configure a Handler. Zero values mean the documented defaults.
type Options struct {
	// Backend is the plaintext IMAP server logins go to; required. One
	// Handler serves one backend, since what it learns (the capability
	// cache) is the backend's.
	Backend *proxy.Backend
	// Idle is the post-login idle limit (default IdleTimeout).
	Idle time.Duration
	// CapabilityTTL is how long learnt backend capabilities are used
	// (default DefaultCapabilityTTL).
	CapabilityTTL time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// Log receives the backend watcher's messages (default: discarded).
	Log *slog.Logger
}

// Handler runs the IMAP pre-authentication dialogue for one listener. It is
// safe for concurrent use by many sessions.
type Handler struct {
	opts Options
	caps capCache
}

// New returns a Handler with opts, defaults applied.
func New(opts Options) *Handler {
	if opts.Idle <= 0 {
		opts.Idle = IdleTimeout
	}
	if opts.CapabilityTTL <= 0 {
		opts.CapabilityTTL = DefaultCapabilityTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{opts: opts}
}

// Serve implements proxy.Handler: it greets the client, answers its
// pre-login commands and, once the backend accepts its login, returns the
// logged-in backend connection. It never reads past the client's login
// command, so the engine forwards anything pipelined after it exactly once.
func (h *Handler) Serve(ctx context.Context, ps *proxy.Session) (*proxy.Handoff, error) {
	s := newSession(ctx, h, ps)
	return s.serve()
}

// Refuse turns away a client the guard refuses on a STARTTLS listener:
// a BYE instead of the greeting (RFC 9051 section 7.1.5).
func (h *Handler) Refuse(c *proxy.Conn) {
	c.WriteString("* BYE [UNAVAILABLE] Too many connections or failed logins from your network; try again later\r\n")
}

// knownCaps is the backend's pre-login capability list learnt within the
// TTL, nil when there is none.
func (h *Handler) knownCaps() []string {
	return h.caps.get(h.opts.Now(), h.opts.CapabilityTTL)
}

// learnCaps records the backend's pre-login capability list.
func (h *Handler) learnCaps(caps []string) { h.caps.put(h.opts.Now(), caps) }
