package proxy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/pires/go-proxyproto"
)

// ProxyProtocol is a listener's PROXY protocol setting: the load balancers
// whose connections start with a PROXY header (HAProxy's specification,
// version 1 or 2) naming the client they carry.
type ProxyProtocol struct {
	// Trusted are the sources that must send a header; a connection from
	// anywhere else is a direct client, and a header from it is refused.
	// Empty: nobody.
	Trusted []netip.Prefix
	// Timeout bounds the header's arrival (default
	// DefaultProxyHeaderTimeout).
	Timeout time.Duration
}

// trusts reports whether a connection from a must start with a header.
func (p *ProxyProtocol) trusts(a netip.Addr) bool {
	for _, t := range p.Trusted {
		if t.Contains(a) {
			return true
		}
	}
	return false
}

// The results of reading a PROXY header, for logs and metrics
// (Observer.ProxyHeader). A closed set.
const (
	HeaderOK        = "ok"        // a client's address
	HeaderLocal     = "local"     // v2 LOCAL, v1 UNKNOWN or a unix socket: the balancer's own connection
	HeaderEmpty     = "empty"     // closed before the first byte: a balancer's plain TCP health check
	HeaderMissing   = "missing"   // the connection started with something else, or sent nothing
	HeaderMalformed = "malformed" // not a valid header, or cut short
	HeaderOversized = "oversized" // longer than mailfront reads
	HeaderTimeout   = "timeout"   // began and did not end in time
	HeaderUntrusted = "untrusted" // from a source not in proxy_protocol.trusted
)

// HeaderResults lists every result, for metrics that show each at 0.
var HeaderResults = []string{
	HeaderOK, HeaderLocal, HeaderEmpty, HeaderMissing, HeaderMalformed, HeaderOversized, HeaderTimeout, HeaderUntrusted,
}

// HeaderError is a PROXY header mailfront refused.
type HeaderError struct {
	Result string // one of the Header results other than ok and local
	Err    error
}

func (e *HeaderError) Error() string { return "PROXY header " + e.Result + ": " + e.Err.Error() }
func (e *HeaderError) Unwrap() error { return e.Err }

// Header sizes (HAProxy's proxy-protocol.txt, sections 2.1 and 2.2).
const (
	// headerMin is the shortest header of either version: v1's
	// "PROXY UNKNOWN\r\n" (15 bytes); v2's is 16.
	headerMin = 15
	// v1Max is the longest v1 header; headerBufSize holds it.
	v1Max = 107
	// v2Fixed is v2's signature, version and command, family and length.
	v2Fixed = 16
	// v2MaxBody bounds what follows v2's fixed part: the addresses (at
	// most 216 bytes, for unix sockets) and TLVs. A balancer in TCP mode
	// sends a few dozen bytes of TLVs (AWS's VPC endpoint, GCP's and
	// Azure's link ids); a client certificate (PP2_SUBTYPE_SSL_CLIENT_CERT)
	// would not fit, and is not what a TCP balancer in front of mailfront
	// sends.
	v2MaxBody = 2048
)

// headerBufSize holds the header of every TCP connection without a heap
// allocation: v2 with IPv6 addresses is 52 bytes, v1 at most 107.
const headerBufSize = 128

// ProxyHeader is a header mailfront accepted.
type ProxyHeader struct {
	// Client is where the balancer's client connected from; invalid when
	// the balancer speaks for itself (LOCAL, UNKNOWN, a unix socket).
	Client netip.AddrPort
	// Local is the address the client connected to, at the balancer.
	Local netip.AddrPort
	// Version is 1 or 2.
	Version int
}

// Result is HeaderOK or HeaderLocal.
func (h *ProxyHeader) Result() string {
	if h.Client.IsValid() {
		return HeaderOK
	}
	return HeaderLocal
}

// ReadProxyHeader reads one PROXY header from r and not one byte more: a
// TLS ClientHello or a client's first command sent in the same segment
// stays unread for whoever reads r next. The caller bounds the read with a
// deadline on the connection. Version 1's line is read in steps of the
// fewest bytes a valid line can still hold (v1MinRest), version 2's by its
// length field; both are parsed by github.com/pires/go-proxyproto. A
// refused header is a *HeaderError.
func ReadProxyHeader(r io.Reader) (*ProxyHeader, error) {
	var stack [headerBufSize]byte
	buf := stack[:headerMin]
	if n, err := io.ReadFull(r, buf); err != nil {
		return nil, headerReadErr(n, err)
	}
	switch {
	case bytes.HasPrefix(buf, []byte("PROXY ")):
		var err error
		if buf, err = readV1(r, buf); err != nil {
			return nil, err
		}
	case bytes.HasPrefix(buf, proxyproto.SIGV2):
		buf = buf[:v2Fixed]
		if n, err := io.ReadFull(r, buf[headerMin:]); err != nil {
			return nil, headerReadErr(headerMin+n, err)
		}
		body := int(binary.BigEndian.Uint16(buf[14:16]))
		if body > v2MaxBody {
			return nil, &HeaderError{HeaderOversized, fmt.Errorf("version 2 header of %d bytes, more than the %d mailfront reads", v2Fixed+body, v2Fixed+v2MaxBody)}
		}
		if v2Fixed+body > len(stack) {
			buf = append(make([]byte, 0, v2Fixed+body), buf...)
		}
		buf = buf[:v2Fixed+body]
		if n, err := io.ReadFull(r, buf[v2Fixed:]); err != nil {
			return nil, headerReadErr(v2Fixed+n, err)
		}
	default:
		return nil, &HeaderError{HeaderMissing, errors.New("the connection did not start with a PROXY header")}
	}
	return parseProxyHeader(buf)
}

// readV1 reads the rest of a version 1 line whose first bytes are in buf.
func readV1(r io.Reader, buf []byte) ([]byte, error) {
	for {
		n := len(buf)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			if i != n-1 {
				// A LF in the first bytes, before the shortest header's end.
				return nil, &HeaderError{HeaderMalformed, errors.New("version 1 line ends too early")}
			}
			return buf, nil
		}
		if n >= v1Max {
			return nil, &HeaderError{HeaderOversized, fmt.Errorf("version 1 line longer than %d bytes", v1Max)}
		}
		want := min(v1MinRest(buf), v1Max-n)
		buf = buf[:n+want] // within the stack buffer: v1Max < headerBufSize
		if k, err := io.ReadFull(r, buf[n:]); err != nil {
			return nil, headerReadErr(n+k, err)
		}
	}
}

// v1MinRest is the fewest bytes that can follow buf, the start of a
// version 1 line without its LF, in a line the parser accepts: "PROXY",
// then single spaces between the protocol, two addresses and two ports,
// then CRLF. An IPv4 address is at least 7 bytes ("0.0.0.0"), an IPv6
// one 2 ("::"), a port 1; after UNKNOWN anything may follow, so only the
// CRLF is sure. A line that cannot be valid gets 1: it fails either way,
// and whatever is read past it is never served.
func v1MinRest(buf []byte) int {
	if buf[len(buf)-1] == '\r' {
		return 1
	}
	line := buf[len("PROXY "):]
	proto, _, _ := bytes.Cut(line, []byte(" "))
	var addr int
	switch string(proto) {
	case "TCP4":
		addr = 7
	case "TCP6":
		addr = 2
	default:
		return 2 // UNKNOWN (or not valid): at least the CRLF
	}
	token := bytes.Count(line, []byte(" ")) // 1 source, 2 destination, 3 and 4 the ports
	if token < 1 || token > 4 {
		return 1
	}
	mins := [5]int{0, addr, addr, 1, 1}
	cur := len(line) - 1 - bytes.LastIndexByte(line, ' ') // bytes of the current token so far
	rest := max(mins[token]-cur, 0)
	for t := token + 1; t <= 4; t++ {
		rest += 1 + mins[t]
	}
	return rest + 2 // and the CRLF
}

// headerReadErr is the result of a read that stopped after n bytes.
func headerReadErr(n int, err error) error {
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return &HeaderError{HeaderEmpty, errors.New("closed before sending anything")}
	case errors.Is(err, os.ErrDeadlineExceeded) && n == 0:
		return &HeaderError{HeaderMissing, errors.New("nothing arrived before the deadline (a client expecting the server to speak first?)")}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &HeaderError{HeaderTimeout, fmt.Errorf("only %d bytes arrived before the deadline", n)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &HeaderError{HeaderMalformed, fmt.Errorf("closed after %d bytes, within the header", n)}
	}
	return &HeaderError{HeaderMalformed, err}
}

// parseProxyHeader parses one whole header.
func parseProxyHeader(raw []byte) (*ProxyHeader, error) {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(raw))
	h, err := proxyproto.Read(br)
	br.Reset(nil)
	readerPool.Put(br)
	if err != nil {
		return nil, &HeaderError{HeaderMalformed, errors.New(headerProblem(err))}
	}
	ph := &ProxyHeader{Version: int(h.Version)}
	if h.Command.IsLocal() || h.TransportProtocol == proxyproto.UNSPEC || h.TransportProtocol.IsUnix() {
		return ph, nil
	}
	src, dst, ok := h.TCPAddrs()
	if !ok {
		return nil, &HeaderError{HeaderMalformed, errors.New("the header names a UDP client on a TCP listener")}
	}
	ph.Client = unmapped(src.AddrPort())
	ph.Local = unmapped(dst.AddrPort())
	if !ph.Client.Addr().IsValid() {
		return nil, &HeaderError{HeaderMalformed, errors.New("the header's source address is not valid")}
	}
	return ph, nil
}

// headerProblem says what the parser found wrong, without its package
// prefix.
func headerProblem(err error) string {
	msg := err.Error()
	if rest, ok := bytes.CutPrefix([]byte(msg), []byte("proxyproto: ")); ok {
		return string(rest)
	}
	return msg
}

func unmapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// looksLikeProxyHeader reports whether the first bytes a client sent are
// the start of a PROXY header: v1's "PROXY" or the start of v2's signature.
func looksLikeProxyHeader(b []byte) bool {
	n := min(len(b), len(proxyproto.SIGV2))
	if n < 5 {
		return false
	}
	return bytes.HasPrefix(b, proxyproto.SIGV1) || bytes.Equal(b[:n], proxyproto.SIGV2[:n])
}

// addrPortOf is a connection address as a netip.AddrPort (invalid when it
// is not an IP address: a unix socket).
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.TCPAddr:
		return unmapped(a.AddrPort()) // no string round trip on the accept loop
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return unmapped(ap)
}
