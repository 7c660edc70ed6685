package proxy

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"unsafe"
)

// crypto/tls keeps, for a connection's whole life, the capacity its input
// buffers once reached: rawInput grows to the largest record the peer sent
// (about 17 KiB once a client has APPENDed a message), hand to the largest
// handshake message (the ClientHello: about 1.5 KiB with a post-quantum key
// share), and input is a view into rawInput that keeps its array alive.
// tls.Conn has no API to give them back, so releaseTLSBuffers drops them
// when they are empty. The fields are found by name and type through
// reflect; if a Go release renames or retypes them, releaseTLSBuffers does
// nothing and TestReleaseTLSBuffers fails, so that the change is noticed.
var tlsBufs = findTLSBuffers()

type tlsBufferFields struct {
	rawInput, input, hand uintptr // offsets in tls.Conn
	ok                    bool
}

func findTLSBuffers() tlsBufferFields {
	t := reflect.TypeFor[tls.Conn]()
	field := func(name string, typ reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		if !ok || f.Type != typ || len(f.Index) != 1 {
			return 0, false
		}
		return f.Offset, true
	}
	buffer, reader := reflect.TypeFor[bytes.Buffer](), reflect.TypeFor[bytes.Reader]()
	raw, ok1 := field("rawInput", buffer)
	in, ok2 := field("input", reader)
	hand, ok3 := field("hand", buffer)
	return tlsBufferFields{rawInput: raw, input: in, hand: hand, ok: ok1 && ok2 && ok3}
}

// releaseTLSBuffers lets the garbage collector have c's empty input
// buffers. The caller must be the only goroutine that reads from or
// handshakes on c (the relay direction that reads c, or the session before
// the relay); writes and Close may run concurrently, as they never touch
// these fields.
func releaseTLSBuffers(c *tls.Conn) {
	if !tlsBufs.ok {
		return
	}
	raw, hand := bufferAt(c, tlsBufs.rawInput), bufferAt(c, tlsBufs.hand)
	in := (*bytes.Reader)(unsafe.Add(unsafe.Pointer(c), tlsBufs.input))
	if raw.Len() == 0 && in.Len() == 0 {
		*raw = bytes.Buffer{}
		*in = bytes.Reader{}
	}
	if hand.Len() == 0 {
		*hand = bytes.Buffer{}
	}
}

// bufferAt is the bytes.Buffer at offset off in c.
func bufferAt(c *tls.Conn, off uintptr) *bytes.Buffer {
	return (*bytes.Buffer)(unsafe.Add(unsafe.Pointer(c), off))
}
