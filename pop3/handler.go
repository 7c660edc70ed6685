package pop3

import (
	"context"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// IdleTimeout is the post-login idle limit handed to the relay: RFC 1939
// section 3 asks for an autologout timer of at least 10 minutes.
const IdleTimeout = 10 * time.Minute // RFC 1939 section 3 (>= 10 min)

// Options configure a Handler. Zero values mean the documented defaults;
// Idle defaults to IdleTimeout.
type Options = proxy.HandlerOptions

// Handler runs the POP3 pre-authentication dialogue for one listener. It is
// safe for concurrent use by many sessions. Its Front holds the backend,
// the post-login idle limit and what the backend's CAPA says (Caps), and probes for them.
type Handler struct {
	*proxy.Front[backendCaps]
}

// New returns a Handler with opts, defaults applied.
func New(opts Options) *Handler {
	h := &Handler{}
	h.Front = proxy.NewFront(opts, IdleTimeout, func(c *proxy.Conn) (backendCaps, error) {
		caps, err := ask(c)
		if err != nil {
			return caps, err
		}
		return h.learnt(caps), nil
	})
	return h
}

// Serve implements proxy.Handler: it greets the client, answers its
// pre-login commands and, once the backend accepts its login, returns the
// logged-in backend connection. It never reads past the client's login
// command, so the engine forwards anything pipelined after it exactly once.
func (h *Handler) Serve(ctx context.Context, ps *proxy.Session) (*proxy.Handoff, error) {
	return proxy.Converse(ps, newSession(ctx, h, ps))
}

// Refuse turns away a client the guard refuses on an STLS listener: an
// -ERR instead of the greeting (RFC 2449 section 8.1: SYS/TEMP).
func (h *Handler) Refuse(c *proxy.Conn) {
	c.WriteString("-ERR [SYS/TEMP] Too many connections or failed logins from your network; try again later\r\n")
}

var _ proxy.Handler = (*Handler)(nil)
