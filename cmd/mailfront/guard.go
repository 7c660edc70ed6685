package main

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/mailfront/mailfront/config"
	"github.com/mailfront/mailfront/guard"
	"github.com/mailfront/mailfront/proxy"
)

// newGate builds the guard from the guard, access and limits sections. It
// always runs for the access lists and per-network limits; with
// guard.enabled false, logins pass through it untouched.
func newGate(cfg *config.Config, log *slog.Logger) (*guard.Guard, proxy.Gate, error) {
	opts := guardOptions(cfg, log)
	gd, err := guard.New(opts)
	if err != nil {
		return nil, nil, err
	}
	for _, l := range cfg.Listeners {
		gd.SetImplicit(l.Name, l.TLS == "implicit")
	}
	if !cfg.Guard.GuardEnabled() {
		return gd, connectionsOnly{gd}, nil
	}
	return gd, gd, nil
}

// connectionsOnly is the guard with its login rules off: access lists and
// per-network connection limits still apply.
type connectionsOnly struct{ *guard.Guard }

func (connectionsOnly) Login(context.Context, netip.Addr, string, string) (func(proxy.LoginResult) time.Duration, error) {
	return func(proxy.LoginResult) time.Duration { return 0 }, nil
}
