package dnstest

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const keyName = "mailfront-key."

func newSecret(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func start(t *testing.T) (*Server, string) {
	t.Helper()
	secret := newSecret(t)
	return Start(t, Options{Zone: "Example.TEST", KeyName: keyName, Secret: secret}), secret
}

// exchange sends m over network ("udp" or "tcp") and returns the reply; err
// is the transport or TSIG verification error, with the reply when there is one.
func exchange(t *testing.T, addr, network string, m *dns.Msg, secrets map[string]string) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second, TsigSecret: secrets}
	r, _, err := c.Exchange(m, addr)
	if r == nil && err != nil {
		t.Fatalf("exchange %s: %v", network, err)
	}
	return r, err
}

func query(t *testing.T, s *Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.RecursionDesired = false
	r, err := exchange(t, s.Addr(), network, m, nil)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// signed returns an update for zone carrying rrs, signed as key with alg.
func signed(zone, key, alg string, insert bool, rrs ...dns.RR) *dns.Msg {
	m := new(dns.Msg).SetUpdate(zone)
	if insert {
		m.Insert(rrs)
	} else {
		m.Ns = append(m.Ns, rrs...) // deletions, with their classes set by the caller
	}
	if key != "" {
		m.SetTsig(key, alg, 300, time.Now().Unix())
	}
	return m
}

func txt(name, value string) *dns.TXT {
	return &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: []string{value}}
}

func TestQuery(t *testing.T) {
	s, _ := start(t)
	tests := []struct {
		name, qname string
		qtype       uint16
		rcode       int
		answer      []uint16 // types in the answer section
		authSOA     bool     // SOA in the authority section
	}{
		{"apex soa", "example.test.", dns.TypeSOA, dns.RcodeSuccess, []uint16{dns.TypeSOA}, false},
		{"apex ns", "EXAMPLE.test.", dns.TypeNS, dns.RcodeSuccess, []uint16{dns.TypeNS}, false},
		{"apex a", "example.test.", dns.TypeA, dns.RcodeSuccess, []uint16{dns.TypeA}, false},
		{"random name a", "x7q.deep.below.example.test.", dns.TypeA, dns.RcodeSuccess, []uint16{dns.TypeA}, false},
		{"aaaa nodata", "mail.example.test.", dns.TypeAAAA, dns.RcodeSuccess, nil, true},
		{"soa below apex", "_acme-challenge.a.b.example.test.", dns.TypeSOA, dns.RcodeSuccess, nil, true},
		{"ns below apex", "a.example.test.", dns.TypeNS, dns.RcodeSuccess, nil, true},
		{"txt none", "_acme-challenge.example.test.", dns.TypeTXT, dns.RcodeSuccess, nil, true},
		{"outside zone", "example.com.", dns.TypeA, dns.RcodeRefused, nil, false},
		{"parent of zone", "test.", dns.TypeSOA, dns.RcodeRefused, nil, false},
		{"suffix lookalike", "badexample.test.", dns.TypeA, dns.RcodeRefused, nil, false},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"/"+network, func(t *testing.T) {
				r := query(t, s, network, tt.qname, tt.qtype)
				if r.Rcode != tt.rcode {
					t.Fatalf("rcode: got %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				var got []uint16
				for _, rr := range r.Answer {
					got = append(got, rr.Header().Rrtype)
				}
				if !slices.Equal(got, tt.answer) {
					t.Errorf("answer types: got %v, want %v", got, tt.answer)
				}
				hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA && r.Ns[0].Header().Name == "example.test."
				if hasSOA != tt.authSOA {
					t.Errorf("authority: got %v, want zone SOA %v", r.Ns, tt.authSOA)
				}
				if r.Authoritative != (tt.rcode == dns.RcodeSuccess) {
					t.Errorf("aa: got %v, want %v", r.Authoritative, tt.rcode == dns.RcodeSuccess)
				}
			})
		}
	}
}

func TestAOption(t *testing.T) {
	s := Start(t, Options{Zone: "example.test.", A: "192.0.2.7"})
	r := query(t, s, "udp", "host.example.test.", dns.TypeA)
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.7" {
		t.Fatalf("answer: got %v, want host.example.test. A 192.0.2.7", r.Answer)
	}
}

func TestUpdate(t *testing.T) {
	s, secret := start(t)
	secrets := map[string]string{keyName: secret}
	name := "_acme-challenge.Example.test."
	send := func(m *dns.Msg) {
		t.Helper()
		r, err := exchange(t, s.Addr(), "tcp", m, secrets)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			t.Fatalf("update: got rcode %s, err %v; want NOERROR", dns.RcodeToString[r.Rcode], err)
		}
		if r.IsTsig() == nil {
			t.Fatal("update reply is not signed")
		}
	}
	remove := func(class uint16, rr dns.RR) dns.RR { rr.Header().Class, rr.Header().Ttl = class, 0; return rr }

	send(signed("example.test.", keyName, dns.HmacSHA256, true, txt(name, "wildcard"), txt(name, "base")))
	send(signed("example.test.", keyName, dns.HmacSHA256, true, txt(name, "base"))) // duplicate: no-op
	if got, want := s.TXT("_ACME-challenge.example.test"), []string{"wildcard", "base"}; !slices.Equal(got, want) {
		t.Fatalf("TXT after adds: got %q, want %q", got, want)
	}
	r := query(t, s, "udp", name, dns.TypeTXT)
	if len(r.Answer) != 2 {
		t.Fatalf("TXT query: got %v, want two TXT RRs", r.Answer)
	}
	send(signed("example.test.", keyName, dns.HmacSHA256, false, remove(dns.ClassNONE, txt(name, "wildcard"))))
	if got, want := s.TXT(name), []string{"base"}; !slices.Equal(got, want) {
		t.Fatalf("TXT after deleting one RR: got %q, want %q", got, want)
	}
	rrset := &dns.ANY{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassANY}}
	send(signed("example.test.", keyName, dns.HmacSHA256, false, rrset))
	if got := s.TXT(name); len(got) != 0 {
		t.Fatalf("TXT after deleting the RRset: got %q, want none", got)
	}
	if s.Updates() != 4 || s.Rejected() != 0 {
		t.Errorf("counters: got %d updates, %d rejected; want 4, 0", s.Updates(), s.Rejected())
	}
}

// TestUpdateRefused proves that the happy path depends on TSIG: an update
// that is unsigned, or signed with anything but the configured key, is
// refused and changes nothing.
func TestUpdateRefused(t *testing.T) {
	s, secret := start(t)
	name := "_acme-challenge.example.test."
	tests := []struct {
		name     string
		msg      *dns.Msg
		secrets  map[string]string
		rcode    int
		tsigCode int // TSIG error in the reply; 0 for none
	}{
		{"unsigned", signed("example.test.", "", "", true, txt(name, "v")), nil, dns.RcodeRefused, 0},
		{"wrong secret", signed("example.test.", keyName, dns.HmacSHA256, true, txt(name, "v")),
			map[string]string{keyName: newSecret(t)}, dns.RcodeNotAuth, dns.RcodeBadSig},
		{"wrong key name", signed("example.test.", "other-key.", dns.HmacSHA256, true, txt(name, "v")),
			map[string]string{"other-key.": secret}, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"other algorithm", signed("example.test.", keyName, dns.HmacSHA512, true, txt(name, "v")),
			map[string]string{keyName: secret}, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"wrong zone", signed("example.com.", keyName, dns.HmacSHA256, true, txt("_acme-challenge.example.com.", "v")),
			map[string]string{keyName: secret}, dns.RcodeNotAuth, 0},
		{"name outside zone", signed("example.test.", keyName, dns.HmacSHA256, true, txt("_acme-challenge.example.com.", "v")),
			map[string]string{keyName: secret}, dns.RcodeNotZone, 0},
		{"not txt", signed("example.test.", keyName, dns.HmacSHA256, true,
			&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: []byte{192, 0, 2, 1}}),
			map[string]string{keyName: secret}, dns.RcodeRefused, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := exchange(t, s.Addr(), "udp", tt.msg, tt.secrets) // a refused TSIG reply does not verify
			if r.Rcode != tt.rcode {
				t.Errorf("rcode: got %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
			var tsigCode int
			if rt := r.IsTsig(); rt != nil {
				tsigCode = int(rt.Error)
			}
			if tsigCode != tt.tsigCode {
				t.Errorf("tsig error: got %s, want %s", dns.RcodeToString[tsigCode], dns.RcodeToString[tt.tsigCode])
			}
			if got := s.Rejected(); got != i+1 {
				t.Errorf("rejected: got %d, want %d", got, i+1)
			}
			if s.Updates() != 0 || len(s.TXT(name)) != 0 {
				t.Errorf("refused update changed the zone: %d updates, TXT %q", s.Updates(), s.TXT(name))
			}
		})
	}
}

func TestAlgorithmSpellings(t *testing.T) {
	for _, alg := range []string{"hmac-sha1", "HMAC-SHA224.", "hmac-sha256", "hmac-sha384.", "Hmac-Sha512"} {
		t.Run(alg, func(t *testing.T) {
			secret := newSecret(t)
			s := Start(t, Options{Zone: "example.test", KeyName: "Key", Secret: secret, Algorithm: alg})
			m := signed("example.test.", "key.", dns.CanonicalName(alg), true, txt("a.example.test.", "v"))
			r, err := exchange(t, s.Addr(), "tcp", m, map[string]string{"key.": secret})
			if err != nil || r.Rcode != dns.RcodeSuccess {
				t.Fatalf("update: got rcode %s, err %v; want NOERROR", dns.RcodeToString[r.Rcode], err)
			}
		})
	}
}

func TestConcurrentUpdates(t *testing.T) {
	s, secret := start(t)
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			value := fmt.Sprintf("%043d", i) // as long as an ACME value
			m := signed("example.test.", keyName, dns.HmacSHA256, true, txt("_acme-challenge.example.test.", value))
			c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, TsigSecret: map[string]string{keyName: secret}}
			if r, _, err := c.Exchange(m, s.Addr()); err != nil || r.Rcode != dns.RcodeSuccess {
				t.Errorf("update %d: %v %v", i, err, r)
			}
		})
	}
	wg.Wait()
	if got := len(s.TXT("_acme-challenge.example.test.")); got != n {
		t.Errorf("TXT values: got %d, want %d", got, n)
	}
	// n values do not fit in 512 bytes: UDP is truncated, TCP has them all.
	for _, tt := range []struct {
		network   string
		truncated bool
	}{{"udp", true}, {"tcp", false}} {
		r := query(t, s, tt.network, "_acme-challenge.example.test.", dns.TypeTXT)
		if r.Truncated != tt.truncated || (len(r.Answer) == n) == tt.truncated {
			t.Errorf("%s: got TC %v with %d answers, want TC %v", tt.network, r.Truncated, len(r.Answer), tt.truncated)
		}
	}
}
