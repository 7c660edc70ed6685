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
	"time"
)

// relayBufSize is larger than the largest TLS record's plaintext (16 KiB), so
// one read always empties crypto/tls's decrypted-record buffer.
const relayBufSize = 32 << 10

var relayPool = sync.Pool{New: func() any {
	b := make([]byte, relayBufSize)
	return &b
}}

// errRelayIdle is returned when neither side sent anything for the idle limit.
var errRelayIdle = errors.New("proxy: relay idle timeout")

// RelayStats are the bytes a relay moved each way.
type RelayStats struct {
	Up   int64 // client to backend
	Down int64 // backend to client
}

type relay struct {
	client, backend net.Conn
	idle            time.Duration
	last            atomic.Int64 // unix nanoseconds of the last byte either way
	up, down        atomic.Int64
	closeOnce       sync.Once
}

// Relay copies bytes between a logged-in client and its backend, in both
// directions, until both have ended or either fails, then closes both. It
// first sends toBackend (bytes the client pipelined after its login) and
// toClient (bytes the backend sent after its login reply). An EOF from one
// side is passed on as a half-close. The session ends when nothing moved for
// idle, or when ctx is cancelled. While the session is quiet, no copy buffer
// is held: each direction waits for readability and takes a pooled buffer
// only while bytes flow.
func Relay(ctx context.Context, client, backend net.Conn, toBackend, toClient []byte, idle time.Duration) (RelayStats, error) {
	r := &relay{client: client, backend: backend, idle: idle}
	r.touch()
	stop := context.AfterFunc(ctx, r.closeBoth)
	defer stop()
	upErr := make(chan error, 1)
	go func() { upErr <- r.pipe(backend, client, toBackend, &r.up) }()
	downErr := r.pipe(client, backend, toClient, &r.down)
	uerr := <-upErr
	r.closeBoth()
	st := RelayStats{Up: r.up.Load(), Down: r.down.Load()}
	if ctx.Err() != nil {
		return st, ErrShutdown
	}
	return st, errors.Join(uerr, downErr)
}

func (r *relay) touch() { r.last.Store(time.Now().UnixNano()) }

func (r *relay) closeBoth() {
	r.closeOnce.Do(func() {
		r.client.Close()
		r.backend.Close()
	})
}

// pipe copies src to dst. It returns nil when src ended cleanly (dst is then
// half-closed), or the error that ended it (both sides are then closed).
func (r *relay) pipe(dst, src net.Conn, pending []byte, n *atomic.Int64) (err error) {
	defer func() {
		if err != nil {
			r.closeBoth()
		}
	}()
	if len(pending) > 0 {
		if err := r.write(dst, pending, n); err != nil {
			return err
		}
	}
	for {
		if err := r.waitSrc(src); err != nil {
			return err
		}
		eof, err := r.drain(dst, src, n)
		if err != nil {
			return err
		}
		if eof {
			closeWrite(dst)
			return nil
		}
	}
}

// waitSrc waits until src has bytes (or EOF), re-arming the idle deadline
// while the other direction is active.
func (r *relay) waitSrc(src net.Conn) error {
	for {
		deadline := time.Unix(0, r.last.Load()).Add(r.idle)
		if !deadline.After(time.Now()) {
			return errRelayIdle
		}
		src.SetReadDeadline(deadline)
		err := waitReadable(src)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
	}
}

// drain reads from src with a pooled buffer until a read comes back short,
// which for TLS means the decrypted record is used up and for TCP that the
// socket is probably empty (waitReadable checks).
func (r *relay) drain(dst, src net.Conn, n *atomic.Int64) (eof bool, err error) {
	bp := relayPool.Get().(*[]byte)
	defer relayPool.Put(bp)
	buf := *bp
	for {
		m, rerr := src.Read(buf)
		if m > 0 {
			r.touch()
			if err := r.write(dst, buf[:m], n); err != nil {
				return false, err
			}
		}
		switch {
		case rerr == io.EOF:
			return true, nil
		case errors.Is(rerr, os.ErrDeadlineExceeded):
			return false, nil // idle check happens in waitSrc
		case rerr != nil:
			return false, fmt.Errorf("relay read: %w", rerr)
		case m < len(buf):
			return false, nil
		}
	}
}

func (r *relay) write(dst net.Conn, p []byte, n *atomic.Int64) error {
	dst.SetWriteDeadline(time.Now().Add(r.idle))
	m, err := dst.Write(p)
	n.Add(int64(m))
	if err != nil {
		return fmt.Errorf("relay write: %w", err)
	}
	return nil
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
