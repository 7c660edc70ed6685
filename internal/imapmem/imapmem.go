// Package imapmem is an in-memory plaintext IMAP server for mailfront's
// demo and tests: go-imap's imapmemserver behind imapserver, with
// InsecureAuth (it plays the legacy backend mailfront fronts), IDLE, and a
// way to deliver messages while clients are connected.
//
// It is not a mail store: nothing persists, and it follows RFC 3501 only as
// far as go-imap does.
package imapmem

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// Demo credentials.
const (
	DemoUser     = "demo"
	DemoPassword = "demo-password"
)

// caps are the capabilities the server advertises; go-imap adds IDLE,
// ENABLE, UNSELECT and others after login.
var caps = imap.CapSet{
	imap.CapIMAP4rev1:   {},
	imap.CapNamespace:   {},
	imap.CapUIDPlus:     {},
	imap.CapMove:        {},
	imap.CapLiteralPlus: {},
	imap.CapChildren:    {},
}

// Server is one in-memory IMAP server.
type Server struct {
	Addr string // host:port once listening
	// Log receives go-imap's error messages (default: discarded).
	Log *slog.Logger

	mem   *imapmemserver.Server
	srv   *imapserver.Server
	mu    sync.Mutex
	users map[string]*imapmemserver.User
	done  chan struct{}
}

// New returns a server with the given users (name to password), each with an
// empty INBOX. It does not listen yet.
func New(users map[string]string) *Server {
	s := &Server{mem: imapmemserver.New(), users: make(map[string]*imapmemserver.User)}
	for name, pass := range users {
		u := imapmemserver.NewUser(name, pass)
		u.Create("INBOX", nil)
		s.mem.AddUser(u)
		s.users[name] = u
	}
	return s
}

// Listen binds addr ("127.0.0.1:0" picks a port) and serves in the
// background until Close.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("imapmem listen %s: %w", addr, err)
	}
	s.Addr = ln.Addr().String()
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return s.mem.NewSession(), nil, nil
		},
		Caps:         caps,
		Logger:       slogPrinter{log},
		InsecureAuth: true,
	})
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		s.srv.Serve(ln)
	}()
	return nil
}

// Close stops listening and closes every connection.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	<-s.done
	return err
}

// AddMessage appends raw to a user's mailbox (created if missing). Clients
// idling on it see the new message (EXISTS).
func (s *Server) AddMessage(user, mailbox string, raw []byte) error {
	s.mu.Lock()
	u := s.users[user]
	s.mu.Unlock()
	if u == nil {
		return fmt.Errorf("imapmem add message: no user %q", user)
	}
	if _, err := u.Status(mailbox, &imap.StatusOptions{}); err != nil {
		if err := u.Create(mailbox, nil); err != nil {
			return fmt.Errorf("imapmem create %s: %w", mailbox, err)
		}
	}
	if _, err := u.Append(mailbox, literal{bytes.NewReader(raw)}, &imap.AppendOptions{}); err != nil {
		return fmt.Errorf("imapmem append to %s: %w", mailbox, err)
	}
	return nil
}

// literal adapts a bytes.Reader to imap.LiteralReader.
type literal struct{ *bytes.Reader }

// Start is New, the demo messages for every user's INBOX, and Listen.
func Start(addr string, users map[string]string) (*Server, error) {
	s := New(users)
	for name := range users {
		for _, m := range DemoMessages() {
			if err := s.AddMessage(name, "INBOX", m); err != nil {
				return nil, err
			}
		}
	}
	if err := s.Listen(addr); err != nil {
		return nil, err
	}
	return s, nil
}

// slogPrinter adapts slog to imapserver.Logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if strings.Contains(msg, net.ErrClosed.Error()) {
		return // Close ends connections mid-read
	}
	p.l.Warn("imapmem", "message", msg)
}
