package proxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// oneByteConn returns its data one byte per Read, the worst segmentation.
type oneByteConn struct {
	net.Conn
	r io.Reader
}

func (c *oneByteConn) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return c.r.Read(p)
}

func TestRecordConnStopsAtRecordBoundaries(t *testing.T) {
	t.Parallel()
	rec := func(body string) []byte {
		return append([]byte{23, 3, 3, byte(len(body) >> 8), byte(len(body))}, body...)
	}
	stream := append(append(append(rec("hello"), rec("")...), rec("world!")...), 22)
	tests := []struct {
		name string
		src  func() io.Reader
	}{
		{"one read", func() io.Reader { return bytes.NewReader(stream) }},
		{"one byte per read", func() io.Reader { return io.Reader(&oneByteConn{r: bytes.NewReader(stream)}) }},
	}
	want := [][]byte{rec("hello"), rec(""), rec("world!")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &recordConn{Conn: readerConn{tt.src()}}
			for i, w := range want {
				got := make([]byte, 0, len(w))
				buf := make([]byte, 1024)
				for len(got) < len(w) {
					n, err := rc.Read(buf)
					if err != nil {
						t.Fatalf("record %d: %v", i, err)
					}
					got = append(got, buf[:n]...)
				}
				if !bytes.Equal(got, w) {
					t.Fatalf("record %d: got %q, want %q", i, got, w)
				}
			}
		})
	}
}

type readerConn struct{ io.Reader }

func (readerConn) Write(p []byte) (int, error)        { return len(p), nil }
func (readerConn) Close() error                       { return nil }
func (readerConn) LocalAddr() net.Addr                { return nil }
func (readerConn) RemoteAddr() net.Addr               { return nil }
func (readerConn) SetDeadline(t time.Time) error      { return nil }
func (readerConn) SetReadDeadline(t time.Time) error  { return nil }
func (readerConn) SetWriteDeadline(t time.Time) error { return nil }
