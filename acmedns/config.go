package acmedns

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Defaults for the zero values of RFC2136's fields.
const (
	defaultTTL     = 60 * time.Second
	defaultTimeout = 10 * time.Second
	defaultPort    = "53" // RFC 1035 section 4.2
)

// DefaultAlgorithm is the TSIG algorithm of an RFC2136 whose Algorithm is
// empty: RFC 8945 section 6 makes HMAC-SHA256 mandatory to implement, and
// it is what BIND's tsig-keygen makes by default.
const DefaultAlgorithm = "hmac-sha256"

// algorithms are the TSIG algorithms accepted, in miekg/dns's spelling
// (RFC 8945 section 6).
var algorithms = []string{dns.HmacSHA256, dns.HmacSHA384, dns.HmacSHA512, dns.HmacSHA224, dns.HmacSHA1}

// NormalizeAlgorithm returns the TSIG algorithm name as it goes on the wire
// (lower case, fully qualified: "hmac-sha256.") for a configured spelling
// ("hmac-sha256", "HMAC-SHA256.", ...); "" means DefaultAlgorithm. Any
// other name is an error.
func NormalizeAlgorithm(name string) (string, error) {
	if name == "" {
		name = DefaultAlgorithm
	}
	alg := strings.ToLower(name)
	if !strings.HasSuffix(alg, ".") {
		alg += "."
	}
	for _, known := range algorithms {
		if alg == known {
			return alg, nil
		}
	}
	return "", fmt.Errorf("unknown tsig algorithm %q (want hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224 or hmac-sha1)", name)
}

// normalizeServer returns addr as host:port, adding port 53 when there is
// none: "ns1.example.com" becomes "ns1.example.com:53", "2001:db8::1" and
// "[2001:db8::1]" become "[2001:db8::1]:53".
func normalizeServer(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil { // no port, or a bare IPv6 address
		host, port = addr, defaultPort
		if strings.HasPrefix(addr, "[") && strings.HasSuffix(addr, "]") {
			host = addr[1 : len(addr)-1]
		}
	}
	if _, err := netip.ParseAddr(host); err != nil && !isHostname(host) {
		return "", fmt.Errorf("server %q: %q is neither an IP address nor a host name", addr, host)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("server %q: bad port %q", addr, port)
	}
	return net.JoinHostPort(host, strconv.FormatUint(n, 10)), nil
}

// isHostname reports whether s is a host name: dot-separated labels of
// letters, digits, hyphens and underscores, with an optional final dot.
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// settings are an RFC2136's fields checked, normalised and defaulted.
type settings struct {
	server  string // host:port
	keyName string // canonical: lower case, fully qualified
	secret  string // base64; never logged
	alg     string // e.g. dns.HmacSHA256
	zone    string // canonical, or "" to discover
	ttl     uint32 // seconds
	timeout time.Duration
	log     *slog.Logger
}

// Check validates the configuration without any network traffic and
// returns every problem at once.
func (p *RFC2136) Check() error {
	_, err := p.settings()
	return err
}

func (p *RFC2136) settings() (settings, error) {
	var errs []error
	s := settings{secret: p.Secret, log: p.Log}
	var err error
	if s.server, err = normalizeServer(p.Server); err != nil {
		errs = append(errs, fmt.Errorf("rfc2136 %w", err))
	}
	if s.alg, err = NormalizeAlgorithm(p.Algorithm); err != nil {
		errs = append(errs, fmt.Errorf("rfc2136 %w", err))
	}
	if s.keyName, err = domain(p.KeyName); err != nil {
		errs = append(errs, fmt.Errorf("rfc2136 key name: %w", err))
	}
	if p.Zone != "" {
		if s.zone, err = domain(p.Zone); err != nil {
			errs = append(errs, fmt.Errorf("rfc2136 zone: %w", err))
		}
	}
	if err := checkSecret(p.Secret); err != nil {
		errs = append(errs, fmt.Errorf("rfc2136 secret: %w", err))
	}
	if p.TTL < 0 || p.TTL > 0 && p.TTL < time.Second {
		errs = append(errs, fmt.Errorf("rfc2136 ttl %s: want 0 (default %s) or at least 1s", p.TTL, defaultTTL))
	}
	if p.Timeout < 0 {
		errs = append(errs, fmt.Errorf("rfc2136 timeout %s: want 0 (default %s) or more", p.Timeout, defaultTimeout))
	}
	s.ttl = uint32(cmp.Or(p.TTL, defaultTTL) / time.Second)
	s.timeout = cmp.Or(p.Timeout, defaultTimeout)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, errors.Join(errs...)
}

// domain returns name in canonical form, or an error if it is not a domain name.
func domain(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty")
	}
	if _, ok := dns.IsDomainName(name); !ok || !isHostname(name) {
		return "", fmt.Errorf("%q is not a domain name", name)
	}
	return dns.CanonicalName(name), nil
}

// checkSecret checks that secret is standard base64 (as in BIND's key
// files and nsupdate -y) without saying anything about its value.
func checkSecret(secret string) error {
	if secret == "" {
		return errors.New("empty")
	}
	b, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return errors.New("not valid base64")
	}
	if len(b) == 0 {
		return errors.New("empty")
	}
	return nil
}
