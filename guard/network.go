package guard

import "math"

// recentCredentials is how many failed credential fingerprints a network
// remembers: enough for the few stale passwords of the mail apps behind
// one address.
const recentCredentials = 4

// idleScore is the failure score below which a network with nothing else
// going on is forgotten: six half-lives after a single failure.
const idleScore = 1.0 / 64

// penalisedScore is the score from which Stats counts a network as
// penalised: half a failure's worth.
const penalisedScore = 0.5

// network is what the guard knows about one client network. Its shard's
// mutex guards it. Times are ticks (nanoseconds since the guard's epoch).
type network struct {
	conns     int32 // open connections
	inflight  int32 // logins between Login and done
	atBackend int32 // of those, the ones that had their turn (ParallelLogins)
	// turn is closed, and forgotten, when a backend slot frees: logins
	// waiting for one take it again. Nil while nobody waits.
	turn chan struct{}

	score   float64 // failures, fading by half every HalfLife, as of scoreAt
	scoreAt int64
	next    int64 // when its next login may be tried; failures push it back

	fails  times // non-repeat failure times, for the block
	recent [recentCredentials]uint64
	nrec   int // fingerprints stored in recent so far (ring index beyond that)

	blocked       bool
	blockedSince  int64
	blockedUntil  int64
	blockFailures int

	handshakes bucket
}

// decayed is the score at now.
func (n *network) decayed(now, halfLife int64) float64 {
	if n.score == 0 || now <= n.scoreAt {
		return n.score
	}
	return n.score * math.Exp2(-float64(now-n.scoreAt)/float64(halfLife))
}

// decay brings the score up to date.
func (n *network) decay(now, halfLife int64) {
	n.score = n.decayed(now, halfLife)
	n.scoreAt = max(n.scoreAt, now)
}

// penalty is base doubled score times, capped at ceiling.
func penalty(score float64, base, ceiling int64) int64 {
	d := float64(base) * math.Exp2(score)
	if d >= float64(ceiling) || math.IsNaN(d) {
		return ceiling
	}
	return int64(d)
}

// seen reports whether fp is among the recent failed credentials.
func (n *network) seen(fp uint64) bool {
	for i := range min(n.nrec, recentCredentials) {
		if n.recent[i] == fp {
			return true
		}
	}
	return false
}

// remember adds fp to the recent failed credentials, forgetting the oldest.
func (n *network) remember(fp uint64) {
	n.recent[n.nrec%recentCredentials] = fp
	n.nrec++
	if n.nrec == 2*recentCredentials {
		n.nrec = recentCredentials
	}
}

// isBlocked reports an active block.
func (n *network) isBlocked(now int64) bool { return n.blocked && now < n.blockedUntil }

// blockEnded clears a block that is over, reporting whether there was one
// (for the one "network unblocked" line).
func (n *network) blockEnded(now int64) bool {
	if n.blocked && now >= n.blockedUntil {
		n.blocked = false
		return true
	}
	return false
}
