package proxy

import (
	"net"
	"time"
)

// keepaliveProbes is how many unanswered probes end a connection (Linux's
// and Go's count).
const keepaliveProbes = 9

// keepaliveConfig is the TCP keepalive for a configured period (see
// EffectiveKeepalive); Enable is false when it is off.
func keepaliveConfig(period time.Duration) net.KeepAliveConfig {
	k := EffectiveKeepalive(period)
	if k == 0 {
		return net.KeepAliveConfig{}
	}
	return net.KeepAliveConfig{Enable: true, Idle: k, Interval: k, Count: keepaliveProbes}
}

// dialer is the backend dialer for a configured keepalive period.
func dialer(period time.Duration) *net.Dialer {
	if c := keepaliveConfig(period); c.Enable {
		return &net.Dialer{KeepAliveConfig: c}
	}
	return &net.Dialer{KeepAlive: -1}
}
