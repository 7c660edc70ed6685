package proxy

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// backendLine bounds a backend's reply lines: a CAPABILITY line can be long.
const backendLine = 64 << 10

// Backend says how to reach one plaintext backend server.
type Backend struct {
	Address   string        // host:port, or unix:/path
	Connect   time.Duration // dial timeout (default DefaultBackendConnect)
	Login     time.Duration // greeting + login reply timeout (default DefaultBackendLogin)
	Keepalive time.Duration // TCP keepalive period (default DefaultKeepalive; negative: off)
	// Dial replaces net.Dialer, for tests.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialFailed, when set, is called for every failed dial (metrics).
	DialFailed func()

	lastOK atomic.Int64 // unix nanoseconds of the last successful dial
}

// Network and address to dial.
func (b *Backend) target() (network, addr string) {
	if p, ok := strings.CutPrefix(b.Address, "unix:"); ok {
		return "unix", p
	}
	return "tcp", b.Address
}

// Open dials the backend and wraps it in a Conn whose reads time out after
// the login timeout.
func (b *Backend) Open(ctx context.Context) (*Conn, error) {
	connect, login := b.EffectiveTimeouts()
	network, addr := b.target()
	dctx, cancel := context.WithTimeout(ctx, connect)
	defer cancel()
	var c net.Conn
	var err error
	if b.Dial != nil {
		c, err = b.Dial(dctx, network, addr)
	} else {
		c, err = dialer(b.Keepalive).DialContext(dctx, network, addr)
	}
	if err != nil {
		if b.DialFailed != nil && ctx.Err() == nil {
			b.DialFailed()
		}
		return nil, fmt.Errorf("dial backend %s: %w", b.Address, err)
	}
	// No SetNoDelay: Go's dialer already sets TCP_NODELAY, so the login
	// commands do not wait for Nagle.
	b.lastOK.Store(time.Now().UnixNano())
	return NewConn(c, Limits{Line: backendLine, Idle: login, Total: login, Write: login}), nil
}

// LastReached is when the backend last accepted a connection (zero if never).
func (b *Backend) LastReached() time.Time {
	n := b.lastOK.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
