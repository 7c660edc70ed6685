// Package gatetest is a scripted proxy.Gate for the protocol packages'
// tests: it answers connections and logins as told and records the login
// verdicts it is given.
//
// It is not the guard (package guard is) and does not time anything.
package gatetest

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/mailfront/mailfront/proxy"
)

// Gate answers every Connect with Verdict, every Handshake with !NoHandshake,
// every Login with LoginErr or, after it, with Wait.
type Gate struct {
	Verdict     proxy.Verdict
	NoHandshake bool
	LoginErr    error
	Wait        time.Duration

	mu      sync.Mutex
	logins  []string // user names asked about
	results []proxy.LoginResult
}

// Connect implements proxy.Gate.
func (g *Gate) Connect(string, netip.Addr) (proxy.Verdict, string, func()) {
	return g.Verdict, "test", func() {}
}

// Handshake implements proxy.Gate.
func (g *Gate) Handshake(netip.Addr) bool { return !g.NoHandshake }

// Login implements proxy.Gate.
func (g *Gate) Login(_ context.Context, _ netip.Addr, user, _ string) (func(proxy.LoginResult) time.Duration, error) {
	g.mu.Lock()
	g.logins = append(g.logins, user)
	g.mu.Unlock()
	if g.LoginErr != nil {
		return nil, g.LoginErr
	}
	return func(r proxy.LoginResult) time.Duration {
		g.mu.Lock()
		g.results = append(g.results, r)
		g.mu.Unlock()
		return g.Wait
	}, nil
}

// Results are the verdicts reported so far, in order.
func (g *Gate) Results() []proxy.LoginResult {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]proxy.LoginResult(nil), g.results...)
}

// Logins are the user names the gate was asked about, in order.
func (g *Gate) Logins() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.logins...)
}
