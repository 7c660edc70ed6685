package proxy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// HandlerOptions configure a protocol handler (imap.New, pop3.New). Zero
// values mean the defaults named per field.
type HandlerOptions struct {
	// Backend is the plaintext server logins go to; required. One handler
	// serves one backend, since what it learns (the capability cache) is
	// the backend's.
	Backend *Backend
	// Idle is the post-login idle limit handed to the relay (default: the
	// protocol's, imap.IdleTimeout or pop3.IdleTimeout).
	Idle time.Duration
	// CapabilityTTL is how long learnt backend capabilities are used
	// (default DefaultCapabilityTTL).
	CapabilityTTL time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// Log receives the backend watcher's messages (default: discarded).
	Log *slog.Logger
	// Capabilities edits what the backend is taken to support, for a
	// backend that does not say (a POP3 server without CAPA) or says
	// what it should not; the protocol handler says which names it takes.
	Capabilities CapabilityEdit
}

// CapabilityEdit is the operator's word on a backend's capabilities:
// names to add to what the backend advertises, and names to remove.
type CapabilityEdit struct {
	Add, Remove []string
}

// Front is the part of a protocol handler that every protocol has: the
// backend it fronts, the post-login idle limit, what it has learnt about
// the backend's capabilities (T, in the protocol's own form) and how it
// learns it. imap.Handler and pop3.Handler embed one.
type Front[T any] struct {
	Backend *Backend
	Idle    time.Duration
	Caps    CapCache[T]
	// Edit is HandlerOptions.Capabilities, which the protocol applies to
	// what it learns.
	Edit CapabilityEdit
	log  *slog.Logger
	ask  func(*Conn) (T, error)

	addrRefused   atomic.Bool // ClientAddressRefused has logged
	notAdvertised atomic.Bool // NotAdvertised has logged
}

// NewFront applies opts' defaults (idle is the protocol's post-login idle
// limit). ask learns the capabilities on a backend connection of its own,
// for Probe and Watch: it reads the greeting, asks, and says goodbye
// without waiting for the answer; it never logs in.
func NewFront[T any](opts HandlerOptions, idle time.Duration, ask func(*Conn) (T, error)) *Front[T] {
	if opts.Idle > 0 {
		idle = opts.Idle
	}
	return &Front[T]{
		Backend: opts.Backend,
		Idle:    idle,
		Caps:    CapCache[T]{TTL: opts.CapabilityTTL, Now: opts.Now},
		Edit:    opts.Capabilities,
		log:     opts.Log,
		ask:     ask,
	}
}

// Probe learns the backend's capabilities on a connection of its own (see
// CapCache.Probe), so that what clients are offered is the backend's from
// the first greeting on, before any client has logged in.
func (f *Front[T]) Probe(ctx context.Context) error {
	return f.Caps.Probe(ctx, f.Backend, f.ask)
}

// Watch keeps the backend's capabilities fresh until ctx ends (see
// CapCache.Watch); logins that have to ask refresh them too (the
// protocol decides which), so such a busy backend is rarely probed.
func (f *Front[T]) Watch(ctx context.Context) {
	f.Caps.Watch(ctx, f.Backend, f.ask, f.log)
}

// ClientAddressRefused logs, once in the backend's life, that it refused
// the command that tells it the client's address (IMAP's ID, POP3's
// XCLIENT): its logs and defences then see mailfront's address. Logins go
// on.
func (f *Front[T]) ClientAddressRefused(command string) {
	if f.addrRefused.Swap(true) || f.log == nil {
		return
	}
	f.log.Warn("the backend refused to be told the clients' addresses; it sees mailfront's instead",
		"command", command, "backend", f.Backend.Address,
		"hint", "add mailfront's address to the backend's trusted networks (Dovecot: login_trusted_networks), or set the listener's client_address to none")
}

// NotAdvertised logs, once in the backend's life, that it does not
// advertise its capabilities (a POP3 server that answers CAPA with -ERR)
// and what mailfront offers clients instead, offer. Without an edit in
// the configuration that is a warning: clients that trust the list may
// stop using commands the server has (POP3 UIDL: "leave mail on the
// server"), and hint says what to declare.
func (f *Front[T]) NotAdvertised(offer, hint string) {
	if f.notAdvertised.Swap(true) || f.log == nil {
		return
	}
	if len(f.Edit.Add) > 0 || len(f.Edit.Remove) > 0 {
		f.log.Info("backend does not advertise its capabilities", "backend", f.Backend.Address, "offer", offer,
			"declared", "the listener's capabilities key")
		return
	}
	f.log.Warn("backend does not advertise its capabilities", "backend", f.Backend.Address, "offer", offer, "hint", hint)
}
