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
// TCP_NODELAY is on: serve sets neither per connection. Zero is
// DefaultKeepalive, negative turns keepalive off.
func TestListenerKeepaliveInherited(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		keepalive time.Duration
		wantIdle  int
	}{
		{"configured", 90 * time.Second, 90},
		{"default", 0, int(DefaultKeepalive / time.Second)},
		{"off", -1, 0},
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
				"SO_KEEPALIVE": {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 0},
				"TCP_NODELAY":  {syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1},
			}
			if tt.wantIdle > 0 {
				want["SO_KEEPALIVE"] = struct{ level, name, value int }{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1}
				want["TCP_KEEPIDLE"] = struct{ level, name, value int }{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, tt.wantIdle}
				want["TCP_KEEPINTVL"] = struct{ level, name, value int }{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, tt.wantIdle}
				want["TCP_KEEPCNT"] = struct{ level, name, value int }{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 9}
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
