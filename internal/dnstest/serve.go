package dnstest

import (
	"errors"
	"net"
	"time"

	"github.com/miekg/dns"
)

const (
	ttl   = 60  // seconds, for the SOA, NS and A records
	fudge = 300 // seconds of clock skew allowed in TSIG (RFC 8945 section 10)
)

// serveDNS answers one query or update. A request carrying a TSIG RR that
// does not verify with the configured key gets NOTAUTH with the TSIG error
// (RFC 8945 section 5.2); a verified request gets a signed reply.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	if t := req.IsTsig(); t != nil {
		if code := s.tsigError(w, t); code != dns.RcodeSuccess {
			s.refuseTSIG(w, req, t, code)
			return
		}
	}
	var resp *dns.Msg
	if req.Opcode == dns.OpcodeUpdate {
		resp = s.update(w.RemoteAddr(), req)
	} else {
		resp = s.query(req)
	}
	if _, udp := w.LocalAddr().(*net.UDPAddr); udp {
		resp.Truncate(udpSize(req)) // sets TC, so the client retries over TCP (RFC 1035 section 4.2.1)
	}
	if t := req.IsTsig(); t != nil {
		resp.SetTsig(t.Hdr.Name, t.Algorithm, fudge, time.Now().Unix())
	}
	if err := w.WriteMsg(resp); err != nil {
		s.t.Logf("dnstest: write reply to %s: %v", w.RemoteAddr(), err)
	}
}

// udpSize is the largest UDP reply the client takes: its EDNS0 buffer size
// (RFC 6891 section 6.2.3), or 512 bytes (RFC 1035 section 4.2.1).
func udpSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// tsigError is the TSIG error code for a signed request (RFC 8945 section
// 5.2): BADKEY for an unknown key or another algorithm than the key's,
// BADTIME outside the fudge, BADSIG for a MAC that does not verify.
func (s *Server) tsigError(w dns.ResponseWriter, t *dns.TSIG) int {
	err := w.TsigStatus()
	switch {
	case s.keyName == "" || canonical(t.Hdr.Name) != s.keyName || errors.Is(err, dns.ErrSecret):
		return dns.RcodeBadKey
	case canonical(t.Algorithm) != s.alg || errors.Is(err, dns.ErrKeyAlg):
		return dns.RcodeBadKey
	case errors.Is(err, dns.ErrTime):
		return dns.RcodeBadTime
	case err != nil:
		return dns.RcodeBadSig
	}
	return dns.RcodeSuccess
}

// refuseTSIG answers NOTAUTH with an unsigned TSIG RR carrying the error, as
// RFC 8945 section 5.2 says for BADKEY and BADSIG. It is packed by hand
// because WriteMsg would try to sign it.
func (s *Server) refuseTSIG(w dns.ResponseWriter, req *dns.Msg, t *dns.TSIG, code int) {
	resp := new(dns.Msg).SetReply(req)
	resp.Rcode = dns.RcodeNotAuth
	resp.Extra = []dns.RR{&dns.TSIG{
		Hdr:        dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm:  t.Algorithm,
		TimeSigned: uint64(time.Now().Unix()),
		Fudge:      fudge,
		OrigId:     req.Id,
		Error:      uint16(code),
	}}
	if req.Opcode == dns.OpcodeUpdate {
		s.reject(w.RemoteAddr(), "tsig "+dns.RcodeToString[code]+" for key "+t.Hdr.Name)
	}
	buf, err := resp.Pack()
	if err == nil {
		_, err = w.Write(buf)
	}
	if err != nil {
		s.t.Logf("dnstest: write tsig error to %s: %v", w.RemoteAddr(), err)
	}
}

// query answers from the zone: REFUSED outside it, never NXDOMAIN inside it
// (every name has an A record), and NODATA with the SOA in the authority
// section when the name has no RRs of the type (RFC 2308 section 2.2).
func (s *Server) query(req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg).SetReply(req)
	q := req.Question[0]
	name := canonical(q.Name)
	if !dns.IsSubDomain(s.zone, name) || (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) {
		resp.Rcode = dns.RcodeRefused
		return resp
	}
	resp.Authoritative = true
	resp.Answer = s.answer(q.Name, name, q.Qtype)
	if len(resp.Answer) == 0 {
		resp.Ns = []dns.RR{s.soa(s.zone)}
	}
	return resp
}

// answer is the RRs of type qtype at name, each owned by owner (the name as
// asked, keeping its case).
func (s *Server) answer(owner, name string, qtype uint16) []dns.RR {
	apex := name == s.zone
	want := func(t uint16) bool { return qtype == t || qtype == dns.TypeANY }
	var rrs []dns.RR
	if apex && want(dns.TypeSOA) {
		rrs = append(rrs, s.soa(owner))
	}
	if apex && want(dns.TypeNS) {
		rrs = append(rrs, &dns.NS{Hdr: header(owner, dns.TypeNS, ttl), Ns: "ns1." + s.zone})
	}
	if want(dns.TypeA) {
		rrs = append(rrs, &dns.A{Hdr: header(owner, dns.TypeA, ttl), A: s.a})
	}
	if want(dns.TypeTXT) {
		s.mu.Lock()
		for _, rr := range s.txt[name] {
			rrs = append(rrs, &dns.TXT{Hdr: header(owner, dns.TypeTXT, rr.ttl), Txt: rr.txt})
		}
		s.mu.Unlock()
	}
	return rrs
}

// soa is the zone's SOA record, owned by owner; the serial counts updates.
func (s *Server) soa(owner string) dns.RR {
	s.mu.Lock()
	serial := s.serial
	s.mu.Unlock()
	return &dns.SOA{
		Hdr:     header(owner, dns.TypeSOA, ttl),
		Ns:      "ns1." + s.zone,
		Mbox:    "hostmaster." + s.zone,
		Serial:  serial,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}
}

func header(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// reject counts a refused update and logs why.
func (s *Server) reject(from net.Addr, why string) {
	s.mu.Lock()
	s.rejected++
	s.mu.Unlock()
	s.t.Logf("dnstest: update from %s refused: %s", from, why)
}
