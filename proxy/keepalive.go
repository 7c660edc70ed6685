package proxy

import (
	"net"
	"time"
)

// keepaliveProbes is how many unanswered probes end a connection (Linux's
// and Go's count).
const keepaliveProbes = 9

// keepalive resolves a configured keepalive period: zero is
// DefaultKeepalive, negative is off (0).
func keepalive(d time.Duration) time.Duration { return resolve(d, DefaultKeepalive, 0) }

// dialer is the backend dialer for a configured keepalive period.
func dialer(d time.Duration) *net.Dialer {
	k := keepalive(d)
	if k == 0 {
		return &net.Dialer{KeepAlive: -1}
	}
	return &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: k, Interval: k, Count: keepaliveProbes}}
}
