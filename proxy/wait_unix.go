//go:build unix

package proxy

import (
	"net"
	"syscall"
)

// rawSocket returns c's socket for reads that take a buffer only once bytes
// are there, or nil when c is not a plain TCP or unix socket (a wrapper
// may hold buffered bytes of its own, which the socket would not show).
func rawSocket(c net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch v := c.(type) {
	case *net.TCPConn:
		sc = v
	case *net.UnixConn:
		sc = v
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// readFD is one read(2) on a non-blocking descriptor, retried on EINTR.
// It returns syscall.EAGAIN when there is nothing to read.
func readFD(fd uintptr, p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err == syscall.EINTR {
			continue
		}
		if n < 0 {
			n = 0
		}
		return n, err
	}
}
