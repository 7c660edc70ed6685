//go:build unix

package proxy

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// On a socket recordConn reads ahead, several records per read, and still
// hands crypto/tls no more than the current record; recordReady says when
// a whole record is at hand without touching the socket.
func TestRecordConnReadAhead(t *testing.T) {
	t.Parallel()
	rec := func(body string) []byte {
		return append([]byte{23, 3, 3, byte(len(body) >> 8), byte(len(body))}, body...)
	}
	cli, srv := pair(t)
	rc := newRecordConn(srv)
	if rc.raw == nil {
		t.Fatal("no read-ahead on a TCP socket")
	}
	srv.SetReadDeadline(time.Now().Add(10 * time.Second))
	third := rec("world!")
	cli.Write(bytes.Join([][]byte{rec("hello"), rec(""), third[:7]}, nil))

	readRecord := func(want []byte) {
		t.Helper()
		var got []byte
		buf := make([]byte, 1024)
		for len(got) < len(want) {
			n, err := rc.Read(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			got = append(got, buf[:n]...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	readRecord(rec("hello"))
	if !rc.recordReady() {
		t.Fatal("recordReady = false with the empty record buffered")
	}
	readRecord(rec(""))
	if rc.recordReady() {
		t.Fatal("recordReady = true with half a record buffered")
	}
	// Parking with half a record keeps only its bytes, not a pooled buffer.
	rc.shrinkAhead()
	if rc.ahead == nil || len(*rc.ahead) != 7 || rc.buffered() != 7 {
		t.Fatalf("after shrinkAhead: buffered %d; want the 7 bytes received in a buffer of their size", rc.buffered())
	}
	cli.Write(third[7:])
	for !rc.recordReady() {
		if err := rc.fill(); err != nil {
			t.Fatal(err)
		}
	}
	readRecord(third)
	if rc.buffered() != 0 || rc.ahead != nil {
		t.Fatalf("buffered %d, buffer held %v after every record was read; want 0, none", rc.buffered(), rc.ahead != nil)
	}
	cli.Close()
	if n, err := rc.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("at EOF: got %d, %v; want 0, EOF", n, err)
	}
	if !rc.recordReady() {
		t.Fatal("recordReady = false at EOF; crypto/tls must be let to see it")
	}
}

// A batch goes out as one write, in order, after unbatched writes.
func TestRecordConnBatch(t *testing.T) {
	t.Parallel()
	cli, srv := pair(t)
	rc := newRecordConn(srv)
	rc.Write([]byte("a"))
	rc.startBatch()
	for _, s := range []string{"b", "c", string(bytes.Repeat([]byte("d"), bufSize))} {
		rc.Write([]byte(s))
	}
	if err := rc.flush(); err != nil {
		t.Fatal(err)
	}
	if rc.batch != nil {
		t.Fatal("batch still open after flush")
	}
	rc.Write([]byte("e"))
	srv.Close()
	cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(cli)
	want := "abc" + string(bytes.Repeat([]byte("d"), bufSize)) + "e"
	if err != nil || string(got) != want {
		t.Fatalf("got %d bytes (%v), want %d in order", len(got), err, len(want))
	}
}
