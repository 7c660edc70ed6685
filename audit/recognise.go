package audit

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"syscall"
	"time"
)

// greetingWait is how long a port of unknown kind is given to greet in
// plaintext before it is tried as implicit TLS: plaintext servers greet at
// once, TLS servers wait for the client.
const greetingWait = time.Second

// kindNames say what a kind is, for the service finding.
var kindNames = map[Kind]string{
	IMAP: "IMAP with STARTTLS", IMAPS: "IMAP over implicit TLS",
	POP3: "POP3 with STLS", POP3S: "POP3 over implicit TLS",
	SMTP: "SMTP with STARTTLS", Submission: "submission with STARTTLS", SMTPS: "submission over implicit TLS",
}

// protocolOf says which protocol a greeting line is: imap, pop3, smtp, or
// "" for none of them.
func protocolOf(line string) string {
	u := strings.ToUpper(line)
	switch {
	case strings.HasPrefix(u, "* OK"), strings.HasPrefix(u, "* PREAUTH"), strings.HasPrefix(u, "* BYE"):
		return "imap"
	case strings.HasPrefix(u, "+OK"), strings.HasPrefix(u, "-ERR"):
		return "pop3"
	case parseSMTPLine(line).Valid:
		return "smtp"
	}
	return ""
}

// recognise finds the port's kind: given, standard, or by what it says.
// It records the service finding when the port cannot be checked, and
// reports whether the checks can go on.
func (t *target) recognise() bool {
	switch std, ok := standardPorts[t.port]; {
	case t.kind != "":
		t.how = "--ports"
		return true
	case ok:
		t.kind, t.how = std, "standard port"
		return true
	}
	c, err := t.dial()
	if err != nil {
		t.unreachable(err)
		return false
	}
	c.step = min(t.step, greetingWait)
	line, err := c.readLine()
	c.close()
	var ne net.Error
	switch {
	case err == nil && protocolOf(line) != "":
		t.kind, t.how = plain(protocolOf(line), t.port), "its greeting"
		t.greeted()
		return true
	case err == nil:
		t.add(IDService, Info, "neither IMAP, POP3 nor SMTP: it greets with "+quote(line), "")
		return false
	case !errors.As(err, &ne) || !ne.Timeout():
		t.add(IDService, Info, "no greeting: "+describe(err, t.step), "")
		return false
	}
	return t.recogniseTLS()
}

// recogniseTLS tries a port that did not greet as implicit TLS.
func (t *target) recogniseTLS() bool {
	c, err := t.dial()
	if err != nil {
		t.unreachable(err)
		return false
	}
	defer c.close()
	_, err = c.startTLS(t.tlsConfig())
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) { // a slow plaintext greeting after all
		if p := protocolOf(string(rh.RecordHeader[:])); p != "" {
			t.kind, t.how = plain(p, t.port), "its greeting"
			t.greeted()
			return true
		}
	}
	if err != nil {
		t.add(IDService, Info, "no greeting within "+greetingWait.String()+", and no TLS handshake: "+describe(err, t.step), "")
		return false
	}
	line, err := c.readLine()
	if err != nil || protocolOf(line) == "" {
		seen := "a TLS handshake, then no greeting: " + describe(err, t.step)
		if err == nil {
			seen = "a TLS handshake, then neither IMAP, POP3 nor SMTP: " + quote(line)
		}
		t.add(IDService, Info, seen, "")
		return false
	}
	t.kind, t.how = withTLS(protocolOf(line)), "its TLS handshake and greeting"
	t.greeted()
	return true
}

// unreachable records a port nothing answers on. A closed port is fine
// (plaintext ports closed are the goal); the report says so.
func (t *target) unreachable(err error) {
	if errors.Is(err, syscall.ECONNREFUSED) {
		t.add(IDService, Info, "nothing listens (connection refused)", "")
		return
	}
	t.add(IDService, Info, "no connection: "+describe(err, t.step), "")
}

// serviceSeen says what the port is and how that was known.
func (t *target) serviceSeen(greeting string) string {
	return kindNames[t.kind] + " (" + t.how + "), greeting " + quote(greeting)
}
