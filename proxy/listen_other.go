//go:build !linux

package proxy

import (
	"net"
	"time"
)

// listenConfig configures a listener's TCP keepalive (period 0 means Go's
// defaults), applied by Go to each accepted connection.
func listenConfig(keepalive time.Duration) net.ListenConfig {
	var lc net.ListenConfig
	if keepalive > 0 {
		lc.KeepAliveConfig = net.KeepAliveConfig{Enable: true, Idle: keepalive, Interval: keepalive}
	}
	return lc
}
