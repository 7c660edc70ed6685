package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

func TestParseClientAddress(t *testing.T) {
	t.Parallel()
	for i, name := range ClientAddressNames() {
		a, ok := ParseClientAddress(name)
		if !ok || a != ClientAddress(i) || a.String() != name {
			t.Errorf("%q: got %v %v", name, a, ok)
		}
	}
	if a, ok := ParseClientAddress(""); !ok || a != ClientAddressAuto {
		t.Errorf(`"": got %v %v, want auto`, a, ok)
	}
	if _, ok := ParseClientAddress("proxy"); ok {
		t.Error(`"proxy" accepted`)
	}
}

// acceptOne listens on 127.0.0.1 and returns the first connection.
func acceptOne(t *testing.T) (addr string, conns <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

func received(t *testing.T, conns <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-conns:
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the backend was not dialed")
		return nil
	}
}

// TestBackendProxyHeader: under proxy-v2 every backend connection starts
// with a header naming the client, with the client-side TLS as TLVs
// (PP2_TYPE_SSL with the client flag, version and cipher, verify not
// zero; the SNI as PP2_TYPE_AUTHORITY), and a probe's with LOCAL; under
// proxy-v1 with a v1 line, and UNKNOWN for a probe.
func TestBackendProxyHeader(t *testing.T) {
	t.Parallel()
	addr, conns := acceptOne(t)
	peer := &Peer{
		Client: netip.MustParseAddrPort("203.0.113.7:51234"),
		Local:  netip.MustParseAddrPort("192.0.2.10:993"),
		TLS:    &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256, ServerName: "mail.example.com"},
	}
	read := func(b *Backend, p *Peer) *proxyproto.Header {
		t.Helper()
		be, err := b.Open(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		c := received(t, conns)
		h, err := proxyproto.Read(bufio.NewReader(c))
		if err != nil {
			t.Fatalf("backend read: %v", err)
		}
		return h
	}
	b := &Backend{Address: addr, ClientAddress: ClientAddressProxyV2}
	h := read(b, peer)
	src, dst, ok := h.TCPAddrs()
	if h.Version != 2 || h.Command != proxyproto.PROXY || !ok || src.String() != "203.0.113.7:51234" || dst.String() != "192.0.2.10:993" {
		t.Fatalf("v2: got %+v, want the client and where it connected", h)
	}
	tlvs, err := h.TLVs()
	if err != nil {
		t.Fatal(err)
	}
	ssl, ok := tlvparse.FindSSL(tlvs)
	if !ok || !ssl.ClientSSL() || ssl.Verified() {
		t.Fatalf("PP2_TYPE_SSL: got %+v %v, want the client flag and verify not zero", ssl, ok)
	}
	if v, _ := ssl.SSLVersion(); v != "TLSv1.3" {
		t.Errorf("SSL version: got %q", v)
	}
	if c, _ := ssl.SSLCipher(); c != "TLS_AES_128_GCM_SHA256" {
		t.Errorf("SSL cipher: got %q", c)
	}
	var authority string
	for _, tlv := range tlvs {
		if tlv.Type == proxyproto.PP2_TYPE_AUTHORITY {
			authority = string(tlv.Value)
		}
	}
	if authority != "mail.example.com" {
		t.Errorf("PP2_TYPE_AUTHORITY: got %q, want the SNI", authority)
	}
	if h := read(b, nil); h.Command != proxyproto.LOCAL {
		t.Errorf("v2 probe: got %+v, want LOCAL", h)
	}
	b1 := &Backend{Address: addr, ClientAddress: ClientAddressProxyV1}
	if h := read(b1, peer); h.Version != 1 || h.SourceAddr.String() != "203.0.113.7:51234" {
		t.Errorf("v1: got %+v", h)
	}
	if h := read(b1, nil); h.Version != 1 || h.TransportProtocol != proxyproto.UNSPEC {
		t.Errorf("v1 probe: got %+v, want UNKNOWN", h)
	}
	// One family: an IPv4 client of an IPv6 listener is sent v4-mapped.
	mixed := &Peer{Client: netip.MustParseAddrPort("203.0.113.7:1"), Local: netip.MustParseAddrPort("[2001:db8::1]:993")}
	if h := read(b, mixed); h.TransportProtocol != proxyproto.TCPv6 || h.SourceAddr.(*net.TCPAddr).AddrPort().Addr().Unmap() != netip.MustParseAddr("203.0.113.7") {
		t.Errorf("mixed families: got %+v", h)
	}
}

// TestBackendLoopbackSource: under loopback each client network dials
// from its own address in 127.0.0.0/8, the same one every time, never
// 127.0.0.1, and the peer records it for the login's log line; a probe
// dials from the system's choice.
func TestBackendLoopbackSource(t *testing.T) {
	t.Parallel()
	addr, conns := acceptOne(t)
	b := &Backend{Address: addr, ClientAddress: ClientAddressLoopback}
	from := func(p *Peer) netip.Addr {
		t.Helper()
		be, err := b.Open(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		defer be.Close()
		return addrPortOf(received(t, conns).RemoteAddr()).Addr()
	}
	a1 := &Peer{Client: netip.MustParseAddrPort("203.0.113.7:1")}
	a2 := &Peer{Client: netip.MustParseAddrPort("203.0.113.7:2")}
	c := &Peer{Client: netip.MustParseAddrPort("198.51.100.9:1")}
	v6 := &Peer{Client: netip.MustParseAddrPort("[2001:db8:1:2::7]:1")}
	seen := map[netip.Addr]bool{}
	for _, p := range []*Peer{a1, a2, c, v6} {
		got := from(p)
		if got != p.Source || !got.IsLoopback() || got == netip.MustParseAddr("127.0.0.1") {
			t.Fatalf("client %v: dialed from %v (recorded %v), want a loopback address of its own", p.Client, got, p.Source)
		}
		seen[got] = true
	}
	if a1.Source != a2.Source || len(seen) != 3 {
		t.Errorf("sources %v %v %v %v: want one per network", a1.Source, a2.Source, c.Source, v6.Source)
	}
	if got := from(nil); got != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("probe dialed from %v, want 127.0.0.1", got)
	}
	b.Network = func(a netip.Addr) netip.Prefix { p, _ := a.Prefix(8); return p } // a coarser grouping
	if from(a1); a1.Source != loopbackSource(netip.MustParsePrefix("203.0.0.0/8")) {
		t.Errorf("with Network: got %v, want the /8's address", a1.Source)
	}
}

func TestLoopbackBackendMustBeLoopback(t *testing.T) {
	t.Parallel()
	b := &Backend{Address: "192.0.2.1:143", ClientAddress: ClientAddressLoopback}
	_, err := b.Open(context.Background(), &Peer{Client: netip.MustParseAddrPort("203.0.113.7:1")})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("127.0.0.0/8")) {
		t.Errorf("got %v, want the loopback requirement", err)
	}
}
