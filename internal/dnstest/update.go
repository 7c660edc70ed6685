package dnstest

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// updateOp is one checked entry of an UPDATE's update section.
type updateOp struct {
	class uint16 // INET: add; NONE: delete this RR; ANY: delete the RRset
	name  string // canonical
	txt   []string
	ttl   uint32
}

// update applies a dynamic update (RFC 2136 section 3) atomically. By the
// time it runs, a TSIG RR on req has verified; an unsigned update is REFUSED.
func (s *Server) update(from net.Addr, req *dns.Msg) *dns.Msg {
	resp := new(dns.Msg).SetReply(req)
	ops, rcode, why := s.check(req)
	if rcode != dns.RcodeSuccess {
		resp.Rcode = rcode
		s.reject(from, why)
		return resp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range ops {
		s.apply(op)
		s.t.Logf("dnstest: update from %s: %s", from, op)
	}
	s.serial++
	s.updates++
	return resp
}

// check is the prescan of RFC 2136 section 3: policy (a TSIG signature),
// zone section, prerequisites (not supported), then each update RR.
func (s *Server) check(req *dns.Msg) ([]updateOp, int, string) {
	if req.IsTsig() == nil {
		return nil, dns.RcodeRefused, "not signed with TSIG"
	}
	z := req.Question[0]
	if z.Qtype != dns.TypeSOA || canonical(z.Name) != s.zone {
		return nil, dns.RcodeNotAuth, fmt.Sprintf("zone %s %s is not served here", z.Name, dns.TypeToString[z.Qtype])
	}
	if len(req.Answer) > 0 {
		return nil, dns.RcodeNotImplemented, "prerequisites are not supported"
	}
	ops := make([]updateOp, 0, len(req.Ns))
	for _, rr := range req.Ns {
		op, rcode, why := s.checkRR(rr)
		if rcode != dns.RcodeSuccess {
			return nil, rcode, why
		}
		ops = append(ops, op)
	}
	return ops, dns.RcodeSuccess, ""
}

// checkRR checks one update RR (RFC 2136 section 3.4.1.3). Only TXT RRs are
// stored; deleting all RRsets at a name (type ANY) deletes its TXT RRset.
func (s *Server) checkRR(rr dns.RR) (updateOp, int, string) {
	h := rr.Header()
	op := updateOp{class: h.Class, name: canonical(h.Name), ttl: h.Ttl}
	if !dns.IsSubDomain(s.zone, op.name) {
		return op, dns.RcodeNotZone, fmt.Sprintf("%s is outside zone %s", h.Name, s.zone)
	}
	txt, isTXT := rr.(*dns.TXT)
	switch {
	case h.Class == dns.ClassINET && isTXT:
		op.txt = txt.Txt
	case h.Class == dns.ClassNONE && isTXT && h.Ttl == 0:
		op.txt = txt.Txt
	case h.Class == dns.ClassANY && h.Ttl == 0 && h.Rdlength == 0 &&
		(h.Rrtype == dns.TypeTXT || h.Rrtype == dns.TypeANY):
	case h.Class == dns.ClassINET:
		return op, dns.RcodeRefused, fmt.Sprintf("only TXT records can be added, not %s", dns.TypeToString[h.Rrtype])
	default:
		return op, dns.RcodeFormatError, fmt.Sprintf("malformed update RR %s", rr)
	}
	return op, dns.RcodeSuccess, ""
}

// apply performs op; s.mu is held. Adding an RR that exists is a no-op
// (RFC 2136 section 3.4.2.2), and so is deleting one that does not.
func (s *Server) apply(op updateOp) {
	rrs := s.txt[op.name]
	i := slices.IndexFunc(rrs, func(rr txtRR) bool { return slices.Equal(rr.txt, op.txt) })
	switch op.class {
	case dns.ClassINET:
		if i < 0 {
			rrs = append(rrs, txtRR{txt: slices.Clone(op.txt), ttl: op.ttl})
		}
	case dns.ClassNONE:
		if i >= 0 {
			rrs = slices.Delete(rrs, i, i+1)
		}
	case dns.ClassANY:
		rrs = nil
	}
	if len(rrs) == 0 {
		delete(s.txt, op.name)
		return
	}
	s.txt[op.name] = rrs
}

func (op updateOp) String() string {
	value := fmt.Sprintf("%q", strings.Join(op.txt, ""))
	switch op.class {
	case dns.ClassINET:
		return fmt.Sprintf("add %s %d TXT %s", op.name, op.ttl, value)
	case dns.ClassNONE:
		return fmt.Sprintf("delete %s TXT %s", op.name, value)
	}
	return fmt.Sprintf("delete %s TXT (all)", op.name)
}
