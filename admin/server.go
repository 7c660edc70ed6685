package admin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Timeouts of the admin server. Scrapes and probes are small; these bound
// what a slow or stuck client can hold.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 16 << 10
)

// Options configures the admin server.
type Options struct {
	// Address to listen on, such as "127.0.0.1:9090". Required: an empty
	// address would listen on every interface, and the server has no
	// authentication.
	Address string
	// Gatherer is served on /metrics; nil: /metrics is 404.
	Gatherer prometheus.Gatherer
	// Ready decides /readyz: nil error is 200 "ok", an error is 503 with
	// its text. nil Ready: always ready.
	Ready func() error
	// Guard's result is served on /guard as indented JSON; nil: /guard is
	// 404.
	Guard func() any
	// Log receives the server's errors; nil discards them.
	Log *slog.Logger
}

// Server is a running admin server.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// Start listens on opts.Address and serves in a goroutine until Close.
func Start(opts Options) (*Server, error) {
	if opts.Address == "" {
		return nil, errors.New("admin: no listen address")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Address)
	if err != nil {
		return nil, fmt.Errorf("listen admin %s: %w", opts.Address, err)
	}
	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           newMux(opts, log),
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops listening, closes every connection at once and waits for the
// serving goroutine to return.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if err != nil {
		return fmt.Errorf("close admin server: %w", err)
	}
	return nil
}
