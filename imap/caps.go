package imap

import (
	"slices"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// OwnedCapabilities are capabilities mailfront implements itself before login,
// or that must not reach the client because they describe the backend's own
// pre-login dialogue (RFC 2221 LOGIN-REFERRALS) or would let a client leave
// the logged-in state behind mailfront's back (RFC 8437 UNAUTHENTICATE).
// Every AUTH= is mailfront's too. A listener's capabilities key cannot
// name them (config.IMAPOwnedCapabilities is the same list).
var OwnedCapabilities = []string{
	"IMAP4REV1", "IMAP4REV2", "STARTTLS", "LOGINDISABLED", "SASL-IR", "ID",
	"LITERAL+", "LITERAL-", "LOGIN-REFERRALS", "UNAUTHENTICATE",
}

// advertised is the capability list mailfront gives a client before login
// (greeting, CAPABILITY). backend is the backend's pre-login list, nil when
// unknown: mailfront then offers only what it implements itself.
// Capabilities follow the TLS state (ARCHITECTURE.md invariant 7): before TLS,
// STARTTLS and LOGINDISABLED and no AUTH= (RFC 9051 section 6.2.1, RFC
// 2595 section 3.2); under TLS, the mechanisms mailfront can proxy.
func advertised(backend []string, tls bool) []string {
	caps := []string{"IMAP4rev1"}
	if hasCap(backend, "IMAP4rev2") {
		caps = append(caps, "IMAP4rev2")
	}
	if tls {
		caps = append(caps, "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR")
	} else {
		caps = append(caps, "STARTTLS", "LOGINDISABLED")
	}
	caps = append(caps, "ID")
	// mailfront takes non-synchronizing literals up to 4096 bytes before
	// login (RFC 7888 LITERAL-); advertising them changes what the client
	// sends after login too, so only when the backend has them as well.
	if hasCap(backend, "LITERAL+") || hasCap(backend, "LITERAL-") {
		caps = append(caps, "LITERAL-")
	}
	for _, c := range backend {
		if !ownedCap(c) {
			caps = append(caps, c)
		}
	}
	return caps
}

// afterLogin is the backend's post-login capability list as the client sees
// it in the LOGIN reply: what concerns logging in is dropped.
func afterLogin(backend []string) []string {
	var caps []string
	for _, c := range backend {
		switch u := strings.ToUpper(c); {
		case u == "STARTTLS", u == "LOGINDISABLED", u == "SASL-IR", u == "LOGIN-REFERRALS",
			u == "UNAUTHENTICATE", strings.HasPrefix(u, "AUTH="):
		default:
			caps = append(caps, c)
		}
	}
	return caps
}

// edit is caps with the operator's edit applied: names to remove go
// (any case), names to add are appended when missing. config checks that
// neither names a capability mailfront owns (ownedCap).
func edit(caps []string, e proxy.CapabilityEdit) []string {
	if len(e.Add) == 0 && len(e.Remove) == 0 {
		return caps
	}
	out := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return hasCap(e.Remove, c) })
	for _, a := range e.Add {
		if !hasCap(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func ownedCap(c string) bool {
	u := strings.ToUpper(c)
	return strings.HasPrefix(u, "AUTH=") || slices.Contains(OwnedCapabilities, u)
}

func hasCap(caps []string, c string) bool {
	return slices.ContainsFunc(caps, func(x string) bool { return strings.EqualFold(x, c) })
}

// parseCaps splits a capability list ("IMAP4rev1 IDLE ...") into atoms,
// dropping anything that is not a valid atom.
func parseCaps(s string) []string {
	var caps []string
	for _, f := range strings.Fields(s) {
		if validAtom(f) {
			caps = append(caps, f)
		}
	}
	return caps
}

func validAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}
