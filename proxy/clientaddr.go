package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// ClientAddress is how a backend learns the client's address (the
// listener's client_address setting). The zero value is
// ClientAddressAuto.
type ClientAddress int

const (
	// ClientAddressAuto tells the backend by the protocol's own command
	// when it offers one: IMAP's ID when the backend lists ID, POP3's
	// XCLIENT when its greeting or CAPA lists XCLIENT; nothing otherwise.
	ClientAddressAuto ClientAddress = iota
	// ClientAddressID always tells it with ID (IMAP) or XCLIENT (POP3),
	// before the login.
	ClientAddressID
	// ClientAddressProxyV2 starts every backend connection with a PROXY
	// version 2 header, with the client-side TLS as TLVs.
	ClientAddressProxyV2
	// ClientAddressProxyV1 starts every backend connection with a PROXY
	// version 1 line.
	ClientAddressProxyV1
	// ClientAddressLoopback dials a backend on the same host from an
	// address in 127.0.0.0/8 of the client's network's own.
	ClientAddressLoopback
	// ClientAddressNone tells the backend nothing: it sees mailfront.
	ClientAddressNone
)

var clientAddressNames = [...]string{"auto", "id", "proxy-v2", "proxy-v1", "loopback", "none"}

func (a ClientAddress) String() string {
	if a < 0 || int(a) >= len(clientAddressNames) {
		return "ClientAddress(" + strconv.Itoa(int(a)) + ")"
	}
	return clientAddressNames[a]
}

// ParseClientAddress reads a client_address setting; "" is auto.
func ParseClientAddress(s string) (ClientAddress, bool) {
	if s == "" {
		return ClientAddressAuto, true
	}
	for i, n := range clientAddressNames {
		if s == n {
			return ClientAddress(i), true
		}
	}
	return 0, false
}

// ClientAddressNames lists the settings, for messages.
func ClientAddressNames() []string { return clientAddressNames[:] }

// Peer is what a backend may be told about a session's client.
type Peer struct {
	// Client is the client's address: the peer's, or the one a trusted
	// balancer named.
	Client netip.AddrPort
	// Local is the address the client connected to: mailfront's
	// listening socket, or the balancer's, as its header said.
	Local netip.AddrPort
	// Session is mailfront's name for the session, for the backend's
	// logs ("mailfront-" and the conn number in mailfront's).
	Session string
	// TLS is the client-side TLS; nil before TLS.
	TLS *tls.ConnectionState

	// Source is the address Backend.Open dialed from when it chose one
	// (ClientAddressLoopback), for the login's log line.
	Source netip.Addr
}

// Peer is what the backend may be told about s's client; the same value
// for the session's life (Backend.Open records its Source in it).
func (s *Session) Peer() *Peer {
	if s.peer != nil {
		s.peer.TLS = s.Conn.TLS()
		return s.peer
	}
	p := &Peer{Client: s.Client, Local: s.local, Session: "mailfront-" + strconv.FormatUint(s.ID, 10), TLS: s.Conn.TLS()}
	if !p.Client.IsValid() {
		p.Client = addrPortOf(s.Conn.raw.RemoteAddr())
	}
	if !p.Local.IsValid() {
		p.Local = addrPortOf(s.Conn.raw.LocalAddr())
	}
	s.peer = p
	return p
}

// loopbackSource is the address in 127.0.0.0/8 that the network of
// client dials a loopback backend from (ClientAddressLoopback): a hash of
// the network, so that it stays the same across sessions and restarts,
// and never 127.0.0.1 (mailfront's own) nor a .0 or .255 last byte.
func loopbackSource(network netip.Prefix) netip.Addr {
	h := fnv.New32a()
	b, _ := network.MarshalBinary()
	h.Write(b)
	v := h.Sum32()
	a := netip.AddrFrom4([4]byte{127, byte(v >> 16), byte(v >> 8), 1 + byte(v%254)})
	if a == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
		a = netip.AddrFrom4([4]byte{127, 0, 0, 2})
	}
	return a
}

// clientNetwork is the network a client's address is grouped in for
// ClientAddressLoopback: Backend.Network, else the address itself for
// IPv4 and its /64 for IPv6 (the guard's default grouping).
func (b *Backend) clientNetwork(a netip.Addr) netip.Prefix {
	if b.Network != nil {
		return b.Network(a)
	}
	bits := 64
	if a.Is4() {
		bits = 32
	}
	p, _ := a.Prefix(bits)
	return p
}

// proxyHeader is the PROXY header a backend connection starts with under
// ClientAddressProxyV1 and V2: the client's addresses and, in version 2,
// the client-side TLS (PP2_TYPE_SSL: version and cipher; the SNI as
// PP2_TYPE_AUTHORITY). A probe (nil peer) says LOCAL (v1: UNKNOWN): a
// connection of mailfront's own.
func proxyHeader(version byte, peer *Peer) ([]byte, error) {
	if peer == nil || !peer.Client.IsValid() {
		h := &proxyproto.Header{Version: version, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
		if version == 1 {
			h.Command = proxyproto.PROXY
		}
		return h.Format()
	}
	src, dst := peer.Client, peer.Local
	if !dst.IsValid() {
		dst = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	// Both addresses in one family, as the header has one.
	switch {
	case src.Addr().Is4() && dst.Addr().Is6():
		src = netip.AddrPortFrom(netip.AddrFrom16(src.Addr().As16()), src.Port())
	case src.Addr().Is6() && dst.Addr().Is4():
		dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	}
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst))
	if version == 2 && peer.TLS != nil {
		if err := h.SetTLVs(tlsTLVs(peer.TLS)); err != nil {
			return nil, err
		}
	}
	return h.Format()
}

// tlsTLVs describe the client-side TLS as HAProxy does: PP2_TYPE_SSL with
// the client flag, and version and cipher in OpenSSL's spelling ("TLSv1.3")
// for the version; verify is not zero, since no client certificate was
// asked for (zero would say one was verified); and the SNI.
func tlsTLVs(st *tls.ConnectionState) []proxyproto.TLV {
	ssl := tlvparse.PP2SSL{
		Client: tlvparse.PP2_BITFIELD_CLIENT_SSL,
		Verify: 1,
		TLV: []proxyproto.TLV{
			{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte(openSSLVersion(st.Version))},
			{Type: proxyproto.PP2_SUBTYPE_SSL_CIPHER, Value: []byte(tls.CipherSuiteName(st.CipherSuite))},
		},
	}
	t, err := ssl.Marshal()
	if err != nil {
		return nil // cannot happen: the sub-TLVs are short
	}
	tlvs := []proxyproto.TLV{t}
	if st.ServerName != "" {
		tlvs = append(tlvs, proxyproto.TLV{Type: proxyproto.PP2_TYPE_AUTHORITY, Value: []byte(st.ServerName)})
	}
	return tlvs
}

func openSSLVersion(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return tls.VersionName(v)
}

// errNotLoopback is ClientAddressLoopback's dial for a backend whose
// address is not a loopback IP address (config validation refuses it).
var errNotLoopback = errors.New("client_address loopback needs a backend address in 127.0.0.0/8")

// loopbackDialSource is the local address to dial b from for peer under
// ClientAddressLoopback (nil for a probe: the system's choice).
func (b *Backend) loopbackDialSource(peer *Peer) (*net.TCPAddr, error) {
	if peer == nil || !peer.Client.IsValid() {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(b.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotLoopback, err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Is4() || !ip.IsLoopback() {
		return nil, errNotLoopback
	}
	src := loopbackSource(b.clientNetwork(peer.Client.Addr()))
	peer.Source = src
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), nil
}
