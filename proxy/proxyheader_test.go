package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// segments is a reader that hands out its input at most size bytes per
// Read (1: a header split over many segments) and counts what was taken.
type segments struct {
	r    *bytes.Reader
	size int
	read int
}

func (s *segments) Read(p []byte) (int, error) {
	if s.size > 0 && len(p) > s.size {
		p = p[:s.size]
	}
	n, err := s.r.Read(p)
	s.read += n
	return n, err
}

func mustFormat(t testing.TB, h *proxyproto.Header) []byte {
	t.Helper()
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tcp(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

// clientHello is the start of a TLS ClientHello record.
var clientHello = []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 'r', 'a', 'n', 'd', 'o', 'm', 'b', 'y', 't', 'e', 's'}

func TestReadProxyHeader(t *testing.T) {
	t.Parallel()
	v2 := func(src, dst string) []byte {
		return mustFormat(t, proxyproto.HeaderProxyFromAddrs(2, tcp(src), tcp(dst)))
	}
	withTLVs := func() []byte {
		h := proxyproto.HeaderProxyFromAddrs(2, tcp("198.51.100.7:40000"), tcp("10.0.0.1:993"))
		ssl, err := tlvparse.PP2SSL{Client: tlvparse.PP2_BITFIELD_CLIENT_SSL, TLV: []proxyproto.TLV{
			{Type: proxyproto.PP2_SUBTYPE_SSL_VERSION, Value: []byte("TLSv1.3")}}}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.SetTLVs([]proxyproto.TLV{ssl, {Type: proxyproto.PP2_TYPE_MIN_CUSTOM, Value: []byte("\x01vpce-0123456789abcdef")}}); err != nil {
			t.Fatal(err)
		}
		return mustFormat(t, h)
	}
	local := mustFormat(t, &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC})
	unix := mustFormat(t, proxyproto.HeaderProxyFromAddrs(2, &net.UnixAddr{Net: "unix", Name: "/run/lb.sock"}, &net.UnixAddr{Net: "unix", Name: "/run/mf.sock"}))
	udp := mustFormat(t, proxyproto.HeaderProxyFromAddrs(2, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 53}, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 53}))
	long := v2("192.0.2.1:1", "192.0.2.2:2")
	long[14], long[15] = 0x0b, 0xb8 // 3000 bytes follow

	tests := []struct {
		name          string
		header, after []byte
		result        string // HeaderOK, HeaderLocal, or the refusal
		client, local string
	}{
		{"v1 tcp4, then a command", []byte("PROXY TCP4 203.0.113.7 192.0.2.10 51234 143\r\n"), []byte("a CAPABILITY\r\n"), HeaderOK, "203.0.113.7:51234", "192.0.2.10:143"},
		{"v1 tcp6, then a ClientHello", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 51234 993\r\n"), clientHello, HeaderOK, "[2001:db8::7]:51234", "[2001:db8::1]:993"},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), []byte("a NOOP\r\n"), HeaderLocal, "", ""},
		{"v1 unknown with addresses", []byte("PROXY UNKNOWN ffff:f::f ffff:f::f 65535 65535\r\n"), nil, HeaderLocal, "", ""},
		{"v1 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe 65535 65535\r\n"), clientHello, HeaderOK, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535"},
		{"v2 tcp4, then a ClientHello", v2("203.0.113.7:51234", "192.0.2.10:993"), clientHello, HeaderOK, "203.0.113.7:51234", "192.0.2.10:993"},
		{"v2 tcp6, then a command", v2("[2001:db8::7]:51234", "[2001:db8::1]:143"), []byte("a LOGIN x y\r\n"), HeaderOK, "[2001:db8::7]:51234", "[2001:db8::1]:143"},
		{"v2 v4-mapped source", v2("[::ffff:203.0.113.7]:1", "[::ffff:192.0.2.10]:993"), nil, HeaderOK, "203.0.113.7:1", "192.0.2.10:993"},
		{"v2 with TLVs", withTLVs(), clientHello, HeaderOK, "198.51.100.7:40000", "10.0.0.1:993"},
		{"v2 local (health check)", local, []byte("a NOOP\r\n"), HeaderLocal, "", ""},
		{"v2 unix", unix, nil, HeaderLocal, "", ""},
		{"v2 udp", udp, nil, HeaderMalformed, "", ""},
		{"v2 oversized", long, nil, HeaderOversized, "", ""},
		{"v1 without CRLF", []byte("PROXY TCP4 " + strings.Repeat("1", 200)), nil, HeaderOversized, "", ""},
		{"v1 bad address", []byte("PROXY TCP4 300.1.1.1 192.0.2.10 1 2\r\n"), nil, HeaderMalformed, "", ""},
		{"v1 bare LF", []byte("PROXY TCP4 192.0.2.1 192.0.2.10 1 2\n"), nil, HeaderMalformed, "", ""},
		{"v1 LF early", []byte("PROXY TCP\r\n"), []byte("4 1.2.3.4 5.6.7.8 1 2\r\n"), HeaderMalformed, "", ""},
		{"v2 bad command", append(append([]byte{}, proxyproto.SIGV2...), 0x2f, 0x11, 0, 0), nil, HeaderMalformed, "", ""},
		{"v2 cut short", v2("203.0.113.7:1", "192.0.2.10:2")[:20], nil, HeaderMalformed, "", ""},
		{"v1 cut short", []byte("PROXY TCP4 203.0.113.7"), nil, HeaderMalformed, "", ""},
		{"closed at once", nil, nil, HeaderEmpty, "", ""},
		{"a direct TLS client", nil, clientHello, HeaderMissing, "", ""},
		{"a direct IMAP client", nil, []byte("a CAPABILITY\r\nb NOOP\r\n"), HeaderMissing, "", ""},
		{"an HTTP request", nil, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), HeaderMissing, "", ""},
	}
	for _, tt := range tests {
		for _, size := range []int{0, 1, 7} {
			t.Run(tt.name, func(t *testing.T) {
				in := append(append([]byte{}, tt.header...), tt.after...)
				r := &segments{r: bytes.NewReader(in), size: size}
				h, err := ReadProxyHeader(r)
				var got string
				switch {
				case err == nil:
					got = h.Result()
				case errors.As(err, new(*HeaderError)):
					got = err.(*HeaderError).Result
				default:
					t.Fatalf("got %v, want a *HeaderError", err)
				}
				if got != tt.result {
					t.Fatalf("segments of %d: got %s (%v), want %s", size, got, err, tt.result)
				}
				if err != nil {
					return
				}
				if r.read != len(tt.header) {
					t.Errorf("segments of %d: read %d bytes, want exactly the header's %d", size, r.read, len(tt.header))
				}
				rest, _ := io.ReadAll(r.r)
				if !bytes.Equal(rest, tt.after) {
					t.Errorf("after the header: got %q, want %q", rest, tt.after)
				}
				if h.Client.IsValid() && h.Client.String() != tt.client || !h.Client.IsValid() && tt.client != "" {
					t.Errorf("client: got %v, want %s", h.Client, tt.client)
				}
				if h.Client.IsValid() && h.Local.String() != tt.local {
					t.Errorf("local: got %v, want %s", h.Local, tt.local)
				}
			})
		}
	}
}

// consumed is how many bytes of in the library's reader br took.
func consumed(in []byte, br *bufio.Reader) int {
	rest, _ := io.ReadAll(br)
	return len(in) - len(rest)
}

// TestLooksLikeProxyHeader: the first bytes that give away a PROXY header
// from a source that may not send one (crypto/tls's record header, the
// plaintext reader's first bytes).
func TestLooksLikeProxyHeader(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"PROXY", true}, {"PROXY TCP4 ", true}, {"\r\n\r\n\x00", true}, {string(proxyproto.SIGV2), true},
		{"\r\n\r\n\x01", false}, {"\r\n", false}, {"PROX", false}, {"a LOG", false}, {"\x16\x03\x01\x02\x00", false},
	} {
		if got := looksLikeProxyHeader([]byte(tt.in)); got != tt.want {
			t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
		}
	}
}

// FuzzReadProxyHeader: whatever a balancer (or an attacker who got into
// the trusted range) sends, the reader returns a header or a
// *HeaderError, never reads past the header it accepts, never more than
// the largest header it reads, and reads the same header the same way
// whatever follows it and however it is segmented.
func FuzzReadProxyHeader(f *testing.F) {
	for _, s := range []string{
		"PROXY TCP4 203.0.113.7 192.0.2.10 51234 143\r\na NOOP\r\n", "PROXY UNKNOWN\r\n", "PROXY TCP6 ::1 ::1 1 2\r\n",
		"PROXY TCP4 1.2.3.4", "", "a LOGIN x y\r\n", string(clientHello),
		string(proxyproto.SIGV2) + "\x21\x11\x00\x0c\xcb\x00\x71\x07\xc0\x00\x02\x0a\xc8\x22\x00\x8f" + "tail",
		string(proxyproto.SIGV2) + "\x20\x00\x00\x00",
		string(proxyproto.SIGV2) + "\x21\x21\x00\x24" + strings.Repeat("\x01", 36) + "more",
		string(proxyproto.SIGV2) + "\x21\x11\x00\x14\xcb\x00\x71\x07\xc0\x00\x02\x0a\xc8\x22\x00\x8f\x20\x00\x05hello",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, seg uint8) {
		r := &segments{r: bytes.NewReader(in), size: int(seg % 9)}
		h, err := ReadProxyHeader(r)
		if r.read > v2Fixed+v2MaxBody {
			t.Fatalf("read %d bytes, more than any header", r.read)
		}
		// The oracle: what the library's own buffered reader accepts,
		// ReadProxyHeader accepts too, from the same bytes and no more
		// (unless longer than mailfront reads).
		br := bufio.NewReaderSize(bytes.NewReader(in), 4096)
		if want, werr := proxyproto.Read(br); werr == nil {
			n := consumed(in, br)
			var he *HeaderError
			switch {
			case err == nil && r.read != n:
				t.Fatalf("read %d bytes, the library's header is %d", r.read, n)
			case err != nil && !(errors.As(err, &he) && he.Result == HeaderOversized):
				t.Fatalf("the library reads %+v from these bytes; got %v", want, err)
			}
		}
		if err != nil {
			if !errors.As(err, new(*HeaderError)) {
				t.Fatalf("got %T %v, want a *HeaderError", err, err)
			}
			return
		}
		// The same bytes alone, in one segment, give the same header.
		n := r.read
		again, err := ReadProxyHeader(&segments{r: bytes.NewReader(in[:n])})
		if err != nil || *again != *h {
			t.Fatalf("the header's %d bytes alone: got %+v, %v; want %+v", n, again, err, h)
		}
		if h.Client.IsValid() && !h.Client.Addr().Is4() && h.Client.Addr().Is4In6() {
			t.Fatalf("client %v not unmapped", h.Client)
		}
	})
}
