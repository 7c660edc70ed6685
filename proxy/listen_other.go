//go:build !linux

package proxy

import (
	"net"
	"time"
)

// listenConfig configures a listener's TCP keepalive (see
// keepaliveConfig), applied by Go to each accepted connection.
func listenConfig(period time.Duration) net.ListenConfig {
	if c := keepaliveConfig(period); c.Enable {
		return net.ListenConfig{KeepAliveConfig: c}
	}
	return net.ListenConfig{KeepAlive: -1}
}
