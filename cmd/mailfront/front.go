package main

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailfront/mailfront/admin"
	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/imap"
	"github.com/mailfront/mailfront/metrics"
	"github.com/mailfront/mailfront/pop3"
	"github.com/mailfront/mailfront/proxy"
	"github.com/mailfront/mailfront/tlsconf"
)

// front is a running proxy and what it needs to reload and stop.
type front struct {
	srv       *proxy.Server
	store     *tlsconf.Store
	log       *slog.Logger
	drain     time.Duration
	stopWatch context.CancelFunc // ends the backend watchers
	watchCtx  context.Context
	ends      *backends
	admin     *admin.Server // nil when not configured
	serving   atomic.Bool   // the listeners are open
}

// startFront wires the configuration into the packages' options and starts
// listening with a store built from the configuration (the demo, tests).
func startFront(cfg *config.Config, log *slog.Logger) (*front, error) {
	store, err := newStore(cfg.TLS, log)
	if err != nil {
		return nil, err
	}
	f, err := prepareFront(cfg, store, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	if err := store.Start(context.Background()); err != nil {
		f.stop(context.Background())
		return nil, err
	}
	if err := f.open(); err != nil {
		return nil, err
	}
	return f, nil
}

// prepareFront wires the configuration into the packages' options with the
// certificates of store, which need not have started, and opens the admin
// endpoint, so that /healthz answers and /readyz says what mailfront waits
// for while the certificates are obtained. open then starts the listeners.
func prepareFront(cfg *config.Config, store *tlsconf.Store, log *slog.Logger) (*front, error) {
	limits := proxyLimits(cfg)
	gd, gate, err := newGate(cfg, log)
	if err != nil {
		return nil, err
	}
	srv := newServer(cfg, log, gate)
	var m *metrics.Metrics
	var reg *prometheus.Registry
	if cfg.Admin != nil {
		m, reg = newMetrics(store, gd)
		srv.Observer = m
	}
	ends := newBackends(cfg.Limits, log, m, gd.Network)
	for _, l := range cfg.Listeners {
		_, h := ends.get(l)
		pl := newListener(cfg, l, limits)
		pl.TLS = store.Config(l.Protocol)
		pl.Handler = h
		if pl.Mode == proxy.STARTTLS {
			pl.Refuse = h.Refuse
		}
		if m != nil {
			m.AddListener(l.Name, l.Protocol)
			if len(pl.ProxyProtocol.Trusted) > 0 {
				m.AddProxyProtocol(l.Name)
			}
		}
		srv.Listeners = append(srv.Listeners, pl)
	}
	ctx, stopWatch := context.WithCancel(context.Background())
	f := &front{srv: srv, store: store, log: log, drain: proxy.EffectiveDrain(cfg.Shutdown.Drain), stopWatch: stopWatch, ends: ends, watchCtx: ctx}
	if cfg.Admin != nil {
		if f.admin, err = startAdmin(cfg, reg, gd, f, log); err != nil {
			stopWatch()
			return nil, err
		}
	}
	return f, nil
}

// open probes the backends (briefly) and starts the listeners: every
// address is bound before any serves, so a port in use fails the start.
func (f *front) open() error {
	f.ends.probe(f.watchCtx, probeAtStart)
	if err := f.srv.Start(); err != nil {
		f.stop(context.Background())
		return err
	}
	f.ends.watch(f.watchCtx)
	f.serving.Store(true)
	return nil
}

// probeAtStart bounds the wait for the backends' first capability probe
// before the listeners open, so that the first clients are offered what the
// backend has (IDLE, LITERAL+...). A backend that is down does not hold
// the start up longer; its watcher keeps trying.
const probeAtStart = 3 * time.Second

// watcher is a protocol handler that learns about its backend.
type watcher interface {
	proxy.Handler
	Refuse(*proxy.Conn)
	Probe(context.Context) error
	Watch(context.Context)
}

// backends builds one proxy.Backend and one handler per protocol, backend
// address and client_address, so that listeners fronting the same server
// (993 and 143) share what is learnt about it.
type backends struct {
	lim      config.Limits
	log      *slog.Logger
	metrics  *metrics.Metrics // nil without the admin endpoint
	network  func(netip.Addr) netip.Prefix
	byKey    map[string]*proxy.Backend
	handlers map[string]watcher
}

func newBackends(lim config.Limits, log *slog.Logger, m *metrics.Metrics, network func(netip.Addr) netip.Prefix) *backends {
	return &backends{lim: lim, log: log, metrics: m, network: network, byKey: map[string]*proxy.Backend{}, handlers: map[string]watcher{}}
}

// get is the backend and handler for listener l.
func (b *backends) get(l config.Listener) (*proxy.Backend, watcher) {
	protocol := l.Protocol
	key := protocol + " " + l.Backend // as /readyz names it
	if l.ClientAddress != "" {
		key += " (client_address " + l.ClientAddress + ")"
	}
	if c := l.Capabilities; c != nil && len(c.Add)+len(c.Remove) > 0 {
		key += " (capabilities " + capabilitiesText(c) + ")"
	}
	if h, ok := b.handlers[key]; ok {
		return b.byKey[key], h
	}
	be := newBackend(b.lim, l, b.network)
	if m := b.metrics; m != nil {
		be.DialFailed = func() { m.BackendDialFailed(protocol) }
	}
	log := b.log.With("protocol", protocol)
	var h watcher
	if protocol == "pop3" {
		opts := pop3Options(b.lim, be, log)
		opts.Capabilities = capabilityEdit(l)
		h = pop3.New(opts)
	} else {
		opts := imapOptions(b.lim, be, log)
		opts.Capabilities = capabilityEdit(l)
		h = imap.New(opts)
	}
	b.byKey[key], b.handlers[key] = be, h
	return be, h
}

// probe runs every handler's first probe at once and waits for them, at
// most for limit. Failures are left to the watchers to report.
func (b *backends) probe(ctx context.Context, limit time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range b.handlers {
		wg.Go(func() { h.Probe(ctx) })
	}
	wg.Wait()
}

// watch keeps every backend's capabilities fresh until ctx ends.
func (b *backends) watch(ctx context.Context) {
	for _, h := range b.handlers {
		go h.Watch(ctx)
	}
}
