//go:build !linux

package proxy

// parker is Linux-only (epoll); elsewhere a quiet relay direction keeps its
// goroutine, waiting in the runtime's poller without a buffer where the
// platform has raw socket reads.
type parker struct{}

func theParker() *parker { return nil }

func (*parker) park(*pipe) bool { return false }

func (*parker) forget(*pipe) {}
