package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// relayReadSize is the most a relay direction reads before it writes:
	// written to a TLS client, it is sealed into four full records, which
	// recordConn sends in one socket write.
	relayReadSize = 64 << 10
	// bufSize is the size of every pooled buffer: relay reads, recordConn's
	// read-ahead and its write batches (four records' framing included).
	bufSize = relayReadSize + 4<<10
	// maxPlaintext is the most plaintext one TLS record carries.
	maxPlaintext = 16 << 10
	// parkAfter is how long a relay direction whose source has gone quiet
	// keeps its goroutine before it parks (see parker).
	parkAfter = 500 * time.Millisecond
)

// bufPool holds the only buffers the relay uses, taken while bytes flow.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, bufSize)
	return &b
}}

var (
	// errRelayIdle is returned when neither side sent anything for the idle limit.
	errRelayIdle = errors.New("proxy: relay idle timeout")
	// errQuiet means a direction's source had nothing for parkAfter.
	errQuiet = errors.New("proxy: relay direction quiet")
)

// RelayStats are the bytes a relay moved each way.
type RelayStats struct {
	Up   int64 // client to backend
	Down int64 // backend to client
}

// relayOptions choose the relay's path: RelayStandard's plain copy, or
// RelayOptimized's, with the TLS buffer release when its self-test passed.
type relayOptions struct {
	mode       RelayMode
	releaseTLS bool
}

// relay is one session's two directions and what ends them: it copies
// bytes between a logged-in client and its backend, in both directions,
// until both have ended or either fails, then closes both. It first sends
// toBackend (bytes the client pipelined after its login) and toClient
// (bytes the backend sent after its login reply). An EOF from one side is
// passed on as a half-close. The session ends when nothing moved for idle,
// or when ctx is cancelled.
//
// On the optimized path a quiet session holds no copy buffer, and on Linux
// no goroutine either: each direction takes a pooled buffer only while
// bytes flow, and parks its socket in a shared epoll set once it has been
// quiet for parkAfter. On the standard path each direction is a goroutine
// with a buffer of its own, reading until its source ends.
type relay struct {
	opts            relayOptions
	client, backend net.Conn
	idle            time.Duration
	goodbye         []byte       // to the client when shutdown ends a quiet session (Handoff.Goodbye)
	last            atomic.Int64 // unix nanoseconds of the last byte either way
	up, down        pipe
	ctx             context.Context
	done            func(RelayStats, error)

	mu      sync.Mutex
	timer   *time.Timer // the idle limit
	stopCtx func() bool
	closed  bool  // both connections closed
	cause   error // why the relay was cut short (idle limit, shutdown)
	open    int   // directions not yet done
}

type pipeState uint8

const (
	pipeRunning pipeState = iota // a goroutine is moving bytes or waiting for them
	pipeParked                   // no goroutine: the source is in the parker's epoll set
	pipeDone
)

// pipe is one direction of a relay: src to dst.
type pipe struct {
	r        *relay
	dst, src net.Conn
	pending  []byte
	n        atomic.Int64

	srcRaw  syscall.RawConn // src's socket (below TLS), nil when it has none
	srcTLS  *tls.Conn       // src, when it is TLS over a reading-ahead recordConn
	rec     *recordConn     // below srcTLS
	dstRec  *recordConn     // below dst, when dst is TLS, for batched writes
	canPark bool            // owned by the running goroutine

	state pipeState // guarded by r.mu
	err   error     // guarded by r.mu; why the direction ended

	key        uint64 // the parker's name for p, guarded by the parker
	registered bool   // src is in the parker's epoll set; owned by the running goroutine

	// wmu is held while writing to dst, so that a goodbye at shutdown
	// never lands inside a write; lastByte (guarded by wmu) and
	// lastWrite tell whether dst is at the end of a line and quiet.
	wmu       sync.Mutex
	lastByte  byte
	lastWrite atomic.Int64 // unix nanoseconds
}

// quietForGoodbye is how long the backend must have sent nothing before a
// running (not parked) session may be told goodbye at shutdown.
const quietForGoodbye = time.Second

// runRelay starts a relay; done is called once, from some goroutine, when
// the relay has ended and both connections are closed.
func runRelay(ctx context.Context, opts relayOptions, client, backend net.Conn, toBackend, toClient []byte, idle time.Duration, goodbye []byte, done func(RelayStats, error)) {
	r := &relay{opts: opts, client: client, backend: backend, idle: idle, goodbye: goodbye, ctx: ctx, done: done, open: 2}
	r.up.init(r, backend, client, toBackend)
	r.down.init(r, client, backend, toClient)
	r.touch()
	r.mu.Lock()
	r.timer = time.AfterFunc(idle, r.checkIdle)
	r.stopCtx = context.AfterFunc(ctx, func() { r.abort(ErrShutdown) })
	r.mu.Unlock()
	go r.up.run()
	go r.down.run()
}

func (p *pipe) init(r *relay, dst, src net.Conn, pending []byte) {
	p.r, p.dst, p.src, p.pending = r, dst, src, pending
	if r.opts.mode == RelayStandard {
		return // pumpConn, with no parking
	}
	if t, ok := src.(*tls.Conn); ok {
		if rc, ok := t.NetConn().(*recordConn); ok && rc.raw != nil {
			p.srcTLS, p.rec, p.srcRaw = t, rc, rc.raw
		}
	} else {
		p.srcRaw = rawSocket(src)
	}
	if t, ok := dst.(*tls.Conn); ok {
		if rc, ok := t.NetConn().(*recordConn); ok {
			p.dstRec = rc
		}
	}
	p.canPark = p.srcRaw != nil && theParker() != nil
}

func (r *relay) touch() { r.last.Store(time.Now().UnixNano()) }

// checkIdle runs when the idle limit may have passed: it ends the relay, or
// waits for the rest of the limit counted from the last byte.
func (r *relay) checkIdle() {
	left := time.Until(time.Unix(0, r.last.Load()).Add(r.idle))
	if left <= 0 {
		r.abort(errRelayIdle)
		return
	}
	r.mu.Lock()
	if !r.closed {
		r.timer.Reset(left)
	}
	r.mu.Unlock()
}

// closeBoth closes both connections once.
func (r *relay) closeBoth() {
	r.mu.Lock()
	closed := r.closed
	r.closed = true
	r.mu.Unlock()
	if !closed {
		r.client.Close()
		r.backend.Close()
	}
}

// abort cuts the relay short: it closes both connections, which ends a
// running direction with an error, and ends a parked one at once. cause,
// if not nil, is what the relay then reports.
func (r *relay) abort(cause error) {
	r.mu.Lock()
	if !r.closed && r.cause == nil {
		r.cause = cause
	}
	var parked []*pipe
	downParked := r.down.state == pipeParked
	for _, p := range []*pipe{&r.up, &r.down} {
		if p.state == pipeParked {
			p.state = pipeDone
			parked = append(parked, p)
		}
	}
	closed := r.closed
	r.mu.Unlock()
	if pk := theParker(); pk != nil {
		for _, p := range parked {
			pk.forget(p)
		}
	}
	if cause == ErrShutdown && len(r.goodbye) > 0 && !closed {
		r.down.sayGoodbye(r.goodbye, downParked)
	}
	r.closeBoth()
	for range parked {
		r.pipeDone()
	}
}

// pipeDone counts a direction as done and ends the relay after the second.
func (r *relay) pipeDone() {
	r.mu.Lock()
	r.open--
	last := r.open == 0
	if last {
		r.timer.Stop()
	}
	stopCtx := r.stopCtx
	r.mu.Unlock()
	if !last {
		return
	}
	stopCtx()
	r.closeBoth()
	st := RelayStats{Up: r.up.n.Load(), Down: r.down.n.Load()}
	r.mu.Lock()
	var err error
	switch {
	case r.ctx.Err() != nil:
		err = ErrShutdown
	case r.cause != nil:
		err = r.cause
	default:
		err = errors.Join(r.up.err, r.down.err)
	}
	r.mu.Unlock()
	r.done(st, err)
}

// resume runs a parked direction whose source has become readable.
func (r *relay) resume(p *pipe) {
	r.mu.Lock()
	if p.state != pipeParked {
		r.mu.Unlock()
		return
	}
	p.state = pipeRunning
	r.mu.Unlock()
	go p.run()
}

// run moves bytes from src to dst until src ends, fails or goes quiet.
func (p *pipe) run() {
	if len(p.pending) > 0 {
		err := p.write(p.pending)
		p.pending = nil
		if err != nil {
			p.finish(err)
			return
		}
	}
	for {
		err := p.pump()
		if err == errQuiet {
			if p.park() {
				return
			}
			continue
		}
		if err == io.EOF {
			closeWrite(p.dst)
			err = nil
		}
		p.finish(err)
		return
	}
}

// finish ends the direction. An error ends the other direction too.
func (p *pipe) finish(err error) {
	r := p.r
	r.mu.Lock()
	p.state, p.err = pipeDone, err
	r.mu.Unlock()
	if err != nil {
		r.abort(nil)
	}
	r.pipeDone()
}

// park hands the direction to the parker. It reports false when the
// direction must go on waiting with its goroutine.
func (p *pipe) park() bool {
	r := p.r
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		p.canPark = false // the next read fails at once
		return false
	}
	p.state = pipeParked
	r.mu.Unlock()
	if theParker().park(p) {
		return true // p may already be running again on another goroutine
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.state != pipeParked {
		return true // abort ended p meanwhile
	}
	p.state = pipeRunning
	p.canPark = false
	return false
}

// quietDeadline is when a wait for src gives up so that the direction can
// park; never, where it cannot.
func (p *pipe) quietDeadline() time.Time {
	if !p.canPark {
		return time.Time{}
	}
	return time.Now().Add(parkAfter)
}

// pump relays until src ends (io.EOF), fails, or has nothing for parkAfter
// (errQuiet).
func (p *pipe) pump() error {
	switch {
	case p.rec != nil:
		return p.pumpTLS()
	case p.srcRaw != nil:
		return p.pumpSocket()
	default:
		return p.pumpConn()
	}
}

// pumpSocket relays from a plain socket, taking a buffer only once the
// socket has bytes.
func (p *pipe) pumpSocket() error {
	var bp *[]byte
	defer func() {
		if bp != nil {
			bufPool.Put(bp)
		}
	}()
	for {
		p.src.SetReadDeadline(p.quietDeadline())
		n, err := readSocket(p.srcRaw, &bp)
		if n > 0 {
			p.r.touch()
			if err := p.write((*bp)[:n]); err != nil {
				return err
			}
			continue
		}
		switch {
		case err == io.EOF:
			return io.EOF
		case p.canPark && errors.Is(err, os.ErrDeadlineExceeded):
			return errQuiet
		}
		return fmt.Errorf("relay read: %w", err)
	}
}

// pumpTLS relays from a TLS client. crypto/tls is asked for a record only
// once recordConn holds all of it, so it never waits on the socket; the
// records at hand are decrypted into one buffer and written in one go.
func (p *pipe) pumpTLS() error {
	var bp *[]byte
	defer func() {
		if bp != nil {
			bufPool.Put(bp)
		}
	}()
	for {
		for !p.rec.recordReady() {
			if bp != nil {
				bufPool.Put(bp)
				bp = nil
			}
			p.src.SetReadDeadline(p.quietDeadline())
			if err := p.rec.fill(); err != nil {
				if p.canPark && errors.Is(err, os.ErrDeadlineExceeded) {
					p.releaseTLS()
					p.rec.shrinkAhead()
					return errQuiet
				}
				return fmt.Errorf("relay read: %w", err)
			}
		}
		if bp == nil {
			bp = bufPool.Get().(*[]byte)
		}
		buf := (*bp)[:relayReadSize]
		n := 0
		var rerr error
		for {
			m, err := p.srcTLS.Read(buf[n:])
			n += m
			if err != nil {
				rerr = err
				break
			}
			if len(buf)-n < maxPlaintext || !p.rec.recordReady() {
				break
			}
		}
		if n > 0 {
			p.r.touch()
			if err := p.write(buf[:n]); err != nil {
				return err
			}
		}
		switch {
		case rerr == nil:
		case rerr == io.EOF:
			return io.EOF
		case p.canPark && errors.Is(rerr, os.ErrDeadlineExceeded):
			// A record that was not data (a key update) sent crypto/tls
			// to the socket for the next one.
			p.releaseTLS()
			p.rec.shrinkAhead()
			return errQuiet
		default:
			return fmt.Errorf("relay read: %w", rerr)
		}
	}
}

// releaseTLS lets crypto/tls's empty input buffers go while the source
// is quiet, where the self-test allowed it.
func (p *pipe) releaseTLS() {
	if p.r.opts.releaseTLS {
		releaseTLSBuffers(p.srcTLS)
	}
}

// pumpConn relays from a connection that is not a socket (or TLS not over
// recordConn), holding a buffer while it waits: RelayStandard's only path.
func (p *pipe) pumpConn() error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := (*bp)[:relayReadSize]
	for {
		n, err := p.src.Read(buf)
		if n > 0 {
			p.r.touch()
			if err := p.write(buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("relay read: %w", err)
		}
	}
}

// readSocket reads once from a socket, waiting for bytes (or EOF, an
// error, the read deadline) without holding a buffer: *bp is taken from
// the pool only when the socket has something, and kept for the next call.
func readSocket(rc syscall.RawConn, bp **[]byte) (int, error) {
	var n int
	var serr error
	err := rc.Read(func(fd uintptr) bool {
		if *bp == nil {
			*bp = bufPool.Get().(*[]byte)
		}
		n, serr = readFD(fd, (**bp)[:relayReadSize])
		if serr == syscall.EAGAIN {
			bufPool.Put(*bp)
			*bp = nil
			return false
		}
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case serr != nil:
		return 0, os.NewSyscallError("read", serr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (p *pipe) write(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	m, err := p.writeLocked(b, p.r.idle)
	p.n.Add(int64(m))
	if err != nil {
		return fmt.Errorf("relay write: %w", err)
	}
	return nil
}

// writeLocked writes b to dst within timeout; p.wmu is held.
func (p *pipe) writeLocked(b []byte, timeout time.Duration) (int, error) {
	p.dst.SetWriteDeadline(time.Now().Add(timeout))
	var m int
	var err error
	if p.dstRec != nil {
		p.dstRec.startBatch()
		m, err = p.dst.Write(b)
		if ferr := p.dstRec.flush(); err == nil {
			err = ferr
		}
	} else {
		m, err = p.dst.Write(b)
	}
	if m > 0 {
		p.lastByte = b[m-1]
		p.lastWrite.Store(time.Now().UnixNano())
	}
	return m, err
}

// goodbyeTimeout bounds the goodbye's write: a client that does not read
// does not hold the shutdown up.
const goodbyeTimeout = 500 * time.Millisecond

// sayGoodbye writes line to dst (the client) at the end of the shutdown
// drain, so that its mail app reconnects at once rather than wait for a
// timeout, but only when it cannot land inside a backend response: no
// write is under way, the backend has been quiet (the direction parked, or
// nothing sent for quietForGoodbye) and the last byte sent ended a line.
func (p *pipe) sayGoodbye(line []byte, parked bool) {
	if !p.wmu.TryLock() {
		return // a write is under way
	}
	defer p.wmu.Unlock()
	last := p.lastWrite.Load()
	if !parked && last != 0 && time.Since(time.Unix(0, last)) < quietForGoodbye {
		return
	}
	if last != 0 && p.lastByte != '\n' {
		return
	}
	p.writeLocked(line, goodbyeTimeout)
}

// closeWrite passes an EOF on: a TCP FIN, or a TLS close_notify.
func closeWrite(c net.Conn) {
	switch c := c.(type) {
	case *tls.Conn:
		c.CloseWrite()
	case interface{ CloseWrite() error }:
		c.CloseWrite()
	}
}
