package acmedns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/miekg/dns"
)

// RcodeError is a DNS server's refusal: the reply's rcode and, when the
// reply carries a TSIG RR, its error (RFC 8945 section 5.2: BADSIG, BADKEY,
// BADTIME), which says which part of the signature the server rejected.
type RcodeError struct {
	Rcode     int // e.g. dns.RcodeNotAuth
	TSIGError int // e.g. dns.RcodeBadSig; 0 for none
}

func (e *RcodeError) Error() string {
	s := "server answered " + rcodeName(e.Rcode)
	if e.TSIGError != 0 {
		s += " (tsig " + rcodeName(e.TSIGError) + ")"
	}
	return s
}

func rcodeName(code int) string {
	if name, ok := dns.RcodeToString[code]; ok {
		return name
	}
	return fmt.Sprintf("rcode %d", code)
}

func rcodeError(r *dns.Msg) error {
	e := &RcodeError{Rcode: r.Rcode}
	if t := r.IsTsig(); t != nil {
		e.TSIGError = int(t.Error)
	}
	return e
}

// query asks the server for name and qtype without recursion, over UDP and
// again over TCP if the answer was truncated (RFC 7766 section 5).
func (s settings) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg).SetQuestion(name, qtype)
	m.RecursionDesired = false
	r, err := s.exchange(ctx, "udp", m)
	if err == nil && r.Truncated {
		r, err = s.exchange(ctx, "tcp", m)
	}
	return r, err
}

// exchange sends m to the server over network and reads the reply, within
// s.timeout and ctx. A reply whose rcode is not NOERROR is returned even if
// its TSIG does not verify: a server refusing a signature does not sign the
// refusal (RFC 8945 section 5.2), and the rcode is the useful part.
func (s settings) exchange(ctx context.Context, network string, m *dns.Msg) (*dns.Msg, error) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c := &dns.Client{Net: network, Timeout: s.timeout}
	if m.IsTsig() != nil {
		c.TsigSecret = map[string]string{s.keyName: s.secret}
	}
	co, err := c.DialContext(ctx, s.server)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", network, err)
	}
	defer co.Close()
	// ExchangeWithConnContext heeds ctx's deadline but not its cancellation.
	stop := context.AfterFunc(ctx, func() { co.SetDeadline(time.Now()) })
	defer stop()
	r, _, err := c.ExchangeWithConnContext(ctx, m, co)
	switch {
	case err == nil:
		return r, nil
	case parent.Err() != nil:
		return nil, fmt.Errorf("%s exchange: %w", network, context.Cause(parent))
	case ctx.Err() != nil || isTimeout(err):
		return nil, fmt.Errorf("%s exchange: no answer within %s: %w", network, s.timeout, err)
	case r != nil && r.Rcode != dns.RcodeSuccess && r.Id == m.Id:
		return r, nil
	}
	return nil, fmt.Errorf("%s exchange: %w", network, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
