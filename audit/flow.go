package audit

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// dialogue is what differs between IMAP, POP3 and SMTP; the flows below
// are the same for all three.
type dialogue interface {
	// plain runs the checks before TLS on a STARTTLS port (greeting,
	// capabilities, the throwaway login) and reports whether the server
	// greeted and whether it advertises STARTTLS.
	plain(t *target) (greeted, advertised bool)
	// preamble brings a fresh connection to a STARTTLS port to where the
	// TLS handshake starts: the greeting, the command and its go-ahead.
	preamble(t *target, c *conn) error
	// underTLS runs the checks under TLS on the main connection (on an
	// implicit TLS port, the greeting first, and noGreetingUnderTLS when
	// there is none). It reports whether the server spoke the protocol.
	underTLS(t *target, c *conn) bool
	// inject runs the STARTTLS injection test (CVE-2011-0411).
	inject(t *target)
	// login tries user and password on a connection under TLS, for
	// --probe-guard, and returns the server's answer.
	login(t *target, c *conn, user, pass string) (string, error)
	// alpn is the protocol's ALPN id, or "" where there is none to check.
	alpn() string
}

func (t *target) dialogue() dialogue {
	switch t.kind.protocol() {
	case "imap":
		return imapDialogue{}
	case "pop3":
		return pop3Dialogue{}
	}
	return smtpDialogue{}
}

// refusedError is a command the server refused.
type refusedError struct{ cmd, answer string }

func (e *refusedError) Error() string { return e.cmd + " refused: " + quote(e.answer) }

// openTLS connects and runs the handshake: at once on an implicit TLS
// port, after the preamble on a STARTTLS port. handshake says whether the
// error, if any, came from the handshake rather than from before it.
func (t *target) openTLS(d dialogue, cfg *tls.Config) (c *conn, state tls.ConnectionState, handshake bool, err error) {
	c, err = t.dial()
	if err != nil {
		return nil, state, false, err
	}
	if !t.kind.implicitTLS() {
		if err := d.preamble(t, c); err != nil {
			c.close()
			return nil, state, false, err
		}
	}
	state, err = c.startTLS(cfg)
	if err != nil {
		c.close()
		return nil, state, true, err
	}
	return c, state, true, nil
}

// mainResult is the main TLS connection's outcome.
type mainResult struct {
	state     tls.ConnectionState
	err       error
	handshake bool // err came from the handshake
	spoke     bool // the protocol's dialogue worked under TLS
}

// mainTLS opens the main TLS connection with the default probe config
// and runs the checks under TLS on it.
func (t *target) mainTLS(d dialogue) mainResult {
	c, state, hs, err := t.openTLS(d, t.tlsConfig())
	m := mainResult{state: state, err: err, handshake: hs}
	if err == nil {
		m.spoke = d.underTLS(t, c)
		c.close()
		t.mu.Lock()
		t.tlsOK = m.spoke
		t.mu.Unlock()
	}
	return m
}

// runSTARTTLS checks a STARTTLS port: the plaintext dialogue and the
// upgrade at once, then TLS.
func (t *target) runSTARTTLS() {
	d := t.dialogue()
	var greeted, advertised bool
	var m mainResult
	t.parallel(
		func() { greeted, advertised = d.plain(t) },
		func() { m = t.mainTLS(d) },
	)
	if !greeted {
		return
	}
	t.judgeStartTLS(advertised, m)
	if m.err == nil {
		t.tlsChecks(d, m.state)
	}
}

// judgeStartTLS gives the starttls verdict.
func (t *target) judgeStartTLS(advertised bool, m mainResult) {
	cmd := map[string]string{"imap": "STARTTLS", "pop3": "STLS", "smtp": "STARTTLS"}[t.kind.protocol()]
	var refused *refusedError
	switch {
	case m.err == nil && advertised:
		t.add(IDStartTLS, OK, fmt.Sprintf("%s works: %s", cmd, tlsSummary(m.state)), "")
	case m.err == nil:
		t.add(IDStartTLS, High, fmt.Sprintf("%s works (%s) but is not advertised: clients that look for it before sending a password send it in cleartext", cmd, tlsSummary(m.state)),
			"advertise "+cmd+" in the capabilities, or put mailfront in front")
	case m.handshake:
		t.add(IDStartTLS, High, fmt.Sprintf("%s accepted, then the TLS handshake failed: %s", cmd, describe(m.err, t.step)),
			"fix the server's TLS configuration (certificate, key, protocols), or put mailfront in front")
	case !errors.As(m.err, &refused):
		t.add(IDStartTLS, Warn, fmt.Sprintf("%s could not be tried: %s", cmd, describe(m.err, t.step)), "")
	case advertised:
		t.add(IDStartTLS, High, fmt.Sprintf("%s is advertised but %s", cmd, describe(m.err, t.step)),
			"give the server a certificate and key so that "+cmd+" works, or put mailfront in front")
	default:
		t.noStartTLS(cmd, m.err)
	}
}

// noStartTLS is a plaintext port with no way to TLS: the exposure
// Shadowserver reports for IMAP and POP3.
func (t *target) noStartTLS(cmd string, err error) {
	f := Finding{ID: IDStartTLS, Severity: Critical,
		Seen: fmt.Sprintf("no %s (%s): every login on this port crosses the network in cleartext", cmd, describe(err, t.step)),
		Fix:  "turn " + cmd + " on with a certificate and refuse logins before it, or close this port and put mailfront in front (implicit TLS and " + cmd + ", no login before TLS)",
	}
	switch t.kind {
	case IMAP, POP3:
		f.Shadowserver = true
		f.Seen += "; this is what Shadowserver reports as an exposed " + map[Kind]string{IMAP: "IMAP", POP3: "POP3"}[t.kind] + " server"
	case SMTP:
		f.Severity = High
		f.Seen = fmt.Sprintf("no STARTTLS (%s): mail to and from this server travels in cleartext", describe(err, t.step))
		f.Fix = "turn STARTTLS on with a certificate"
	}
	t.addFinding(f)
}

// runImplicit checks an implicit TLS port; one that answers in plaintext
// is checked as the plaintext port it is.
func (t *target) runImplicit() {
	d := t.dialogue()
	m := t.mainTLS(d)
	var rh tls.RecordHeaderError
	switch {
	case errors.As(m.err, &rh) && protocolOf(string(rh.RecordHeader[:])) != "":
		t.add(IDImplicitTLS, Critical, "the TLS port answers in plaintext: "+describe(m.err, t.step),
			"serve TLS on this port (RFC 8314), or put mailfront in front")
		t.how = "its plaintext greeting, on a port for " + string(t.kind)
		t.kind = plain(protocolOf(string(rh.RecordHeader[:])), t.port)
		t.runSTARTTLS()
		return
	case m.err != nil && !m.handshake, errors.Is(m.err, syscall.ECONNREFUSED):
		t.unreachable(m.err)
		return
	case isTimeout(m.err):
		t.add(IDService, Warn, kindNames[t.kind]+" ("+t.how+"): no answer to a TLS handshake: "+describe(m.err, t.step), "check what serves this port")
		return
	case m.err != nil:
		t.greeted()
		t.add(IDService, Info, kindNames[t.kind]+" ("+t.how+")", "")
		t.add(IDImplicitTLS, High, "no TLS handshake: "+describe(m.err, t.step),
			"fix the server's TLS configuration (certificate, key, protocols), or put mailfront in front")
		return
	}
	t.add(IDImplicitTLS, OK, tlsSummary(m.state), "")
	t.tlsChecks(d, m.state)
}

// noGreetingUnderTLS records an implicit TLS port whose handshake worked
// and whose greeting did not come: the TLS checks still run.
func (t *target) noGreetingUnderTLS(err error, line string) {
	t.greeted()
	t.add(IDService, Warn, kindNames[t.kind]+" ("+t.how+"): TLS works, then no "+strings.ToUpper(t.kind.protocol())+" greeting: "+describeOr(err, line, t.step),
		"check what serves this port")
}

// tlsSummary is the negotiated version and suite.
func tlsSummary(s tls.ConnectionState) string {
	return versionName(s.Version) + ", " + tls.CipherSuiteName(s.CipherSuite)
}
