package acmedns

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mholt/acmez/v3/acme"
	"github.com/miekg/dns"
)

// pollInterval is the pause between Wait's queries. A primary usually
// serves an update at once; the CA queries the zone's public servers itself
// (RFC 8555 section 8.4), which this package does not wait for.
const pollInterval = time.Second

// errNotVisible is a poll's outcome when the server does not yet serve the value.
var errNotVisible = errors.New("acmedns: txt value not visible yet")

// Wait polls the server, without recursion, until it answers the
// challenge's TXT value, or ctx ends.
func (p *RFC2136) Wait(ctx context.Context, ch acme.Challenge) error {
	s, err := p.settings()
	if err != nil {
		return fmt.Errorf("rfc2136 wait: %w", err)
	}
	name, value := recordName(ch), ch.DNS01KeyAuthorization()
	start := time.Now()
	for polls := 1; ; polls++ {
		err := s.visible(ctx, name, value)
		if err == nil {
			s.log.Info("rfc2136 record visible", "name", name, "server", s.server,
				"polls", polls, "duration", time.Since(start))
			return nil
		}
		s.log.Debug("rfc2136 record not visible", "name", name, "server", s.server, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("rfc2136 wait for %s at %s: %w (last poll: %w)", name, s.server, context.Cause(ctx), err)
		case <-time.After(pollInterval):
		}
	}
}

// visible returns nil when the server answers value among name's TXT RRs.
func (s settings) visible(ctx context.Context, name, value string) error {
	r, err := s.query(ctx, name, dns.TypeTXT)
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return rcodeError(r)
	}
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == value {
			return nil
		}
	}
	return errNotVisible
}
