// Package pop3mem is a small in-memory plaintext POP3 server for mailfront's
// demo and tests: users with passwords, a maildrop per user, the RFC 1939
// commands (USER PASS STAT LIST UIDL RETR TOP DELE RSET NOOP QUIT), CAPA
// (RFC 2449) and AUTH PLAIN (RFC 5034, RFC 4616), with correct dot-stuffing.
//
// It records every line it receives, so tests can check what a backend
// saw, and has knobs for misbehaviour (no USER, no CAPA, slow or no
// greeting, maildrop locking). It is not a mail server: no TLS, no APOP,
// nothing persists.
package pop3mem

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Options shape a Server. The zero value is a well-behaved server with no
// users.
type Options struct {
	Users map[string]string // user name to password
	// NoUSER leaves USER out of CAPA and refuses USER: clients must use
	// AUTH PLAIN.
	NoUSER bool
	// NoCAPA answers CAPA with -ERR, like a plain RFC 1939 server.
	NoCAPA bool
	// GreetDelay is how long the server waits before greeting.
	GreetDelay time.Duration
	// Silent servers never greet: they read and record, and never answer.
	Silent bool
	// Lock allows one session per maildrop; another gets -ERR [IN-USE].
	Lock bool
}

// Server is a running in-memory POP3 server.
type Server struct {
	opts Options
	ln   net.Listener

	mu       sync.Mutex
	boxes    map[string][]*message
	locked   map[string]bool
	received [][]string
	conns    map[net.Conn]struct{}
	nextUID  int
	changed  chan struct{} // closed and replaced when received changes

	closed chan struct{}
	wg     sync.WaitGroup
}

// Listen starts a well-behaved server on addr (e.g. "127.0.0.1:0").
func Listen(addr string, users map[string]string) (*Server, error) {
	return ListenOptions(addr, Options{Users: users})
}

// ListenOptions starts a server with the given behaviour on addr.
func ListenOptions(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3mem: listen %s: %w", addr, err)
	}
	s := &Server{
		opts:    opts,
		ln:      ln,
		boxes:   make(map[string][]*message),
		locked:  make(map[string]bool),
		conns:   make(map[net.Conn]struct{}),
		changed: make(chan struct{}),
		closed:  make(chan struct{}),
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server, closes every connection and waits for them.
func (s *Server) Close() error {
	select {
	case <-s.closed:
		return nil
	default:
	}
	close(s.closed)
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Received returns, per connection in the order accepted, every line the
// server read (without CRLF).
func (s *Server) Received() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.received))
	for i, lines := range s.received {
		out[i] = append([]string(nil), lines...)
	}
	return out
}

// Connections is how many connections the server has accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		s.mu.Lock()
		idx := len(s.received)
		s.received = append(s.received, nil)
		s.conns[c] = struct{}{}
		s.notifyLocked()
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.forget(c)
			newSession(s, c, idx).serve()
		}()
	}
}

func (s *Server) forget(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) record(idx int, line string) {
	s.mu.Lock()
	s.received[idx] = append(s.received[idx], line)
	s.notifyLocked()
	s.mu.Unlock()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Wait blocks until cond holds for what the server has received (as
// Received returns it), or ctx ends. It wakes on every change, so tests
// need not poll.
func (s *Server) Wait(ctx context.Context, cond func(received [][]string) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s.Received()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("pop3mem: wait: %w", ctx.Err())
		}
	}
}

// newReader sizes the reader for long AUTH lines.
func newReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 16<<10) }
