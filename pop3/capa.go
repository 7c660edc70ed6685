package pop3

import (
	"slices"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// implementation names mailfront without a version (RFC 2449 section 6.9).
const implementation = "IMPLEMENTATION mailfront"

// Capabilities mailfront offers itself: it emits the response codes of
// RFC 2449 section 8 and RFC 3206 in its own pre-login replies.
var (
	capsPlain  = []string{"STLS", "RESP-CODES", "AUTH-RESP-CODE", implementation}
	capsSecure = []string{"USER", "SASL PLAIN LOGIN", "RESP-CODES", "AUTH-RESP-CODE"}
)

// cmdCapa answers CAPA (RFC 2449 section 5) from the TLS state: before TLS
// STLS and no way to log in; under TLS the login methods and the backend's
// post-login capabilities, and no STLS (ARCHITECTURE.md invariant 7). The
// backend's are the last known, of any age: a stale list is being
// refreshed, and until the backend has been reached once clients see
// mailfront's own list only.
func cmdCapa(s *session, _ *command) error {
	var b strings.Builder
	b.WriteString("+OK Capability list follows\r\n")
	for _, c := range capabilities(s.conn.IsTLS(), s.h.Caps.Last().relay) {
		b.WriteString(c + "\r\n")
	}
	b.WriteString(".\r\n")
	return s.conn.WriteString(b.String())
}

// capabilities is the CAPA list for a TLS state, given the backend's
// capabilities that matter after login.
func capabilities(tls bool, backend []string) []string {
	if !tls {
		return capsPlain
	}
	out := append([]string(nil), capsSecure...)
	out = append(out, backend...)
	return append(out, implementation)
}

// backendCaps is what mailfront needs from a backend's CAPA.
type backendCaps struct {
	advertised bool     // the backend answered CAPA with a list
	user       bool     // USER/PASS accepted (RFC 2449 section 6.8)
	saslPlain  bool     // AUTH PLAIN accepted (RFC 5034 section 5)
	xclient    bool     // XCLIENT listed: the backend may be told the client's address
	relay      []string // post-login capabilities repeated to clients
}

// plainOnly reports whether logins must use AUTH PLAIN: the backend offers
// SASL PLAIN and not USER.
func (c backendCaps) plainOnly() bool { return !c.user && c.saslPlain }

// capsRFC1939 is assumed of a backend that answers CAPA with -ERR
// (popa3d, solid-pop3d): USER and PASS, and nothing more, though most
// also have TOP and UIDL; the operator may say so (edited).
var capsRFC1939 = backendCaps{user: true}

// edited is c with the operator's additions and removals (a listener's
// capabilities key, which config validates): USER and "SASL PLAIN" say
// how mailfront may log in, XCLIENT whether it may tell the client's
// address, the rest (TOP, UIDL, PIPELINING, "EXPIRE n", "LOGIN-DELAY n")
// what clients are offered after login.
func (c backendCaps) edited(e proxy.CapabilityEdit) backendCaps {
	if len(e.Add) == 0 && len(e.Remove) == 0 {
		return c
	}
	c.relay = slices.Clone(c.relay)
	keyword := func(s string) string {
		f := fields(s)
		if len(f) == 0 {
			return ""
		}
		return strings.ToUpper(f[0])
	}
	for _, r := range e.Remove {
		switch kw := keyword(r); kw {
		case "USER":
			c.user = false
		case "SASL":
			c.saslPlain = false
		case "XCLIENT":
			c.xclient = false
		default:
			c.relay = slices.DeleteFunc(c.relay, func(x string) bool { return keyword(x) == kw })
		}
	}
	for _, a := range e.Add {
		f := fields(a)
		switch kw := keyword(a); {
		case kw == "USER":
			c.user = true
		case kw == "SASL":
			c.saslPlain = true
		case relayed[kw] && !slices.ContainsFunc(c.relay, func(x string) bool { return keyword(x) == kw }):
			c.relay = append(c.relay, strings.Join(append([]string{kw}, f[1:]...), " "))
		}
	}
	return c
}

// offer is what clients are offered under TLS, in one line, for the log.
func (c backendCaps) offer() string {
	return strings.Join(capabilities(true, c.relay), " ")
}

// relayed are the backend capabilities that describe the TRANSACTION state
// and so are repeated to clients under TLS. UTF8 and LANG are not: their
// commands are issued before login, where mailfront answers.
var relayed = map[string]bool{"TOP": true, "UIDL": true, "PIPELINING": true, "EXPIRE": true, "LOGIN-DELAY": true}

// Editable reports whether a listener's capabilities key may name the
// capability keyword (config.POP3Capabilities is the same list): those
// repeated to clients, USER and SASL (how mailfront logs in) and XCLIENT.
func Editable(keyword string) bool {
	kw := strings.ToUpper(keyword)
	return relayed[kw] || kw == "USER" || kw == "SASL" || kw == "XCLIENT"
}

// parseBackendCaps reads the lines of a backend's CAPA response.
func parseBackendCaps(lines []string) backendCaps {
	var c backendCaps
	for _, line := range lines {
		f := fields(line)
		if len(f) == 0 {
			continue
		}
		kw := strings.ToUpper(f[0])
		switch {
		case kw == "USER":
			c.user = true
		case kw == "XCLIENT":
			c.xclient = true
		case kw == "SASL":
			for _, m := range f[1:] {
				c.saslPlain = c.saslPlain || strings.EqualFold(m, "PLAIN")
			}
		case relayed[kw] && safeArgs(f[1:]):
			c.relay = append(c.relay, strings.Join(append([]string{kw}, f[1:]...), " "))
		}
	}
	return c
}

// safeArgs reports whether capability arguments are short tokens of
// letters, digits, '-' and '/', safe to repeat to a client.
func safeArgs(args []string) bool {
	if len(args) > 4 {
		return false
	}
	for _, a := range args {
		if len(a) > 40 {
			return false
		}
		for i := 0; i < len(a); i++ {
			if !isKeywordByte(a[i]) && a[i] != '/' {
				return false
			}
		}
	}
	return true
}
