package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/imap"
	"github.com/mailfront/mailfront/pop3"
	"github.com/mailfront/mailfront/proxy"
	"github.com/mailfront/mailfront/tlsconf"
)

// front is a running proxy and what it needs to reload and stop.
type front struct {
	srv   *proxy.Server
	store *tlsconf.Store
	log   *slog.Logger
	drain time.Duration
}

// startFront wires the configuration into the packages' options and starts
// listening. store may be given (the demo's self-signed certificate);
// otherwise it is loaded from the configured files.
func startFront(cfg *config.Config, store *tlsconf.Store, log *slog.Logger) (*front, error) {
	if store == nil {
		min := uint16(tls.VersionTLS12)
		if cfg.TLS.MinVersion == "1.3" {
			min = tls.VersionTLS13
		}
		var files []tlsconf.CertFile
		for _, c := range cfg.TLS.Certificates {
			files = append(files, tlsconf.CertFile{CertFile: c.CertFile, KeyFile: c.KeyFile})
		}
		var err error
		store, err = tlsconf.New(tlsconf.Options{MinVersion: min, Certificates: files, Log: log})
		if err != nil {
			return nil, fmt.Errorf("load certificates: %w", err)
		}
	}
	lim := cfg.Limits
	limits := proxy.Limits{
		Line:            lim.LineLength,
		Literal:         lim.LiteralSize,
		Commands:        lim.Commands,
		InvalidCommands: lim.InvalidCommands,
		Idle:            lim.Idle,
		Total:           lim.Total,
		Handshake:       lim.Handshake,
	}
	srv := &proxy.Server{Log: log, MaxConns: lim.MaxConnections, Drain: cfg.Shutdown.Drain}
	for _, l := range cfg.Listeners {
		backend := &proxy.Backend{
			Address:   l.Backend,
			Connect:   lim.BackendConnect,
			Login:     lim.BackendLogin,
			Keepalive: lim.Keepalive,
		}
		pl := &proxy.Listener{
			Name:      l.Name,
			Protocol:  l.Protocol,
			Address:   l.Address,
			Mode:      proxy.Implicit,
			TLS:       store.Config(l.Protocol),
			Backend:   backend,
			Limits:    limits,
			MaxConns:  l.MaxConnections,
			Keepalive: lim.Keepalive,
		}
		if l.TLS == "starttls" {
			pl.Mode = proxy.STARTTLS
		}
		switch l.Protocol {
		case "imap":
			pl.Handler = imap.New(imap.Options{Backend: backend, Idle: lim.IMAPIdle})
		case "pop3":
			pl.Handler = pop3.New(pop3.Options{Backend: backend, Idle: lim.POP3Idle})
		default:
			return nil, fmt.Errorf("listener %s: unknown protocol %q", l.Name, l.Protocol)
		}
		srv.Listeners = append(srv.Listeners, pl)
	}
	if err := srv.Start(); err != nil {
		return nil, err
	}
	return &front{srv: srv, store: store, log: log, drain: cfg.Shutdown.Drain}, nil
}
