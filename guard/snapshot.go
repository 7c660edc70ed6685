package guard

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"
)

// snapshotLimit bounds each list in a Snapshot (the counts in its Stats
// are complete).
const snapshotLimit = 1000

// Stats are the guard's gauges and counters.
type Stats struct {
	// Blocked is how many networks are blocked now.
	Blocked int `json:"blocked"`
	// Penalised is how many networks, not blocked, have a failure score of
	// at least half a failure or a next attempt time still ahead.
	Penalised int `json:"penalised"`
	// DelayedUsers is how many user names have a soft delay now.
	DelayedUsers int `json:"delayed_users"`
	// Tables are the state tables' sizes.
	Tables TableSizes `json:"tables"`
	// Blocks counts the blocks started since the guard was made.
	Blocks uint64 `json:"blocks"`
	// DelaysApplied counts failed logins answered after a penalty.
	DelaysApplied uint64 `json:"delays_applied"`
	// LoginWaits counts logins held in Login (network queue or user delay).
	LoginWaits uint64 `json:"login_waits"`
	// LoginsRefused counts logins refused (blocked network, in-flight cap).
	LoginsRefused uint64 `json:"logins_refused"`
}

// TableSizes are the entries in each state table and their bound.
type TableSizes struct {
	Networks int `json:"networks"`
	Users    int `json:"users"`
	Max      int `json:"max"` // the bound of each
}

// Snapshot is the guard's state for the admin endpoint. It names networks
// but never a user name (they are not kept), only how many have a delay.
type Snapshot struct {
	Time time.Time `json:"time"`
	// Blocked lists the blocked networks, latest first (at most 1000).
	Blocked []BlockedNetwork `json:"blocked"`
	// Penalised lists the penalised networks, highest score first (at
	// most 1000).
	Penalised []PenalisedNetwork `json:"penalised"`
	Stats     Stats              `json:"stats"`
}

// BlockedNetwork is a network blocked now.
type BlockedNetwork struct {
	Network  string    `json:"network"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Failures int       `json:"failures"` // failures within the window that blocked it
}

// PenalisedNetwork is a network whose failed logins are delayed.
type PenalisedNetwork struct {
	Network string  `json:"network"`
	Score   float64 `json:"score"` // failures, faded by the half life (to 0.001)
	// Delay is the penalty its next failure gets (to the millisecond).
	Delay Duration `json:"delay"`
	// NextAttempt is when its next login may be tried; absent when it may
	// be tried now.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// Duration is a time.Duration that reads "2.5s" in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Stats counts the guard's state. It visits every entry (each table shard
// locked in turn, about 10 ms for 100,000 entries at worst), dropping the
// idle ones and logging blocks that ended: call it at scrape intervals,
// not per connection.
func (g *Guard) Stats() Stats {
	return g.scan(nil)
}

// Snapshot returns the blocked and penalised networks and the Stats.
func (g *Guard) Snapshot() Snapshot {
	snap := Snapshot{Blocked: []BlockedNetwork{}, Penalised: []PenalisedNetwork{}}
	snap.Stats = g.scan(&snap)
	slices.SortFunc(snap.Blocked, func(a, b BlockedNetwork) int { return b.Since.Compare(a.Since) })
	slices.SortFunc(snap.Penalised, func(a, b PenalisedNetwork) int { return cmp.Compare(b.Score, a.Score) })
	if len(snap.Blocked) > snapshotLimit {
		snap.Blocked = snap.Blocked[:snapshotLimit]
	}
	if len(snap.Penalised) > snapshotLimit {
		snap.Penalised = snap.Penalised[:snapshotLimit]
	}
	return snap
}

// scan sweeps both tables, counting, and filling snap if not nil.
func (g *Guard) scan(snap *Snapshot) Stats {
	now := g.tick()
	st := Stats{
		Blocks:        g.blocks.Load(),
		DelaysApplied: g.delays.Load(),
		LoginWaits:    g.waits.Load(),
		LoginsRefused: g.refused.Load(),
	}
	var ended []netip.Prefix
	g.nets.sweep(now, func(p netip.Prefix, n *network) {
		st.Tables.Networks++
		if n.blockEnded(now) {
			ended = append(ended, p)
		}
		if n.isBlocked(now) {
			st.Blocked++
			if snap != nil {
				snap.Blocked = append(snap.Blocked, BlockedNetwork{
					Network: p.String(), Since: g.wall(n.blockedSince), Until: g.wall(n.blockedUntil), Failures: n.blockFailures,
				})
			}
			return
		}
		score := n.decayed(now, g.halfLife)
		if score < penalisedScore && n.next <= now {
			return
		}
		st.Penalised++
		if snap != nil {
			pn := PenalisedNetwork{
				Network: p.String(),
				Score:   math.Round(score*1000) / 1000,
				Delay:   Duration(time.Duration(penalty(score, g.base, g.maxDelay)).Round(time.Millisecond)),
			}
			if n.next > now {
				pn.NextAttempt = g.wall(n.next)
			}
			snap.Penalised = append(snap.Penalised, pn)
		}
	})
	for _, p := range ended {
		g.logUnblocked(p, "expired")
	}
	g.users.sweep(now, func(_ uint64, u *user) {
		st.Tables.Users++
		if g.o.UserFailures != Unlimited && g.softDelay(u, now) > 0 {
			st.DelayedUsers++
		}
	})
	st.Tables.Max = g.nets.capacity()
	if snap != nil {
		snap.Time = g.wall(now)
	}
	return st
}
