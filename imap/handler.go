package imap

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// IdleTimeout is the post-login idle limit handed to the relay: RFC 9051
// section 5.4 asks for an autologout timer of at least 30 minutes.
const IdleTimeout = 31 * time.Minute // RFC 9051 section 5.4 (>= 30 min)

// plaintextRefusal is the default text refusing a login before TLS: it
// tells the user what to change in their mail app.
var plaintextRefusal = PlaintextRefusal(993)

// PlaintextRefusal is the text refusing a login before TLS on a STARTTLS
// listener when the same server takes implicit TLS on port implicit (0:
// none, or not known).
func PlaintextRefusal(implicit int) string {
	if implicit == 0 {
		return "TLS is required to log in: use STARTTLS"
	}
	return "TLS is required to log in: use STARTTLS, or SSL/TLS on port " + strconv.Itoa(implicit)
}

// Options configure a Handler. Zero values mean the documented defaults;
// Idle defaults to IdleTimeout.
type Options = proxy.HandlerOptions

// Handler runs the IMAP pre-authentication dialogue for one listener. It is
// safe for concurrent use by many sessions. Its Front holds the backend,
// the post-login idle limit and the backend's pre-login capabilities (Caps), and probes for them.
type Handler struct {
	*proxy.Front[[]string]
}

// New returns a Handler with opts, defaults applied.
func New(opts Options) *Handler {
	h := &Handler{}
	h.Front = proxy.NewFront(opts, IdleTimeout, func(c *proxy.Conn) ([]string, error) {
		caps, err := ask(c)
		if err != nil {
			return nil, err
		}
		return h.learnt(caps), nil
	})
	return h
}

// learnt is a pre-login capability list the backend gave, as the
// listener's configuration edits it (Options.Capabilities). A backend that
// gave none is logged once: mailfront then offers only IMAP4rev1 and what
// it implements itself, and what the configuration adds.
func (h *Handler) learnt(caps []string) []string {
	edited := edit(caps, h.Edit)
	if caps == nil {
		h.NotAdvertised(strings.Join(advertised(edited, true), " "),
			"declare what the server has on its listeners, such as capabilities: {add: [IDLE, UIDPLUS]}")
	}
	return edited
}

// Serve implements proxy.Handler: it greets the client, answers its
// pre-login commands and, once the backend accepts its login, returns the
// logged-in backend connection. It never reads past the client's login
// command, so the engine forwards anything pipelined after it exactly once.
func (h *Handler) Serve(ctx context.Context, ps *proxy.Session) (*proxy.Handoff, error) {
	return proxy.Converse(ps, newSession(ctx, h, ps))
}

// Refuse turns away a client the guard refuses on a STARTTLS listener:
// a BYE instead of the greeting (RFC 9051 section 7.1.5).
func (h *Handler) Refuse(c *proxy.Conn) {
	c.WriteString("* BYE [UNAVAILABLE] Too many connections or failed logins from your network; try again later\r\n")
}

var _ proxy.Handler = (*Handler)(nil)
