package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const readerSize = 4096

var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// Conn is one side of a proxied session during the pre-authentication phase:
// bounded line reads, deadlines derived from the limits, and a TLS upgrade
// that never carries plaintext bytes across the boundary.
type Conn struct {
	raw     net.Conn // the TCP (or unix) connection
	c       net.Conn // raw, or a *tls.Conn over it
	r       *bufio.Reader
	tls     *tls.Conn
	limits  Limits
	start   time.Time
	now     func() time.Time
	stopped atomic.Bool
	// sniff: the next line is the client's first, checked for another
	// protocol's (see ReadLine). The engine sets it on client connections.
	sniff bool
	// relay is how the connection will be relayed after login: under
	// RelayStandard TLS runs directly over the socket, without recordConn,
	// and Detach neither drains nor releases crypto/tls's buffers.
	relay relayOptions

	bytesIn, bytesOut int64
}

// NewConn wraps c with the given limits. The total-time clock starts now.
func NewConn(c net.Conn, l Limits) *Conn {
	l = l.WithDefaults()
	r := readerPool.Get().(*bufio.Reader)
	r.Reset(c)
	cc := &Conn{raw: c, c: c, r: r, limits: l, now: time.Now}
	cc.start = cc.now()
	return cc
}

// Limits returns the limits in force on c.
func (c *Conn) Limits() Limits { return c.limits }

// TLS returns the TLS state, or nil before TLS.
func (c *Conn) TLS() *tls.ConnectionState {
	if c.tls == nil {
		return nil
	}
	st := c.tls.ConnectionState()
	return &st
}

// IsTLS reports whether the connection is under TLS.
func (c *Conn) IsTLS() bool { return c.tls != nil }

// Stopped reports whether Stop has been called.
func (c *Conn) Stopped() bool { return c.stopped.Load() }

// Stop makes the current and every later read fail with ErrShutdown. Writes
// still work, so the handler can say goodbye.
func (c *Conn) Stop() {
	c.stopped.Store(true)
	// The socket, not c.c: StartTLS may be swapping c.c on the session's
	// goroutine, and a deadline on the socket binds the TLS layer too.
	c.raw.SetReadDeadline(time.Unix(1, 0))
}

// readDeadline is the earlier of the idle and total-time deadlines.
func (c *Conn) armRead() error {
	if c.stopped.Load() {
		return ErrShutdown
	}
	now := c.now()
	d := now.Add(c.limits.Idle)
	if c.limits.Total > 0 {
		end := c.start.Add(c.limits.Total)
		if !end.After(now) {
			return ErrTotalTime
		}
		if end.Before(d) {
			d = end
		}
	}
	if err := c.raw.SetReadDeadline(d); err != nil {
		return err
	}
	// Stop may have run between the check above and the deadline we just
	// set, which would have overridden its own.
	if c.stopped.Load() {
		return ErrShutdown
	}
	return nil
}

// readErr turns a deadline into the limit that caused it.
func (c *Conn) readErr(err error) error {
	if err == nil {
		return nil
	}
	if c.stopped.Load() {
		c.raw.SetReadDeadline(time.Time{})
		return ErrShutdown
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if c.limits.Total > 0 && !c.now().Before(c.start.Add(c.limits.Total)) {
			return ErrTotalTime
		}
		return ErrIdle
	}
	return err
}

// ReadLine reads one line and returns it without its line ending (CRLF, or a
// bare LF). The slice is the caller's. A line longer than Limits.Line gives a
// *LimitError. A client's first line that belongs to another protocol gives
// a *CrossProtocolError.
func (c *Conn) ReadLine() ([]byte, error) {
	if err := c.armRead(); err != nil {
		return nil, err
	}
	if c.sniff && c.tls == nil {
		// A TLS client on a plaintext listener sends a ClientHello, whose
		// record header starts with 0x16 and which holds no line end for
		// a long way: refuse it on its first byte rather than wait.
		b, err := c.r.Peek(1)
		if err != nil {
			return nil, c.readErr(err)
		}
		if b[0] == tlsHandshakeRecord {
			c.sniff = false
			return nil, &CrossProtocolError{Protocol: "tls"}
		}
		// A PROXY header from a source the listener does not trust
		// (the engine reads a trusted one before the session starts):
		// v2's signature starts with an empty line, so look at what
		// has arrived with the first byte, without waiting for more.
		if b, _ := c.r.Peek(min(c.r.Buffered(), 12)); looksLikeProxyHeader(b) {
			c.sniff = false
			return nil, &CrossProtocolError{Protocol: "proxy"}
		}
	}
	line, err := c.readLine()
	if err != nil || !c.sniff {
		return line, err
	}
	c.sniff = false
	if p := otherProtocol(line); p != "" {
		return nil, &CrossProtocolError{Protocol: p}
	}
	return line, nil
}

// readLine is ReadLine after the deadline is set.
func (c *Conn) readLine() ([]byte, error) {
	var line []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		if len(line)+len(frag) > c.limits.Line+2 {
			return nil, &LimitError{Kind: LimitLine, Max: int64(c.limits.Line)}
		}
		line = append(line, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, c.readErr(err)
		}
		break
	}
	c.bytesIn += int64(len(line))
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > c.limits.Line {
		return nil, &LimitError{Kind: LimitLine, Max: int64(c.limits.Line)}
	}
	return line, nil
}

// ReadFull fills p, for literals whose size the protocol has already checked.
func (c *Conn) ReadFull(p []byte) error {
	for len(p) > 0 {
		if err := c.armRead(); err != nil {
			return err
		}
		n, err := c.r.Read(p)
		c.bytesIn += int64(n)
		p = p[n:]
		if err != nil {
			return c.readErr(err)
		}
	}
	return nil
}

// Write writes p in full with the write timeout.
func (c *Conn) Write(p []byte) (int, error) {
	c.c.SetWriteDeadline(c.now().Add(c.limits.Write))
	n, err := c.c.Write(p)
	c.bytesOut += int64(n)
	if err != nil {
		return n, fmt.Errorf("write: %w", err)
	}
	return n, nil
}

// WriteString is Write for a string.
func (c *Conn) WriteString(s string) error {
	_, err := c.Write([]byte(s))
	return err
}

// StartTLS upgrades the connection to TLS as a server. Bytes the peer sent
// after the STARTTLS command and before the handshake are discarded, never
// read as commands (CVE-2011-0411); discarded reports how many. The reader is
// rebuilt over the TLS connection.
func (c *Conn) StartTLS(ctx context.Context, cfg *tls.Config) (discarded int, err error) {
	if c.tls != nil {
		return 0, ErrTLSActive
	}
	discarded = c.r.Buffered()
	c.r.Discard(discarded)
	c.r.Reset(nil)
	var t *tls.Conn
	var rc *recordConn
	if c.relay.mode == RelayStandard {
		t = tls.Server(c.raw, cfg)
	} else {
		rc = newRecordConn(c.raw)
		t = tls.Server(rc, cfg)
	}
	if err := c.handshake(ctx, t, rc); err != nil {
		return discarded, err
	}
	c.c, c.tls = t, t
	c.r.Reset(t)
	return discarded, nil
}

// handshake runs t's handshake within the handshake limit. It bounds the
// handshake with socket deadlines, and ctx ends it by moving them to the
// past, rather than through HandshakeContext, which costs a goroutine, a
// timer and two channels per connection. rc, when set, is t's recordConn:
// it names the alert a client sent unencrypted.
func (c *Conn) handshake(ctx context.Context, t *tls.Conn, rc *recordConn) error {
	deadline := c.now().Add(c.limits.Handshake)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.raw.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.raw.SetDeadline(time.Unix(1, 0)) })
	// Stop may have run before the deadline above replaced its own.
	if c.stopped.Load() {
		c.raw.SetReadDeadline(time.Unix(1, 0))
	}
	err := t.Handshake()
	stop()
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			switch {
			case ctx.Err() != nil:
				err = ctx.Err()
			case !c.now().Before(deadline):
				err = context.DeadlineExceeded
			}
		}
		if rc != nil {
			err = rc.nameAlert(err)
		}
		return fmt.Errorf("tls handshake: %w", err)
	}
	return nil
}

// Detach ends the line-oriented phase: it returns the transport and a copy of
// any bytes already read but not consumed (a client's pipelined commands), and
// gives the reader back to the pool. c must not be used afterwards.
func (c *Conn) Detach() (net.Conn, []byte) {
	var pending []byte
	if n := c.r.Buffered(); n > 0 {
		pending = make([]byte, n)
		c.r.Read(pending)
	}
	if c.tls != nil && c.relay.mode != RelayStandard {
		// The optimized relay reads a TLS source only once its record is
		// complete below it (recordConn), so what crypto/tls has already
		// decrypted must be handed over now; the standard relay reads the
		// tls.Conn itself.
		pending = drainTLS(c.tls, pending)
		if c.relay.releaseTLS {
			releaseTLSBuffers(c.tls)
		}
	}
	c.r.Reset(nil)
	readerPool.Put(c.r)
	c.r = nil
	c.c.SetDeadline(time.Time{})
	return c.c, pending
}

// lingerTime and lingerBytes bound how long and how much a closing
// connection keeps reading so that its last reply is not lost to a reset.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 64 << 10
)

// CloseLingering is Close for a connection that may still have unread
// input (a limit was hit): closing a socket with unread bytes makes the
// kernel send a reset, which can destroy the BYE just written. It sends the
// end of stream first, then reads and drops what the peer still sends for a
// bounded time (nginx's lingering close).
func (c *Conn) CloseLingering() error {
	if c.tls != nil {
		c.tls.SetWriteDeadline(c.now().Add(lingerTime))
		c.tls.CloseWrite()
	}
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.raw.SetReadDeadline(c.now().Add(lingerTime))
		io.CopyN(io.Discard, c.raw, lingerBytes)
	}
	return c.Close()
}

// Close closes the transport and returns the reader to the pool.
func (c *Conn) Close() error {
	if c.r != nil {
		c.r.Reset(nil)
		readerPool.Put(c.r)
		c.r = nil
	}
	return c.c.Close()
}

// Counts returns the bytes read from and written to the peer so far.
func (c *Conn) Counts() (in, out int64) { return c.bytesIn, c.bytesOut }

// drainTLS appends the decrypted bytes crypto/tls still holds from a record
// that did not fit the line reader. A deadline in the past makes the read
// return at once when nothing is held; a timeout does not break a tls.Conn.
func drainTLS(t *tls.Conn, pending []byte) []byte {
	t.SetReadDeadline(time.Unix(1, 0))
	var buf [4096]byte
	for {
		n, err := t.Read(buf[:])
		pending = append(pending, buf[:n]...)
		if err != nil || n == 0 {
			return pending
		}
	}
}
