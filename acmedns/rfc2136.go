package acmedns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"
)

// RFC2136 publishes the challenge by RFC 2136 dynamic update signed with
// TSIG (RFC 8945): BIND, Knot, PowerDNS. The zero values of the optional
// fields mean the defaults given.
type RFC2136 struct {
	Server    string        // host:port of the primary that accepts updates ("ns1.example.com:53"; port defaults to 53)
	KeyName   string        // TSIG key name
	Secret    string        // base64 TSIG secret; never logged
	Algorithm string        // DefaultAlgorithm ("hmac-sha256") when empty, "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1"; with or without the trailing dot
	Zone      string        // optional; default: discovered by asking Server for the SOA, walking up from the record name
	TTL       time.Duration // of the TXT record; default 60s
	Timeout   time.Duration // per DNS exchange; default 10s
	Log       *slog.Logger  // nil: discard
}

var (
	_ acmez.Solver = (*RFC2136)(nil)
	_ acmez.Waiter = (*RFC2136)(nil)
)

// errUnsigned is an update's NOERROR reply without the TSIG it must carry.
var errUnsigned = errors.New("acmedns: server answered NOERROR without signing the reply")

// tsigFudge is the clock skew the server may allow (RFC 8945 section 10).
const tsigFudge = 300

// Present adds the challenge's TXT RR to the zone. It never replaces other
// TXT RRs at the name, so a wildcard and its base name can be validated at
// the same time (RFC 8555 section 8.4).
func (p *RFC2136) Present(ctx context.Context, ch acme.Challenge) error {
	return p.change(ctx, ch, true)
}

// CleanUp deletes exactly the challenge's TXT RR (RFC 2136 section 2.5.4),
// leaving any other at the name. It runs even if ctx is already cancelled,
// as acmez calls it after failures and cancellations too (certmagic's
// solvers do the same); each exchange stays bounded by Timeout.
func (p *RFC2136) CleanUp(ctx context.Context, ch acme.Challenge) error {
	return p.change(context.WithoutCancel(ctx), ch, false)
}

func (p *RFC2136) change(ctx context.Context, ch acme.Challenge, add bool) error {
	step, msg := "cleanup", "rfc2136 record deleted"
	if add {
		step, msg = "present", "rfc2136 record added"
	}
	s, err := p.settings()
	if err != nil {
		return fmt.Errorf("rfc2136 %s: %w", step, err)
	}
	name := recordName(ch)
	zone, err := s.findZone(ctx, name)
	if err != nil {
		return err
	}
	rr := &dns.TXT{
		Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: s.ttl},
		Txt: []string{ch.DNS01KeyAuthorization()},
	}
	m := new(dns.Msg).SetUpdate(zone)
	if add {
		m.Insert([]dns.RR{rr})
	} else {
		m.Remove([]dns.RR{rr})
	}
	if err := s.update(ctx, m); err != nil {
		return fmt.Errorf("rfc2136 %s %s in zone %s at %s: %w", step, name, zone, s.server, err)
	}
	s.log.Info(msg, "name", name, "zone", zone, "server", s.server, "key", s.keyName)
	return nil
}

// update sends m signed with the TSIG key over TCP, which retransmits what
// is lost, and fails unless the server answers NOERROR with a verified
// signature: a server must sign its reply to a signed request (RFC 8945
// section 5.3), so an unsigned success did not come from it.
func (s settings) update(ctx context.Context, m *dns.Msg) error {
	m.SetTsig(s.keyName, s.alg, tsigFudge, time.Now().Unix())
	r, err := s.exchange(ctx, "tcp", m)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return rcodeError(r)
	}
	if r.IsTsig() == nil {
		return errUnsigned
	}
	return nil
}

// findZone returns the zone to update for name: the configured one, or the
// owner of the SOA the server returns for name or, walking up, one of its
// ancestors. An authoritative server puts its zone's SOA in the answer at
// the apex and in the authority section below it (RFC 2308 section 3).
func (s settings) findZone(ctx context.Context, name string) (string, error) {
	if s.zone != "" {
		if !dns.IsSubDomain(s.zone, name) {
			return "", fmt.Errorf("rfc2136 zone %s does not contain %s", s.zone, name)
		}
		return s.zone, nil
	}
	var last int
	for off := 0; ; {
		candidate := name[off:]
		r, err := s.query(ctx, candidate, dns.TypeSOA)
		if err != nil {
			return "", fmt.Errorf("rfc2136 find zone of %s: soa %s at %s: %w", name, candidate, s.server, err)
		}
		if zone := soaOwner(r, name); zone != "" {
			return zone, nil
		}
		last = r.Rcode
		next, end := dns.NextLabel(name, off)
		if end {
			break
		}
		off = next
	}
	return "", fmt.Errorf("rfc2136 find zone of %s at %s: no soa found (last rcode %s)", name, s.server, dns.RcodeToString[last])
}

// soaOwner returns the owner of an SOA in r's answer or authority section
// that is name or an ancestor of it, or "".
func soaOwner(r *dns.Msg, name string) string {
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return ""
	}
	for _, rr := range append(r.Answer[:len(r.Answer):len(r.Answer)], r.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, name) {
			return dns.CanonicalName(soa.Hdr.Name)
		}
	}
	return ""
}

// recordName is the challenge's TXT owner name, fully qualified and lower
// case. A wildcard's authorization names the base domain (RFC 8555 section
// 7.1.3); a stray "*." label is dropped all the same.
func recordName(ch acme.Challenge) string {
	name := ch.DNS01TXTRecordName()
	name = strings.Replace(name, "_acme-challenge.*.", "_acme-challenge.", 1)
	return dns.CanonicalName(name)
}
