package audit

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// pop3Dialogue checks POP3 (RFC 1939; CAPA per RFC 2449; STLS per RFC
// 2595 section 4).
type pop3Dialogue struct{}

func (pop3Dialogue) alpn() string { return "pop3" }

// apopRE is an APOP timestamp in a greeting (RFC 1939 section 7).
var apopRE = regexp.MustCompile(`<[^<>@\s]+@[^<>\s]+>`)

// pop3Status reads a status line.
func (c *conn) pop3Status() (pop3Line, string, error) {
	line, err := c.readLine()
	if err != nil {
		return pop3Line{}, "", err
	}
	l := parsePOP3Line(line)
	if !l.Valid {
		return l, line, unexpected("not a POP3 answer: %s", quote(line))
	}
	return l, line, nil
}

func (c *conn) pop3Command(cmd string) (pop3Line, string, error) {
	if err := c.writeLine(cmd); err != nil {
		return pop3Line{}, "", err
	}
	return c.pop3Status()
}

// pop3Capa asks CAPA and returns its lines (nil when refused).
func (c *conn) pop3Capa() ([]string, error) {
	st, _, err := c.pop3Command("CAPA")
	if err != nil || !st.OK {
		return nil, err
	}
	var caps []string
	for range maxLines {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if line == "." {
			return caps, nil
		}
		caps = append(caps, strings.TrimPrefix(line, "."))
	}
	return nil, unexpected("a CAPA list longer than %d lines", maxLines)
}

// capaHas reports whether a CAPA list has the keyword.
func capaHas(caps []string, keyword string) bool {
	return slices.ContainsFunc(caps, func(l string) bool {
		first, _, _ := strings.Cut(l, " ")
		return strings.EqualFold(first, keyword)
	})
}

// capaArgs is the arguments of a CAPA keyword, upper-case.
func capaArgs(caps []string, keyword string) []string {
	for _, l := range caps {
		if first, rest, _ := strings.Cut(l, " "); strings.EqualFold(first, keyword) {
			return strings.Fields(strings.ToUpper(rest))
		}
	}
	return nil
}

func (pop3Dialogue) plain(t *target) (greeted, advertised bool) {
	c, err := t.dial()
	if err != nil {
		t.unreachable(err)
		return false, false
	}
	defer c.close()
	g, line, err := c.pop3Status()
	if err != nil || !g.OK {
		t.add(IDService, Warn, "no POP3 greeting: "+describeOr(err, line, t.step), "check what serves this port")
		return false, false
	}
	t.greeted()
	t.add(IDService, Info, t.serviceSeen(line), "")
	caps, err := c.pop3Capa()
	t.judgeSoftware(g.Text, strings.Join(capaArgs(caps, "IMPLEMENTATION"), " "))
	if err != nil {
		t.add(IDLoginBeforeTLS, Warn, "CAPA could not be read: "+describe(err, t.step), "")
		return true, false
	}
	t.pop3LoginOffered(caps, apopRE.MatchString(g.Text))
	t.pop3LoginProbe(c)
	return true, capaHas(caps, "STLS")
}

// describeOr describes err, or an answer that was not the one wanted.
func describeOr(err error, line string, step time.Duration) string {
	if err != nil {
		return describe(err, step)
	}
	return quote(line)
}

// pop3LoginOffered judges what CAPA offers before TLS: USER/PASS, SASL
// mechanisms that carry the password as it is, APOP.
func (t *target) pop3LoginOffered(caps []string, apop bool) {
	var offered []string
	if capaHas(caps, "USER") {
		offered = append(offered, "USER/PASS")
	}
	for _, m := range capaArgs(caps, "SASL") {
		if m == "PLAIN" || m == "LOGIN" {
			offered = append(offered, "SASL "+m)
		}
	}
	if apop {
		offered = append(offered, "APOP (an MD5 challenge in the greeting, which an eavesdropper can crack offline)")
	}
	switch {
	case len(offered) > 0:
		t.add(IDLoginBeforeTLS, High, "before TLS the server offers "+strings.Join(offered, ", ")+": a client may send its password before anything refuses it",
			"list no USER, SASL PLAIN/LOGIN or APOP before STLS (Dovecot: disable_plaintext_auth = yes), or put mailfront in front")
	case caps == nil:
		t.add(IDLoginBeforeTLS, Info, "no CAPA (RFC 2449): the server does not say what it offers before TLS; the throwaway login tells", "")
	default:
		t.add(IDLoginBeforeTLS, OK, "CAPA lists no USER, SASL PLAIN/LOGIN or APOP before TLS", "")
	}
}

// pop3LoginProbe sends USER with the throwaway user and, if the server
// takes it, PASS with a random password.
func (t *target) pop3LoginProbe(c *conn) {
	what := fmt.Sprintf("USER with the throwaway user %q, before TLS", t.user)
	t.sentLogin()
	st, line, err := c.pop3Command("USER " + t.user)
	switch {
	case err != nil && isTimeout(err):
		t.add(IDPlaintextLogin, Warn, what+": no answer: "+describe(err, t.step), "")
		return
	case err != nil:
		t.add(IDPlaintextLogin, Warn, what+": no verdict: "+describe(err, t.step), "")
		return
	case !st.OK:
		t.add(IDPlaintextLogin, OK, what+": refused at once, so no password was sent ("+quote(line)+")", "")
		return
	}
	begin := time.Now()
	c.step = loginStep(t.step)
	st, line, err = c.pop3Command("PASS " + randomHex(8))
	took := time.Since(begin)
	sev, why := judgePOP3Pass(st, line, err, took, c.step)
	seen := fmt.Sprintf("USER %q and PASS with a random password, before TLS: %s", t.user, why)
	if took >= slowAnswer && err == nil {
		seen += answerTime(took, sev)
	}
	t.add(IDPlaintextLogin, sev, seen, fixIf(sev, plaintextFix))
}

// judgePOP3Pass reads the answer to PASS before TLS.
func judgePOP3Pass(st pop3Line, line string, err error, took, step time.Duration) (Severity, string) {
	switch {
	case err != nil && isTimeout(err):
		return High, fmt.Sprintf("no answer within %v; a server that refuses logins before TLS answers at once, so this one is probably checking the password", step)
	case err != nil:
		return Warn, "no verdict: " + describe(err, step)
	case st.OK:
		return Critical, "ACCEPTED (" + quote(line) + "): the server takes logins in cleartext"
	case st.Code == "SYS/TEMP", st.Code == "SYS/PERM":
		return Warn, "no verdict: the server could not check logins just now (" + quote(line) + ")"
	case mentionsTLS(st.Text):
		return OK, "refused without checking it (" + quote(line) + ")"
	case took >= slowAnswer:
		return Critical, "checked (" + quote(line) + "): passwords sent before TLS are checked"
	}
	return Critical, "refused without saying TLS is required (" + quote(line) + "): the server checked the password"
}

func (pop3Dialogue) preamble(t *target, c *conn) error {
	g, line, err := c.pop3Status()
	if err != nil {
		return err
	}
	if !g.OK {
		return unexpected("greeting %s", quote(line))
	}
	st, line, err := c.pop3Command("STLS")
	if err != nil {
		return err
	}
	if !st.OK {
		return &refusedError{"STLS", line}
	}
	return nil
}

func (pop3Dialogue) underTLS(t *target, c *conn) bool {
	var greeting string
	if t.kind.implicitTLS() {
		g, line, err := c.pop3Status()
		if err != nil || !g.OK {
			t.noGreetingUnderTLS(err, line)
			return false
		}
		t.greeted()
		t.add(IDService, Info, t.serviceSeen(line), "")
		greeting = g.Text
	}
	caps, err := c.pop3Capa()
	if t.kind.implicitTLS() {
		t.judgeSoftware(greeting, strings.Join(capaArgs(caps, "IMPLEMENTATION"), " "))
	}
	var logins []string
	if capaHas(caps, "USER") {
		logins = append(logins, "USER")
	}
	if m := capaArgs(caps, "SASL"); len(m) > 0 {
		logins = append(logins, "SASL "+strings.Join(m, " "))
	}
	switch {
	case err != nil || caps == nil:
		t.add(IDCapsTLS, Info, "no CAPA under TLS", "")
	case capaHas(caps, "STLS"):
		t.add(IDCapsTLS, Low, "STLS still advertised under TLS", "list STLS only before TLS (RFC 2595 section 4), or put mailfront in front")
	case len(logins) == 0:
		t.add(IDCapsTLS, High, "CAPA under TLS lists no USER and no SASL: clients see no way to log in", "offer USER or SASL PLAIN under TLS, or put mailfront in front")
	default:
		t.add(IDCapsTLS, OK, "under TLS: "+strings.Join(logins, ", "), "")
	}
	return true
}

func (pop3Dialogue) inject(t *target) {
	t.injection("STLS\r\nCAPA\r\n", func(c *conn) error {
		_, _, err := c.pop3Status()
		return err
	}, func(c *conn) (bool, error) {
		st, _, err := c.pop3Status()
		return st.OK, err
	}, func(c *conn) (bool, error) {
		// QUIT's answer is one line and a close; a second line means the
		// injected CAPA was answered first.
		if _, _, err := c.pop3Command("QUIT"); err != nil {
			return false, err
		}
		_, err := c.readLine()
		return err == nil, nil
	})
}

func (pop3Dialogue) login(t *target, c *conn, user, pass string) (string, error) {
	if t.kind.implicitTLS() {
		if _, _, err := c.pop3Status(); err != nil {
			return "", err
		}
	}
	if st, line, err := c.pop3Command("USER " + user); err != nil || !st.OK {
		return line, err
	}
	_, line, err := c.pop3Command("PASS " + pass)
	return line, err
}
