package proxy

import (
	"context"
	"log/slog"
	"time"
)

// DefaultRefreshRetry is the first wait after a failed probe; it doubles
// up to the TTL.
const DefaultRefreshRetry = time.Second

// refresher keeps what a protocol handler learns from its backend (its
// capabilities) fresh in the background: it probes whenever the knowledge
// is older than TTL, so a backend that logins already keep fresh is never
// probed, and an idle one is probed once per TTL. A failed probe is retried
// with backoff; the backend becoming unreachable and reachable again is
// logged once each, not at every retry.
type refresher struct {
	Backend string        // for logs
	TTL     time.Duration // how old the knowledge may get
	// Age is how old the knowledge is; a very large value when there is none.
	Age func() time.Duration
	// Probe asks the backend and stores the answer.
	Probe func(context.Context) error
	Log   *slog.Logger
	// Retry is the first wait after a failed probe (default
	// DefaultRefreshRetry); it doubles up to TTL.
	Retry time.Duration
}

// Run probes until ctx ends.
func (r *refresher) Run(ctx context.Context) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	first := r.Retry
	if first <= 0 {
		first = DefaultRefreshRetry
	}
	retry := first
	failing := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if age := r.Age(); age < r.TTL {
			timer.Reset(r.TTL - age)
			continue
		}
		err := r.Probe(ctx)
		switch {
		case err == nil:
			if failing {
				log.Info("backend reachable again", "backend", r.Backend)
			}
			failing = false
			retry = first
			timer.Reset(r.TTL)
		case ctx.Err() != nil:
			return
		default:
			if !failing {
				log.Warn("backend probe failed; retrying", "backend", r.Backend, "error", err.Error())
			}
			failing = true
			timer.Reset(retry)
			retry = min(2*retry, r.TTL)
		}
	}
}
