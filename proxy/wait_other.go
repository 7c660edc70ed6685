//go:build !unix

package proxy

import (
	"net"
	"syscall"
)

// rawSocket is nil where reads straight from the descriptor are not
// available: recordConn then reads without read-ahead and the relay reads
// with a buffer held while it waits.
func rawSocket(net.Conn) syscall.RawConn { return nil }

func readFD(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
