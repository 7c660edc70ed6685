//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// waitReadable blocks until c's socket has a byte to read, EOF or an error,
// or c's read deadline passes. It peeks, so it consumes nothing and holds no
// buffer while it waits. TLS connections are unwrapped to their socket; with
// recordConn below them crypto/tls holds no undelivered record, so the socket
// tells the truth.
func waitReadable(c net.Conn) error {
	sc := socketOf(c)
	if sc == nil {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var peek [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN
	})
}

// socketOf unwraps TLS and record layers down to a syscall.Conn.
func socketOf(c net.Conn) syscall.Conn {
	for range 4 {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case *net.UnixConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
