//go:build !unix

package proxy

import "net"

// waitReadable is a no-op where peeking is not available: the relay then
// holds its buffer while it waits.
func waitReadable(net.Conn) error { return nil }
