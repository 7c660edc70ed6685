//go:build !unix

package proxy

import "net"

// socketPair is two connected in-memory connections where the platform
// has no socketpair(2).
func socketPair() (net.Conn, net.Conn, error) {
	a, b := net.Pipe()
	return a, b, nil
}
