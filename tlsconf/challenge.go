package tlsconf

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mholt/acmez/v3"
)

// maxChallengeConns bounds the connections each challenge listener serves
// at once; more are closed at accept. A CA validates from a handful of
// vantage points, so the bound only matters against a flood.
const maxChallengeConns = 64

// challengeServer is one listener that answers ACME challenges and
// nothing else: http-01 on HTTPAddress, tls-alpn-01 on TLSALPNAddress.
// It stays open while mailfront runs, so a challenge that another instance
// sharing the storage started is answered here too.
type challengeServer struct {
	ln   net.Listener
	srv  *http.Server // http-01 only
	done chan struct{}
}

// listen opens the configured challenge listeners.
func (m *acmeManager) listen() error {
	if m.opts.HTTPAddress != "" {
		s, err := m.serveHTTP(m.opts.HTTPAddress)
		if err != nil {
			return err
		}
		m.servers = append(m.servers, s)
	}
	if m.opts.TLSALPNAddress != "" {
		s, err := m.serveTLSALPN(m.opts.TLSALPNAddress)
		if err != nil {
			return err
		}
		m.servers = append(m.servers, s)
	}
	return nil
}

// serveHTTP answers /.well-known/acme-challenge/ (RFC 8555 section 8.3)
// and 404 to everything else.
func (m *acmeManager) serveHTTP(addr string) (*challengeServer, error) {
	ln, err := listenLimited(addr)
	if err != nil {
		return nil, fmt.Errorf("http-01 listener: %w", err)
	}
	srv := &http.Server{
		Handler:           m.issuer.HTTPChallengeHandler(http.NotFoundHandler()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	s := &challengeServer{ln: ln, srv: srv, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("http-01 listener stopped", "address", addr, "error", err)
		}
	}()
	m.log.Info("acme challenge listening", "challenge", "http-01", "address", ln.Addr().String())
	return s, nil
}

// serveTLSALPN completes handshakes that offer only acme-tls/1 with the
// challenge certificate (RFC 8737 section 3) and refuses every other one.
func (m *acmeManager) serveTLSALPN(addr string) (*challengeServer, error) {
	ln, err := listenLimited(addr)
	if err != nil {
		return nil, fmt.Errorf("tls-alpn-01 listener: %w", err)
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{acmez.ACMETLS1Protocol},
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			if hello.ServerName == "" || len(hello.SupportedProtos) != 1 || hello.SupportedProtos[0] != acmez.ACMETLS1Protocol {
				return nil, errors.New("not an acme-tls/1 challenge")
			}
			return m.cfg.GetCertificate(hello)
		},
	}
	s := &challengeServer{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go answerTLSALPN(c, conf)
		}
	}()
	m.log.Info("acme challenge listening", "challenge", "tls-alpn-01", "address", ln.Addr().String())
	return s, nil
}

// answerTLSALPN completes one validation handshake and closes: the
// validation is the handshake itself.
func answerTLSALPN(c net.Conn, conf *tls.Config) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Server(c, conf)
	if tc.Handshake() == nil {
		tc.Close()
	}
}

func (s *challengeServer) close() {
	if s.srv != nil {
		s.srv.Close()
	} else {
		s.ln.Close()
	}
	<-s.done
}

// limitedListener closes connections beyond maxChallengeConns at accept,
// instead of queueing them behind a flood.
type limitedListener struct {
	net.Listener
	slots chan struct{}
}

func listenLimited(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &limitedListener{Listener: ln, slots: make(chan struct{}, maxChallengeConns)}, nil
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
		default:
			c.Close()
		}
	}
}

// slotConn gives its slot back when closed, once.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}
