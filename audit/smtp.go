package audit

import (
	"errors"
	"net"
	"strings"
)

// smtpDialogue checks SMTP and submission (RFC 5321, RFC 6409; STARTTLS
// per RFC 3207; implicit TLS per RFC 8314).
type smtpDialogue struct{}

func (smtpDialogue) alpn() string { return "" }

// smtpReply reads a reply, all its lines, at most maxLines.
func (c *conn) smtpReply() (code int, texts []string, err error) {
	for range maxLines {
		line, err := c.readLine()
		if err != nil {
			return 0, nil, err
		}
		l := parseSMTPLine(line)
		if !l.Valid {
			return 0, nil, unexpected("not an SMTP reply: %s", quote(line))
		}
		texts = append(texts, l.Text)
		if l.Last {
			return l.Code, texts, nil
		}
	}
	return 0, nil, unexpected("a reply longer than %d lines", maxLines)
}

func (c *conn) smtpCommand(cmd string) (int, []string, error) {
	if err := c.writeLine(cmd); err != nil {
		return 0, nil, err
	}
	return c.smtpReply()
}

// ehlo greets with this end's address as an address literal (RFC 5321
// section 4.1.3) and returns the extensions, one per line, upper-case.
func (c *conn) ehlo() ([]string, error) {
	literal := "[127.0.0.1]"
	if a, ok := c.raw.LocalAddr().(*net.TCPAddr); ok {
		literal = "[" + a.IP.String() + "]"
		if a.IP.To4() == nil {
			literal = "[IPv6:" + a.IP.String() + "]"
		}
	}
	code, texts, err := c.smtpCommand("EHLO " + literal)
	if err != nil {
		return nil, err
	}
	if code != 250 {
		return nil, unexpected("EHLO refused: %d %s", code, quote(strings.Join(texts, " ")))
	}
	ext := make([]string, 0, len(texts))
	for _, s := range texts[1:] {
		ext = append(ext, strings.ToUpper(s))
	}
	return ext, nil
}

// extArgs returns an EHLO keyword's arguments and whether it is there.
func extArgs(ext []string, keyword string) ([]string, bool) {
	for _, e := range ext {
		f := strings.Fields(e)
		if len(f) > 0 && (f[0] == keyword || keyword == "AUTH" && strings.HasPrefix(f[0], "AUTH=")) {
			return f[1:], true
		}
	}
	return nil, false
}

// smtpGreeting reads the 220 greeting and returns its first line.
func (c *conn) smtpGreeting() (string, error) {
	code, texts, err := c.smtpReply()
	if err != nil {
		return "", err
	}
	if code != 220 {
		return "", unexpected("greeting %d %s", code, quote(strings.Join(texts, " ")))
	}
	return texts[0], nil
}

func (smtpDialogue) plain(t *target) (greeted, advertised bool) {
	c, err := t.dial()
	if err != nil {
		t.unreachable(err)
		return false, false
	}
	defer c.close()
	g, err := c.smtpGreeting()
	if err != nil {
		t.add(IDService, Warn, "no SMTP greeting: "+describe(err, t.step), "check what serves this port")
		return false, false
	}
	t.greeted()
	t.add(IDService, Info, t.serviceSeen("220 "+g), "")
	t.judgeSoftware(g)
	ext, err := c.ehlo()
	if err != nil {
		t.add(IDLoginBeforeTLS, Warn, "EHLO could not be read: "+describe(err, t.step), "")
		return true, false
	}
	if mechs, ok := extArgs(ext, "AUTH"); ok {
		t.add(IDLoginBeforeTLS, Critical, "AUTH "+strings.Join(mechs, " ")+" offered before STARTTLS: mail clients log in with their password in cleartext",
			"offer AUTH only after STARTTLS (Postfix: smtpd_tls_auth_only = yes), or use submission over implicit TLS on 465")
	} else {
		t.add(IDLoginBeforeTLS, OK, "no AUTH before STARTTLS", "")
	}
	c.writeLine("QUIT")
	_, starttls := extArgs(ext, "STARTTLS")
	return true, starttls
}

func (smtpDialogue) preamble(t *target, c *conn) error {
	if _, err := c.smtpGreeting(); err != nil {
		return err
	}
	if _, err := c.ehlo(); err != nil {
		return err
	}
	code, texts, err := c.smtpCommand("STARTTLS")
	if err != nil {
		return err
	}
	if code != 220 {
		return &refusedError{"STARTTLS", strings.Join(texts, " ")}
	}
	return nil
}

func (smtpDialogue) underTLS(t *target, c *conn) bool {
	if t.kind.implicitTLS() {
		g, err := c.smtpGreeting()
		if err != nil {
			t.noGreetingUnderTLS(err, "")
			return false
		}
		t.greeted()
		t.add(IDService, Info, t.serviceSeen("220 "+g), "")
		t.judgeSoftware(g)
	}
	ext, err := c.ehlo()
	if err != nil {
		t.add(IDCapsTLS, Warn, "EHLO under TLS could not be read: "+describe(err, t.step), "")
		return true
	}
	mechs, auth := extArgs(ext, "AUTH")
	_, starttls := extArgs(ext, "STARTTLS")
	switch {
	case starttls:
		t.add(IDCapsTLS, Low, "STARTTLS still advertised under TLS", "advertise STARTTLS only before TLS (RFC 3207 section 4.2)")
	case !auth && t.kind != SMTP:
		t.add(IDCapsTLS, Medium, "no AUTH under TLS on a submission port: clients cannot log in", "offer AUTH PLAIN under TLS")
	case auth:
		t.add(IDCapsTLS, OK, "under TLS: AUTH "+strings.Join(mechs, " "), "")
	default:
		t.add(IDCapsTLS, OK, "under TLS: no AUTH (a relay port)", "")
	}
	c.writeLine("QUIT")
	return true
}

func (smtpDialogue) inject(t *target) {
	t.injection("STARTTLS\r\nNOOP\r\n", func(c *conn) error {
		if _, err := c.smtpGreeting(); err != nil {
			return err
		}
		_, err := c.ehlo()
		return err
	}, func(c *conn) (bool, error) {
		code, _, err := c.smtpReply()
		return code == 220, err
	}, func(c *conn) (bool, error) {
		// QUIT's answer is 221; a 250 first is the injected NOOP's.
		code, _, err := c.smtpCommand("QUIT")
		return err == nil && code == 250, err
	})
}

// errNoLogin is --probe-guard on SMTP, which it does not probe.
var errNoLogin = errors.New("audit: no login probe for SMTP")

func (smtpDialogue) login(*target, *conn, string, string) (string, error) { return "", errNoLogin }
