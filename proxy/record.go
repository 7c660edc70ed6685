package proxy

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
)

// recordHeaderLen is a TLS record header: type, version, length.
const recordHeaderLen = 5

// recordConn sits between a tls.Conn and its socket and never hands the TLS
// layer more than the rest of the current record. crypto/tls then holds no
// whole record it has not yet decrypted, so the relay can tell from
// recordConn alone whether the client has sent data, and wait for it
// without pinning a buffer.
//
// On a socket it reads ahead: one read takes what the socket holds (several
// records during a bulk upload) into a pooled buffer, which goes back to
// the pool as soon as it is used up, and never waits holding it. While the
// relay writes to the client it batches the records crypto/tls produces
// into one socket write (see startBatch).
type recordConn struct {
	net.Conn
	raw syscall.RawConn // nil when Conn is not a socket: no read-ahead

	hdr [recordHeaderLen]byte // the current record's header, as delivered
	// alert is the current record's body when it is an unencrypted
	// alert (type 21, two bytes: level, description), alertN bytes of it
	// delivered; alertN is -1 for any other record (see plainAlert).
	// Beside hdr they fill its padding: an idle session holds no more.
	alert    [2]byte
	alertN   int8
	hdrN     int // header bytes delivered
	bodyLeft int // body bytes of the current record not yet delivered

	ahead *[]byte // read-ahead buffer from bufPool, nil when empty
	r, w  int     // (*ahead)[r:w] is read but not yet delivered
	rerr  error   // the socket's EOF or error, delivered once ahead is used up

	wmu   sync.Mutex
	batch *[]byte // records waiting for one socket write, nil when not batching
}

// newRecordConn wraps c. It reads ahead only on a plain socket, never
// through a wrapper that may buffer bytes of its own.
func newRecordConn(c net.Conn) *recordConn {
	return &recordConn{Conn: c, raw: rawSocket(c)}
}

// Read delivers at most the rest of the current record's header or body.
func (c *recordConn) Read(p []byte) (int, error) {
	if c.hdrN == recordHeaderLen && c.bodyLeft == 0 {
		c.hdrN = 0
	}
	want := c.bodyLeft
	if c.hdrN < recordHeaderLen {
		want = recordHeaderLen - c.hdrN
	}
	if len(p) > want {
		p = p[:want]
	}
	n, err := c.read(p)
	if c.hdrN < recordHeaderLen {
		c.hdrN += copy(c.hdr[c.hdrN:], p[:n])
		if c.hdrN == recordHeaderLen {
			c.bodyLeft = int(binary.BigEndian.Uint16(c.hdr[3:5]))
			c.alertN = -1
			if c.hdr[0] == recordTypeAlert && c.bodyLeft == len(c.alert) {
				c.alertN = 0
			}
		}
	} else {
		if c.alertN >= 0 {
			c.alertN += int8(copy(c.alert[c.alertN:], p[:n]))
		}
		c.bodyLeft -= n
	}
	return n, err
}

// recordTypeAlert is a TLS alert record's content type (RFC 8446 section 5.1).
const recordTypeAlert = 21

// plainAlert returns the description of the unencrypted alert the peer
// sent last, when the record just delivered is one. Under TLS 1.3 every
// record after the ServerHello is encrypted, but OpenSSL (curl,
// fetchmail, python, mbsync) sends the alert that refuses the server's
// certificate unencrypted; crypto/tls then fails to decrypt it and says
// only "bad record MAC".
func (c *recordConn) plainAlert() (uint8, bool) {
	if int(c.alertN) != len(c.alert) || c.bodyLeft != 0 {
		return 0, false
	}
	return c.alert[1], true
}

// ClientAlertError is a handshake the client ended with an alert that
// crypto/tls could not read: the alert's name is what happened (the
// client refused the certificate: "unknown certificate authority",
// "bad certificate"...).
type ClientAlertError struct {
	Alert tls.AlertError
}

// Error reads like crypto/tls's own "remote error: tls: bad certificate".
func (e *ClientAlertError) Error() string {
	return "remote error: " + e.Alert.Error() + " (the client's alert, sent unencrypted)"
}

// nameAlert replaces a handshake's "bad record MAC" with the unencrypted
// alert the client sent, when it sent one.
func (c *recordConn) nameAlert(err error) error {
	if a, ok := c.plainAlert(); ok && err != nil && strings.Contains(err.Error(), "bad record MAC") {
		return &ClientAlertError{Alert: tls.AlertError(a)}
	}
	return err
}

func (c *recordConn) read(p []byte) (int, error) {
	if c.raw == nil {
		return c.Conn.Read(p)
	}
	if c.r == c.w {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
		if c.r == c.w {
			return 0, c.rerr
		}
	}
	n := copy(p, (*c.ahead)[c.r:c.w])
	c.r += n
	c.releaseAhead()
	return n, nil
}

// fill waits until the socket has something (bytes, EOF or an error) or
// the read deadline passes, without holding a buffer while it waits unless
// part of a record is already in it, and then reads what the socket holds
// after the bytes already buffered. EOF and socket errors are kept in c.rerr
// for Read to return once the buffer is used up; fill returns only the
// errors of the wait itself (the deadline, a closed connection).
func (c *recordConn) fill() error {
	if c.rerr != nil {
		return nil
	}
	if c.ahead != nil && (c.r > 0 || len(*c.ahead) < bufSize) {
		// Move the unread bytes to the front of a full-size buffer.
		b := c.ahead
		if len(*b) < bufSize {
			b = bufPool.Get().(*[]byte)
		}
		c.w = copy(*b, (*c.ahead)[c.r:c.w])
		c.r, c.ahead = 0, b
	}
	if c.ahead != nil && c.w == len(*c.ahead) {
		// Full, so it holds a whole record (bufSize exceeds the largest
		// a header can announce): Read must make room first.
		return nil
	}
	var n int
	var serr error
	err := c.raw.Read(func(fd uintptr) bool {
		if c.ahead == nil {
			c.ahead = bufPool.Get().(*[]byte)
		}
		n, serr = readFD(fd, (*c.ahead)[c.w:])
		if serr == syscall.EAGAIN {
			c.releaseAhead()
			return false
		}
		return true
	})
	switch {
	case err != nil:
		c.releaseAhead()
		return err
	case serr != nil:
		c.rerr = &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", serr)}
	case n == 0:
		c.rerr = io.EOF
	default:
		c.w += n
	}
	c.releaseAhead()
	return nil
}

// releaseAhead gives the read-ahead buffer back once it holds nothing.
func (c *recordConn) releaseAhead() {
	if c.ahead != nil && c.r == c.w {
		if len(*c.ahead) == bufSize {
			bufPool.Put(c.ahead)
		}
		c.ahead, c.r, c.w = nil, 0, 0
	}
}

// shrinkAhead moves the part of a record that has arrived out of the pooled
// buffer into one of its own size, before the relay parks: a client that
// stops in the middle of a record pins only the bytes it sent.
func (c *recordConn) shrinkAhead() {
	if c.ahead == nil || len(*c.ahead) < bufSize {
		return
	}
	b := make([]byte, c.w-c.r)
	copy(b, (*c.ahead)[c.r:c.w])
	bufPool.Put(c.ahead)
	c.ahead, c.r, c.w = &b, 0, len(b)
}

// buffered is how many received bytes Read has not delivered yet.
func (c *recordConn) buffered() int { return c.w - c.r }

// recordReady reports whether crypto/tls can read its next record without
// waiting for the socket: the record is complete in the read-ahead buffer,
// or the socket has ended and Read will say so.
func (c *recordConn) recordReady() bool {
	if c.rerr != nil {
		return true
	}
	avail := c.w - c.r
	switch {
	case c.hdrN == recordHeaderLen && c.bodyLeft == 0, c.hdrN == 0:
		if avail < recordHeaderLen {
			return false
		}
		b := (*c.ahead)[c.r:c.w]
		return avail >= recordHeaderLen+int(binary.BigEndian.Uint16(b[3:5]))
	case c.hdrN < recordHeaderLen:
		// A read was cut short inside a header; crypto/tls asks for the
		// rest of the header first, then for the body.
		return avail >= recordHeaderLen-c.hdrN
	default:
		return avail >= c.bodyLeft
	}
}

// Write writes p to the socket, or adds it to the batch when one is open.
func (c *recordConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.batch == nil {
		return c.Conn.Write(p)
	}
	b := *c.batch
	if len(b)+len(p) > cap(b) {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		b = *c.batch
	}
	if len(p) > cap(b) {
		return c.Conn.Write(p)
	}
	*c.batch = append(b, p...)
	return len(p), nil
}

// startBatch makes the Writes until flush go out as one socket write, so that
// the records crypto/tls seals for one large relay write leave in one
// segment train rather than one system call each.
func (c *recordConn) startBatch() {
	c.wmu.Lock()
	if c.batch == nil {
		c.batch = bufPool.Get().(*[]byte)
		*c.batch = (*c.batch)[:0]
	}
	c.wmu.Unlock()
}

// flush writes the batch out and ends it.
func (c *recordConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.batch == nil {
		return nil
	}
	err := c.flushLocked()
	*c.batch = (*c.batch)[:cap(*c.batch)]
	bufPool.Put(c.batch)
	c.batch = nil
	return err
}

func (c *recordConn) flushLocked() error {
	b := *c.batch
	*c.batch = b[:0]
	if len(b) == 0 {
		return nil
	}
	_, err := c.Conn.Write(b)
	return err
}

// NetConn returns the socket below.
func (c *recordConn) NetConn() net.Conn { return c.Conn }
