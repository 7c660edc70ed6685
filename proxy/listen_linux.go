//go:build linux

package proxy

import (
	"net"
	"syscall"
	"time"
)

// listenConfig configures a listener's TCP keepalive (period 0 means Go's
// defaults: 15s idle, 15s between probes, 9 probes). On Linux the options
// go on the listening socket, which every accepted socket inherits (as
// nginx's so_keepalive does), so that accepting a connection costs four
// setsockopt calls fewer than Go's per-connection configuration.
func listenConfig(keepalive time.Duration) net.ListenConfig {
	if keepalive <= 0 {
		keepalive = 15 * time.Second
	}
	secs := int((keepalive + time.Second - 1) / time.Second)
	opts := [...]struct{ level, name, value int }{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, secs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, secs},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
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
