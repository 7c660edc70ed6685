package proxy

import (
	"context"
	"fmt"
	"net"
	"net/netip"
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
	// ClientAddress is how the backend learns the client's address. The
	// PROXY header and loopback ways are Open's; ID and XCLIENT are the
	// protocol handlers'.
	ClientAddress ClientAddress
	// Network groups client addresses for ClientAddressLoopback (the
	// guard's grouping); nil: one IPv4 address, an IPv6 /64.
	Network func(netip.Addr) netip.Prefix
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

// Open dials the backend for peer's session (nil: a probe of mailfront's
// own) and wraps it in a Conn whose reads time out after the login
// timeout. Under ClientAddressLoopback it dials from the client network's
// own loopback address; under ClientAddressProxyV1 and V2 it sends the
// PROXY header first.
func (b *Backend) Open(ctx context.Context, peer *Peer) (*Conn, error) {
	connect, login := b.EffectiveTimeouts()
	network, addr := b.target()
	dctx, cancel := context.WithTimeout(ctx, connect)
	defer cancel()
	var c net.Conn
	var err error
	d := dialer(b.Keepalive)
	if b.ClientAddress == ClientAddressLoopback {
		if d.LocalAddr, err = b.loopbackDialSource(peer); err != nil {
			return nil, fmt.Errorf("dial backend %s: %w", b.Address, err)
		}
	}
	if b.Dial != nil {
		c, err = b.Dial(dctx, network, addr)
	} else {
		c, err = d.DialContext(dctx, network, addr)
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
	bc := NewConn(c, Limits{Line: backendLine, Idle: login, Total: login, Write: login})
	if v := b.proxyVersion(); v != 0 {
		hdr, err := proxyHeader(v, peer)
		if err == nil {
			err = bc.WriteString(string(hdr))
		}
		if err != nil {
			bc.Close()
			return nil, fmt.Errorf("send PROXY header to backend %s: %w", b.Address, err)
		}
	}
	return bc, nil
}

// proxyVersion is the PROXY header version backend connections start
// with, or 0.
func (b *Backend) proxyVersion() byte {
	switch b.ClientAddress {
	case ClientAddressProxyV2:
		return 2
	case ClientAddressProxyV1:
		return 1
	}
	return 0
}

// LastReached is when the backend last accepted a connection (zero if never).
func (b *Backend) LastReached() time.Time {
	n := b.lastOK.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
