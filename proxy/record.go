package proxy

import (
	"encoding/binary"
	"net"
)

// recordConn sits between a tls.Conn and its socket and never hands the TLS
// layer more than the rest of the current record. crypto/tls then holds no
// whole record it has not yet decrypted, so "the socket is readable" is
// exactly "the TLS connection has data", and the relay can wait for data
// without pinning a buffer (see waitReadable).
type recordConn struct {
	net.Conn
	hdr      [5]byte
	hdrN     int
	bodyLeft int
}

func (r *recordConn) Read(p []byte) (int, error) {
	if r.hdrN == len(r.hdr) && r.bodyLeft == 0 {
		r.hdrN = 0
	}
	if r.hdrN < len(r.hdr) {
		if want := len(r.hdr) - r.hdrN; len(p) > want {
			p = p[:want]
		}
		n, err := r.Conn.Read(p)
		r.hdrN += copy(r.hdr[r.hdrN:], p[:n])
		if r.hdrN == len(r.hdr) {
			r.bodyLeft = int(binary.BigEndian.Uint16(r.hdr[3:5]))
		}
		return n, err
	}
	if len(p) > r.bodyLeft {
		p = p[:r.bodyLeft]
	}
	n, err := r.Conn.Read(p)
	r.bodyLeft -= n
	return n, err
}

// NetConn returns the socket below.
func (r *recordConn) NetConn() net.Conn { return r.Conn }
