package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailfront/mailfront/admin"
	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/guard"
	"github.com/mailfront/mailfront/metrics"
	"github.com/mailfront/mailfront/tlsconf"
)

// backendFresh is how recently a backend must have been reached for
// /readyz: the watchers probe an idle backend every five minutes.
const backendFresh = 11 * time.Minute

// newMetrics builds the metrics and the collectors read at scrape time.
func newMetrics(store *tlsconf.Store, g *guard.Guard) (*metrics.Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	b := build()
	m.Build(b.version, b.commit, b.goVersion)
	m.CertExpiry(store.Expiry)
	store.OnReload(func(err error) { m.CertReload(err == nil) })
	m.GuardStats(func() (int, int) {
		st := g.Stats()
		return st.Blocked, st.Penalised
	})
	return m, reg
}

// startAdmin serves /metrics, /healthz, /readyz and /guard, before the
// listeners open.
func startAdmin(cfg *config.Config, reg *prometheus.Registry, g *guard.Guard, f *front, log *slog.Logger) (*admin.Server, error) {
	srv, err := admin.Start(admin.Options{
		Address:  cfg.Admin.Address,
		Gatherer: reg,
		Ready: func() error {
			if !f.serving.Load() {
				return errors.New("starting: the mail listeners open once every certificate is in service (the log says what is pending)")
			}
			return ready(cfg, f.store, f.ends, time.Now())
		},
		Guard: func() any { return g.Snapshot() },
		Log:   log.With("component", "admin"),
	})
	if err != nil {
		return nil, err
	}
	log.Info("admin listening", "address", srv.Addr().String())
	return srv, nil
}

// ready is /readyz once the listeners are open: every configured name has
// a certificate that has not expired, and every backend was reached
// recently.
func ready(cfg *config.Config, store *tlsconf.Store, ends *backends, now time.Time) error {
	var errs []error
	expiry := store.Expiry()
	if len(expiry) == 0 {
		errs = append(errs, errors.New("no certificate in service"))
	}
	var names []string
	if cfg.TLS.ACME != nil {
		names = cfg.TLS.ACME.Domains
	}
	for _, n := range names {
		if end, ok := expiry[strings.ToLower(n)]; !ok || !now.Before(end) {
			errs = append(errs, fmt.Errorf("no valid certificate for %s", n))
		}
	}
	for name, end := range expiry {
		if !now.Before(end) {
			errs = append(errs, fmt.Errorf("certificate for %s expired at %s", name, end.UTC().Format(time.RFC3339)))
		}
	}
	var keys []string
	for k := range ends.byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if last := ends.byKey[k].LastReached(); now.Sub(last) > backendFresh {
			errs = append(errs, fmt.Errorf("backend %s not reached since %s", k, lastText(last)))
		}
	}
	return errors.Join(errs...)
}

func lastText(t time.Time) string {
	if t.IsZero() {
		return "start"
	}
	return t.UTC().Format(time.RFC3339)
}
