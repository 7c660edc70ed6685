// Package dnstest runs an authoritative DNS server for one zone, for tests:
// it listens on 127.0.0.1 with UDP and TCP on the same free port, answers
// SOA and NS at the apex, an A record for every name in the zone, and the TXT
// records that TSIG-signed dynamic updates put there.
//
// It follows RFC 1035 (queries over UDP, truncated with TC beyond 512 bytes
// or the EDNS0 buffer size, and over TCP), RFC 2136 (dynamic update:
// adding TXT RRs, deleting one TXT RR, deleting an RRset) and RFC 8945 (TSIG:
// an update is applied only when signed with the configured key). It is not a
// resolver (names outside the zone are REFUSED, nothing is recursed or
// cached), it does not do zone transfers, prerequisites or DNSSEC, and it is
// not for production.
package dnstest

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Options configures a Server. Zero values mean the documented defaults.
type Options struct {
	Zone      string // e.g. "example.test." (the trailing dot is optional)
	KeyName   string // TSIG key name for updates, e.g. "mailfront-key."; empty: every update is refused
	Secret    string // base64 TSIG secret
	Algorithm string // "hmac-sha256" (default), "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", with or without the trailing dot
	A         string // IPv4 answered for every name in the zone; default "127.0.0.1"
}

// Server is a running test DNS server. It is safe for concurrent use.
type Server struct {
	t       testing.TB
	zone    string // canonical: lower case, fully qualified
	keyName string // canonical
	alg     string // canonical, e.g. dns.HmacSHA256
	a       net.IP
	addr    string

	mu       sync.Mutex
	txt      map[string][]txtRR // canonical owner name -> RRs, in insertion order
	serial   uint32
	updates  int
	rejected int
}

type txtRR struct {
	txt []string // the character-strings of one TXT RR
	ttl uint32
}

// Start starts a server for opts.Zone and stops it in t.Cleanup. It fails the
// test on a bad option or if it cannot listen.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := newServer(t, opts)
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	pc, l, err := listen()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.addr = l.Addr().String()
	secret := map[string]string{} // never nil: a nil map would skip TSIG verification
	if s.keyName != "" {
		secret[s.keyName] = opts.Secret
	}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(s.serveDNS), TsigSecret: secret, MsgAcceptFunc: accept},
		{Listener: l, Handler: dns.HandlerFunc(s.serveDNS), TsigSecret: secret, MsgAcceptFunc: accept},
	} {
		serve(t, srv)
	}
	return s
}

func newServer(t testing.TB, opts Options) (*Server, error) {
	if opts.Zone == "" || !isDomainName(opts.Zone) {
		return nil, fmt.Errorf("zone %q is not a domain name", opts.Zone)
	}
	alg, err := algorithm(opts.Algorithm)
	if err != nil {
		return nil, err
	}
	a := net.ParseIP(cmp.Or(opts.A, "127.0.0.1")).To4()
	if a == nil {
		return nil, fmt.Errorf("a %q is not an IPv4 address", opts.A)
	}
	if opts.KeyName != "" {
		if b, err := base64.StdEncoding.DecodeString(opts.Secret); err != nil || len(b) == 0 {
			return nil, errors.New("secret is not valid base64")
		}
	}
	s := &Server{t: t, zone: canonical(opts.Zone), alg: alg, a: a, txt: map[string][]txtRR{}, serial: 1}
	if opts.KeyName != "" {
		s.keyName = canonical(opts.KeyName)
	}
	return s, nil
}

// listen opens UDP and TCP on the same free loopback port, retrying when the
// port the kernel gave for UDP is taken for TCP.
func listen() (net.PacketConn, net.Listener, error) {
	var errs []error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		errs = append(errs, err)
	}
	return nil, nil, fmt.Errorf("listen tcp on the udp port: %w", errors.Join(errs...))
}

// serve runs srv until the test's cleanup, returning once it accepts.
func serve(t testing.TB, srv *dns.Server) {
	t.Helper()
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	done := make(chan error, 1)
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("dnstest: serve: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("dnstest: shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("dnstest: serve: %v", err)
		}
	})
}

// accept lets queries and updates through, each with one question (for an
// update, the zone section), and nothing else.
func accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	switch op := int(dh.Bits>>11) & 0xF; op {
	case dns.OpcodeQuery, dns.OpcodeUpdate:
	default:
		return dns.MsgRejectNotImplemented
	}
	if dh.Qdcount != 1 {
		return dns.MsgReject
	}
	return dns.MsgAccept
}

// Addr is the server's "127.0.0.1:port", for UDP and TCP alike.
func (s *Server) Addr() string { return s.addr }

// TXT returns the current TXT values for name (any case, with or without
// the trailing dot), each RR's character-strings joined, in insertion order.
func (s *Server) TXT(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, rr := range s.txt[canonical(name)] {
		out = append(out, strings.Join(rr.txt, ""))
	}
	return out
}

// Updates counts the UPDATE messages accepted and applied.
func (s *Server) Updates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updates
}

// Rejected counts the UPDATE messages refused: unsigned, badly signed,
// signed with another key or algorithm, for another zone, or malformed.
func (s *Server) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected
}

// algorithm maps the spellings acmedns accepts to miekg/dns's names.
func algorithm(name string) (string, error) {
	if name == "" {
		return dns.HmacSHA256, nil
	}
	switch alg := canonical(name); alg {
	case dns.HmacSHA1, dns.HmacSHA224, dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512:
		return alg, nil
	}
	return "", fmt.Errorf("unknown tsig algorithm %q", name)
}

func canonical(name string) string { return dns.CanonicalName(name) }

func isDomainName(name string) bool {
	_, ok := dns.IsDomainName(name)
	return ok
}
