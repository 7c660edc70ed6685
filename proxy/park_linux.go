//go:build linux

package proxy

import (
	"os"
	"sync"
	"syscall"
)

// A quiet relay direction parks: its source socket joins one epoll set that
// the whole process shares, and its goroutine ends. One goroutine waits on
// that set through the runtime's poller (an epoll descriptor is itself
// pollable) and starts a goroutine for a direction when its source has
// bytes, EOF or an error. An idle session thus holds no goroutine and no
// stack, only its heap objects. Registrations are one-shot, so a direction
// is woken once per park.
type parker struct {
	epfd int
	rc   syscall.RawConn // the epoll descriptor, for waiting in the runtime's poller

	mu     sync.Mutex
	next   uint64
	parked map[uint64]*pipe
}

var (
	parkerOnce sync.Once
	parkerInst *parker // nil when epoll is unavailable
)

// theParker starts the process's parker on first use.
func theParker() *parker {
	parkerOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return
		}
		f := os.NewFile(uintptr(fd), "relay-epoll")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			return
		}
		p := &parker{epfd: fd, rc: rc, parked: make(map[uint64]*pipe)}
		// f stays referenced by the goroutine, so no finalizer closes fd.
		go p.loop(f)
		parkerInst = p
	})
	return parkerInst
}

// park registers p's source for one readiness event. It reports false when
// the source cannot be watched; p then keeps its goroutine.
func (pk *parker) park(p *pipe) bool {
	op := syscall.EPOLL_CTL_ADD
	if p.registered {
		op = syscall.EPOLL_CTL_MOD
	}
	// Everything p's next goroutine reads is written before the map
	// publishes p: once the event is armed, p belongs to that goroutine.
	p.registered = true
	pk.mu.Lock()
	if p.key == 0 {
		pk.next++
		p.key = pk.next
	}
	key := p.key
	pk.parked[key] = p
	pk.mu.Unlock()
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(key)),
		Pad:    int32(uint32(key >> 32)),
	}
	var cerr error
	err := p.srcRaw.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(pk.epfd, op, int(fd), &ev)
		switch {
		case cerr == syscall.EEXIST:
			cerr = syscall.EpollCtl(pk.epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		case cerr == syscall.ENOENT && op == syscall.EPOLL_CTL_MOD:
			cerr = syscall.EpollCtl(pk.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err != nil || cerr != nil {
		// Nothing is armed, so p is still ours.
		pk.forget(p)
		p.registered = false
		return false
	}
	return true
}

// forget drops p's registration (the relay ended while p was parked). The
// kernel drops the descriptor from the set when the socket is closed.
func (pk *parker) forget(p *pipe) {
	pk.mu.Lock()
	if pk.parked[p.key] == p {
		delete(pk.parked, p.key)
	}
	pk.mu.Unlock()
}

func (pk *parker) loop(f *os.File) {
	defer f.Close()
	events := make([]syscall.EpollEvent, 256)
	for {
		var n int
		err := pk.rc.Read(func(fd uintptr) bool {
			for {
				var e error
				n, e = syscall.EpollWait(int(fd), events, 0)
				if e == syscall.EINTR {
					continue
				}
				if e != nil {
					n = 0
				}
				return n > 0
			}
		})
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			pk.mu.Lock()
			p := pk.parked[key]
			delete(pk.parked, key)
			pk.mu.Unlock()
			if p != nil {
				p.r.resume(p)
			}
		}
	}
}
