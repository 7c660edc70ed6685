//go:build linux

package proxy

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"
)

// Accepted sockets inherit the keepalive options set on the listener, and
// TCP_NODELAY is on: serve sets neither per connection.
func TestListenerKeepaliveInherited(t *testing.T) {
	tests := []struct {
		name      string
		keepalive time.Duration
		wantIdle  int
	}{
		{"configured", 90 * time.Second, 90},
		{"go default", 0, 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := listenConfig(tt.keepalive)
			ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			rc, err := s.(*net.TCPConn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]struct{ level, name, value int }{
				"SO_KEEPALIVE":  {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
				"TCP_KEEPIDLE":  {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, tt.wantIdle},
				"TCP_KEEPINTVL": {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, tt.wantIdle},
				"TCP_KEEPCNT":   {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9},
				"TCP_NODELAY":   {syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
			}
			rc.Control(func(fd uintptr) {
				for name, o := range want {
					got, err := syscall.GetsockoptInt(int(fd), o.level, o.name)
					if err != nil || got != o.value {
						t.Errorf("%s = %d, %v; want %d", name, got, err, o.value)
					}
				}
			})
		})
	}
}
