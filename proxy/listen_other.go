//go:build !linux

package proxy

import (
	"net"
	"time"
)

// listenConfig configures a listener's TCP keepalive (see keepalive),
// applied by Go to each accepted connection.
func listenConfig(period time.Duration) net.ListenConfig {
	k := keepalive(period)
	if k == 0 {
		return net.ListenConfig{KeepAlive: -1}
	}
	return net.ListenConfig{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: k, Interval: k, Count: keepaliveProbes}}
}
