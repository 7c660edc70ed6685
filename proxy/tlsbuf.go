package proxy

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"reflect"
	"time"
	"unsafe"
)

// crypto/tls keeps, for a connection's whole life, the capacity its input
// buffers once reached: rawInput grows to the largest record the peer sent
// (about 17 KiB once a client has APPENDed a message), hand to the largest
// handshake message (the ClientHello: about 1.5 KiB with a post-quantum key
// share), and input is a view into rawInput that keeps its array alive.
// tls.Conn has no API to give them back (golang/go#43563 asks for one), so
// releaseTLSBuffers drops them when they are empty: that is most of what a
// quiet logged-in session would otherwise hold.
//
// It writes crypto/tls's private fields, found by name and type through
// reflect. Two checks stand between it and a Go release that changes
// them: a renamed or retyped field makes tlsBufs.ok false and the release
// does nothing; and before a Server enables the release it runs
// tlsReleaseSelfTest, a real TLS session over a socket pair that must stay
// byte-exact across releases. If either check fails, the server logs one
// warning, counts it (Observer.SelfTestFailed) and relays without the
// release. What neither check can prove is that a future crypto/tls gives
// these fields a meaning the self-test does not exercise; relay.mode
// standard turns the release (and the rest of the optimized path) off.
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

// errTLSFields means crypto/tls no longer has the fields releaseTLSBuffers
// writes.
var errTLSFields = errors.New("crypto/tls's input buffer fields are not where this build expects them")

// selfTestTimeout bounds the whole self-test at start.
const selfTestTimeout = 10 * time.Second

// tlsReleaseSelfTest runs release on a real TLS 1.3 session, as the relay
// does, and checks that the session stays byte-exact: a handshake,
// release, then data both ways (records of several sizes, from one byte to
// several records), each read in two parts with a release between them, so
// that a release must keep the rest of a record crypto/tls holds and may
// drop only empty buffers. It returns why it failed, within timeout.
func tlsReleaseSelfTest(release func(*tls.Conn), timeout time.Duration) error {
	if !tlsBufs.ok {
		return errTLSFields
	}
	cfg, err := selfTestConfig()
	if err != nil {
		return err
	}
	a, b, err := socketPair()
	if err != nil {
		return fmt.Errorf("socket pair: %w", err)
	}
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(timeout)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	srv := tls.Server(newRecordConn(a), cfg.server)
	cli := tls.Client(b, cfg.client)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	hs := make(chan error, 1)
	go func() { hs <- cli.HandshakeContext(ctx) }()
	if err := srv.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if err := <-hs; err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	release(srv)
	if raw := bufferAt(srv, tlsBufs.rawInput); raw.Cap() != 0 {
		return errors.New("release left the read buffer in place")
	}
	for i, n := range []int{maxPlaintext, 1, 3 * maxPlaintext / 2, 100 << 10, 5} {
		if err := exchange(srv, cli, n, release); err != nil {
			return fmt.Errorf("exchange %d (%d bytes): %w", i+1, n, err)
		}
	}
	return nil
}

// exchange sends n random bytes each way between srv and cli at once,
// releasing srv's buffers after it has read part of them and again after
// all, and checks they arrived unchanged.
func exchange(srv, cli *tls.Conn, n int, release func(*tls.Conn)) error {
	up, down := make([]byte, n), make([]byte, n)
	rand.Read(up)
	rand.Read(down)
	errc := make(chan error, 2)
	go func() { _, err := cli.Write(up); errc <- err }()
	go func() { _, err := srv.Write(down); errc <- err }()
	gotUp := make([]byte, n)
	for _, part := range [][]byte{gotUp[:n/2+1], gotUp[n/2+1:]} {
		if _, err := io.ReadFull(srv, part); err != nil {
			return fmt.Errorf("server read: %w", err)
		}
		release(srv)
	}
	gotDown := make([]byte, n)
	if _, err := io.ReadFull(cli, gotDown); err != nil {
		return fmt.Errorf("client read: %w", err)
	}
	for range 2 {
		if err := <-errc; err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
		return errors.New("bytes changed on the way")
	}
	return nil
}

type selfTestTLS struct{ server, client *tls.Config }

// selfTestConfig is a throwaway Ed25519 certificate and the configurations
// that trust it, for tlsReleaseSelfTest.
func selfTestConfig() (selfTestTLS, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return selfTestTLS{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		DNSNames:     []string{"self-test.invalid"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return selfTestTLS{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return selfTestTLS{}, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	return selfTestTLS{
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}, MinVersion: tls.VersionTLS13},
		client: &tls.Config{RootCAs: roots, ServerName: "self-test.invalid", MinVersion: tls.VersionTLS13},
	}, nil
}
