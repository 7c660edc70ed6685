package pop3

import (
	"context"
	"log/slog"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// IdleTimeout is the default post-login idle limit. RFC 1939 section 3: an
// autologout timer must be of at least 10 minutes' duration.
const IdleTimeout = 10 * time.Minute

// CapabilityTTL is how long a backend's CAPA is trusted before the next login
// connection asks again.
const CapabilityTTL = 5 * time.Minute

// Options configure a Handler. Zero values mean the defaults named per field.
type Options struct {
	// Backend is the plaintext POP3 server logins go to; required. One
	// Handler serves one backend, since what it learns (the capability
	// cache) is the backend's.
	Backend *proxy.Backend
	// Idle is the post-login idle limit (default IdleTimeout).
	Idle time.Duration
	// CapabilityTTL is the backend CAPA cache lifetime (default CapabilityTTL).
	CapabilityTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives the backend watcher's messages (default: discarded).
	Log *slog.Logger
}

// Handler runs the POP3 pre-authentication dialogue. It is safe for
// concurrent use by many sessions.
type Handler struct {
	backend *proxy.Backend
	idle    time.Duration
	caps    capCache
	log     *slog.Logger
}

// New returns a Handler for opts.
func New(opts Options) *Handler {
	if opts.Idle <= 0 {
		opts.Idle = IdleTimeout
	}
	if opts.CapabilityTTL <= 0 {
		opts.CapabilityTTL = CapabilityTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{
		backend: opts.Backend,
		idle:    opts.Idle,
		caps:    capCache{ttl: opts.CapabilityTTL, now: opts.Now},
		log:     opts.Log,
	}
}

// Serve greets the client and runs its dialogue until it logs in (the
// returned Handoff carries the logged-in backend connection), quits, or is
// dropped; s.Outcome says which.
func (h *Handler) Serve(ctx context.Context, s *proxy.Session) (*proxy.Handoff, error) {
	return newSession(ctx, h, s).run()
}

// Refuse turns away a client the guard refuses on an STLS listener: an
// -ERR instead of the greeting (RFC 2449 section 8.1: SYS/TEMP).
func (h *Handler) Refuse(c *proxy.Conn) {
	c.WriteString("-ERR [SYS/TEMP] Too many connections or failed logins from your network; try again later\r\n")
}

var _ proxy.Handler = (*Handler)(nil)
