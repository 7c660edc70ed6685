package audit

import (
	"errors"
	"net"
	"regexp"
)

// tlsWordsRE finds a refusal that gives TLS as its reason.
var tlsWordsRE = regexp.MustCompile(`(?i)\b(tls|ssl|starttls|stls|secure|encrypt\w*|encryption|plain ?text|clear ?text|privacy)\b`)

// mentionsTLS reports whether a server's refusal says TLS is required.
func mentionsTLS(s string) bool { return tlsWordsRE.MatchString(s) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// judgeSoftware gives the greeting-software verdict on a greeting's text
// (or an IMPLEMENTATION line): a version helps an attacker pick an
// exploit, a bare product name much less.
func (t *target) judgeSoftware(texts ...string) {
	var product, version string
	for _, s := range texts {
		p, v := software(s)
		if product == "" {
			product = p
		}
		if version == "" {
			version = v
		}
	}
	switch {
	case version != "" && product != "":
		t.add(IDSoftware, Low, "the server names its software and version: "+product+" "+version,
			"leave the version out of the greeting (Dovecot: login_greeting; Postfix: smtpd_banner), or put mailfront in front (its greeting is its own)")
	case version != "":
		t.add(IDSoftware, Low, "the greeting carries a version number: "+version, "leave the version out of the greeting, or put mailfront in front (its greeting is its own)")
	case product != "":
		t.add(IDSoftware, Info, "the server names its software, without a version: "+product, "")
	default:
		t.add(IDSoftware, OK, "no software or version in the greeting", "")
	}
}

// injectFix is the remedy for STARTTLS command injection.
const injectFix = "update the server (the fix discards what was sent before the handshake), or put mailfront in front (it does)"

// injection is the STARTTLS command injection test (CVE-2011-0411, the
// EAST paper's test): the upgrade command and one more in one TCP
// segment, as a man in the middle would append it. A server that answers
// the second command inside TLS let plaintext into the TLS session.
//
// greet brings the connection to where the upgrade is sent; goAhead
// reads the upgrade's answer; inside runs a command under TLS and reports
// whether the injected command's answer came first.
func (t *target) injection(payload string, greet func(*conn) error, goAhead, inside func(*conn) (bool, error)) {
	c, err := t.dial()
	if err != nil {
		t.add(IDInjection, Warn, "not tried: "+describe(err, t.step), "")
		return
	}
	defer c.close()
	if err := greet(c); err != nil {
		t.add(IDInjection, Warn, "not tried: "+describe(err, t.step), "")
		return
	}
	if err := c.write(payload); err != nil {
		t.add(IDInjection, Warn, "not tried: "+describe(err, t.step), "")
		return
	}
	ok, err := goAhead(c)
	switch {
	case err != nil && isTimeout(err):
		t.add(IDInjection, Warn, "no answer to the upgrade with a command behind it: "+describe(err, t.step), "")
		return
	case err != nil:
		t.add(IDInjection, OK, "the server ended the connection when a command followed the upgrade ("+describe(err, t.step)+")", "")
		return
	case !ok:
		t.add(IDInjection, OK, "the server refused the upgrade with a command behind it", "")
		return
	}
	pending := c.r.Buffered() > 0
	if _, err := c.startTLS(t.tlsConfig()); err != nil {
		t.add(IDInjection, OK, "the server did not start TLS with a command pending ("+describe(err, t.step)+")", "")
		return
	}
	injected, err := inside(c)
	switch {
	case injected:
		t.add(IDInjection, Critical, "a command sent before TLS, in the same segment as the upgrade, was answered inside TLS: an attacker on the path can inject commands into the TLS session (CVE-2011-0411)", injectFix)
	case err != nil && isTimeout(err):
		t.add(IDInjection, Warn, "no answer under TLS after the injected command: "+describe(err, t.step), "")
	case pending:
		t.add(IDInjection, OK, "the command sent with the upgrade was answered before TLS, not inside it", "")
	default:
		t.add(IDInjection, OK, "a command sent with the upgrade in one segment was not run inside TLS", "")
	}
}
