//go:build linux

package proxy

import (
	"net"
	"syscall"
	"time"
)

// listenConfig configures a listener's TCP keepalive (see
// EffectiveKeepalive). On
// Linux the options
// go on the listening socket, which every accepted socket inherits (as
// nginx's so_keepalive does), so that accepting a connection costs four
// setsockopt calls fewer than Go's per-connection configuration.
func listenConfig(period time.Duration) net.ListenConfig {
	k := EffectiveKeepalive(period)
	if k == 0 {
		return net.ListenConfig{KeepAlive: -1}
	}
	secs := int((k + time.Second - 1) / time.Second)
	opts := [...]struct{ level, name, value int }{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, secs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepaliveProbes},
	}
	return net.ListenConfig{
		KeepAlive: -1, // not per connection: inherited from the listener
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				for _, o := range opts {
					if serr = syscall.SetsockoptInt(int(fd), o.level, o.name, o.value); serr != nil {
						return
					}
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}
