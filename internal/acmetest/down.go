package acmetest

import (
	"fmt"
	"net"
	"sync"
)

// SetDown takes the ACME server down or brings it back on the same address.
// Down, its listening socket is closed, so new connections are refused
// (ECONNREFUSED, as from a stopped server), and open connections, idle
// keep-alives included, are closed; requests are not counted. Up, it
// listens again on the same port, so DirectoryURL is unchanged. Pebble's
// state (accounts, orders, issued certificates) survives.
func (c *CA) SetDown(down bool) {
	if down {
		c.down.Store(true)
		if err := c.ln.setUp(false); err != nil {
			c.t.Errorf("acmetest: take server down: %v", err)
		}
		c.srv.CloseClientConnections()
		return
	}
	c.down.Store(false)
	if err := c.ln.setUp(true); err != nil {
		c.t.Errorf("acmetest: bring server up: %v", err)
	}
}

// toggleListener is a TCP listener that can be closed and reopened on the
// same address under one http.Server: Accept waits while it is down.
type toggleListener struct {
	addr   net.Addr
	mu     sync.Mutex
	cur    net.Listener  // nil while down
	change chan struct{} // closed and replaced on every change
	closed bool
}

// toggle makes ln a toggleListener, up.
func toggle(ln net.Listener) *toggleListener {
	return &toggleListener{addr: ln.Addr(), cur: ln, change: make(chan struct{})}
}

func (l *toggleListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		cur, change, closed := l.cur, l.change, l.closed
		l.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if cur == nil {
			<-change
			continue
		}
		conn, err := cur.Accept()
		if err == nil {
			return conn, nil
		}
		l.mu.Lock()
		replaced := l.cur != cur || l.closed
		l.mu.Unlock()
		if !replaced {
			return nil, err
		}
	}
}

func (l *toggleListener) setUp(up bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return net.ErrClosed
	case up == (l.cur != nil):
		return nil
	case up:
		ln, err := net.Listen("tcp", l.addr.String())
		if err != nil {
			return fmt.Errorf("listen again on %s: %w", l.addr, err)
		}
		l.cur = ln
		l.changed()
		return nil
	default:
		err := l.cur.Close()
		l.cur = nil
		l.changed()
		if err != nil {
			return fmt.Errorf("close listener: %w", err)
		}
		return nil
	}
}

// changed wakes Accept; l.mu is held.
func (l *toggleListener) changed() {
	close(l.change)
	l.change = make(chan struct{})
}

func (l *toggleListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.change)
	if l.cur != nil {
		return l.cur.Close()
	}
	return nil
}

func (l *toggleListener) Addr() net.Addr { return l.addr }
