package audit

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// imapDialogue checks IMAP (RFC 9051; STARTTLS per RFC 2595 section 3.1).
type imapDialogue struct{}

func (imapDialogue) alpn() string { return "imap" }

// imapAnswer is the answer to a command: untagged lines, then the tagged
// one (or a continuation request).
type imapAnswer struct {
	untagged []imapLine
	tagged   imapLine
	line     string // the tagged line as it came
}

// texts are the answer's human-readable texts, untagged ones included
// (Dovecot explains a refusal in an untagged BAD [ALERT]).
func (a imapAnswer) texts() string {
	var b strings.Builder
	for _, u := range a.untagged {
		b.WriteString(u.Rest + " ")
	}
	b.WriteString(a.tagged.Rest)
	return b.String()
}

func (c *conn) imapCommand(tag, cmd string) (imapAnswer, error) {
	if err := c.writeLine(tag + " " + cmd); err != nil {
		return imapAnswer{}, err
	}
	return c.imapAnswer(tag)
}

// imapAnswer reads lines up to the one tagged tag, at most maxLines.
func (c *conn) imapAnswer(tag string) (imapAnswer, error) {
	var a imapAnswer
	for range maxLines {
		line, err := c.readLine()
		if err != nil {
			return a, err
		}
		l := parseIMAPLine(line)
		if l.Tag == tag || l.Tag == "+" {
			a.tagged, a.line = l, line
			return a, nil
		}
		a.untagged = append(a.untagged, l)
	}
	return a, unexpected("more than %d lines without the answer to %s", maxLines, tag)
}

// imapGreeting reads the greeting: * OK, * PREAUTH or * BYE.
func (c *conn) imapGreeting() (imapLine, string, error) {
	line, err := c.readLine()
	if err != nil {
		return imapLine{}, "", err
	}
	l := parseIMAPLine(line)
	if l.Tag != "*" || (l.Status != "OK" && l.Status != "PREAUTH" && l.Status != "BYE") {
		return l, line, unexpected("not an IMAP greeting: %s", quote(line))
	}
	return l, line, nil
}

// imapCaps is the greeting's capabilities and CAPABILITY's answer.
func (c *conn) imapCaps(greeting imapLine) []string {
	caps := greeting.caps()
	if a, err := c.imapCommand("c1", "CAPABILITY"); err == nil && a.tagged.Status == "OK" {
		for _, u := range a.untagged {
			for _, cp := range u.caps() {
				if !slices.Contains(caps, cp) {
					caps = append(caps, cp)
				}
			}
		}
	}
	return caps
}

func (imapDialogue) plain(t *target) (greeted, advertised bool) {
	c, err := t.dial()
	if err != nil {
		t.unreachable(err)
		return false, false
	}
	defer c.close()
	g, line, err := c.imapGreeting()
	if err != nil {
		t.add(IDService, Warn, "no IMAP greeting: "+describe(err, t.step), "check what serves this port")
		return false, false
	}
	t.greeted()
	t.add(IDService, Info, t.serviceSeen(line), "")
	t.judgeSoftware(g.Text)
	t.judgePreauth(g, line)
	if g.Status != "OK" {
		return true, false
	}
	caps := c.imapCaps(g)
	t.imapLoginOffered(caps)
	t.imapLoginProbe(c)
	return true, slices.Contains(caps, "STARTTLS")
}

func (t *target) judgePreauth(g imapLine, line string) {
	switch g.Status {
	case "PREAUTH":
		t.add(IDPreauth, Critical, "the greeting is PREAUTH: whoever connects gets a mailbox without logging in: "+quote(line),
			"turn off pre-authentication for network connections (it is for local tunnels), or put mailfront in front (it never passes PREAUTH on)")
	case "BYE":
		t.add(IDService, Warn, "the server greets with BYE and closes: "+quote(line), "check whether this address is refused by the server")
	default:
		t.add(IDPreauth, OK, "no PREAUTH: a login is required", "")
	}
}

// imapLoginOffered judges what the capabilities before TLS offer: LOGIN
// unless LOGINDISABLED (RFC 9051 section 6.2.3), and the SASL mechanisms
// that carry the password as it is.
func (t *target) imapLoginOffered(caps []string) {
	var offered []string
	if !slices.Contains(caps, "LOGINDISABLED") {
		offered = append(offered, "LOGIN (no LOGINDISABLED)")
	}
	for _, m := range []string{"AUTH=PLAIN", "AUTH=LOGIN"} {
		if slices.Contains(caps, m) {
			offered = append(offered, m)
		}
	}
	if len(offered) == 0 {
		t.add(IDLoginBeforeTLS, OK, "LOGINDISABLED and no AUTH=PLAIN or AUTH=LOGIN before TLS", "")
		return
	}
	t.add(IDLoginBeforeTLS, High, "before TLS the server offers "+strings.Join(offered, ", ")+": a client may send its password in cleartext before anything refuses it",
		"advertise LOGINDISABLED and no AUTH= before TLS (Dovecot: disable_plaintext_auth = yes; 2.4: auth_allow_cleartext = no), or put mailfront in front")
}

// plaintextFix is the remedy for a server that checks passwords sent
// before TLS.
const plaintextFix = "refuse logins before TLS (Dovecot: disable_plaintext_auth = yes; Courier: IMAP_TLS_REQUIRED=1, POP3_TLS_REQUIRED=1; Cyrus: allowplaintext: no), or put mailfront in front (it refuses them and never passes them on)"

// imapLoginProbe sends LOGIN with the throwaway user and a random password.
func (t *target) imapLoginProbe(c *conn) {
	begin := time.Now()
	c.step = loginStep(t.step)
	t.sentLogin()
	a, err := c.imapCommand("m2", "LOGIN "+t.user+" "+randomHex(8))
	took := time.Since(begin)
	sev, why := judgeIMAPLogin(a, err, took, c.step)
	seen := fmt.Sprintf("LOGIN with the throwaway user %q and a random password, before TLS: %s", t.user, why)
	if took >= slowAnswer && err == nil {
		seen += answerTime(took, sev)
	}
	t.add(IDPlaintextLogin, sev, seen, fixIf(sev, plaintextFix))
}

// slowAnswer is how long a refusal takes for the delay to be the server's
// failure delay: a refusal for want of TLS comes at once.
const slowAnswer = time.Second

// answerTime says how long a login's answer took, and for a refusal
// that checked, that the wait was the server's failure delay.
func answerTime(took time.Duration, sev Severity) string {
	if sev == Critical {
		return fmt.Sprintf("; the answer took %.1fs, the server's failure delay", took.Seconds())
	}
	return fmt.Sprintf("; the answer took %.1fs", took.Seconds())
}

// loginStep is how long a login's answer may take: three steps, since
// servers make failures wait (Dovecot 2 s, and up to 15 s more after
// earlier failures from the same address).
func loginStep(step time.Duration) time.Duration { return 3 * step }

// judgeIMAPLogin reads the answer to a LOGIN before TLS.
func judgeIMAPLogin(a imapAnswer, err error, took, step time.Duration) (Severity, string) {
	switch {
	case err != nil && isTimeout(err):
		return High, fmt.Sprintf("no answer within %v; a server that refuses logins before TLS answers at once, so this one is probably checking the password", step)
	case err != nil:
		return Warn, "no verdict: " + describe(err, step)
	case a.tagged.Tag == "+":
		return Warn, "no verdict: the server asked for more (" + quote(a.line) + ")"
	case a.tagged.Status == "OK":
		return Critical, "ACCEPTED (" + quote(a.line) + "): the server takes logins in cleartext"
	case a.tagged.Status == "BAD":
		return OK, "refused without checking it (" + quote(a.line) + ")"
	case a.tagged.Code == "PRIVACYREQUIRED":
		return OK, "refused without checking it (" + quote(a.line) + ")"
	case a.tagged.Code == "AUTHENTICATIONFAILED", a.tagged.Code == "AUTHORIZATIONFAILED", a.tagged.Code == "EXPIRED":
		return Critical, "checked (" + quote(a.line) + "): passwords sent before TLS cross the network in cleartext and are checked"
	case a.tagged.Code == "UNAVAILABLE", a.tagged.Code == "SERVERBUG":
		return Warn, "no verdict: the server could not check logins just now (" + quote(a.line) + ")"
	case mentionsTLS(a.texts()):
		return OK, "refused without checking it (" + quote(a.line) + ")"
	case took >= slowAnswer:
		return Critical, "checked (" + quote(a.line) + "): passwords sent before TLS are checked"
	}
	return Critical, "refused without saying TLS is required (" + quote(a.line) + "): the server checked the password"
}

func (imapDialogue) preamble(t *target, c *conn) error {
	g, line, err := c.imapGreeting()
	if err != nil {
		return err
	}
	if g.Status != "OK" {
		return unexpected("greeting %s", quote(line))
	}
	a, err := c.imapCommand("m1", "STARTTLS")
	if err != nil {
		return err
	}
	if a.tagged.Status != "OK" {
		return &refusedError{"STARTTLS", a.line}
	}
	return nil
}

func (imapDialogue) underTLS(t *target, c *conn) bool {
	var g imapLine
	if t.kind.implicitTLS() {
		var line string
		var err error
		if g, line, err = c.imapGreeting(); err != nil {
			t.noGreetingUnderTLS(err, line)
			return false
		}
		t.greeted()
		t.add(IDService, Info, t.serviceSeen(line), "")
		t.judgeSoftware(g.Text)
		t.judgePreauth(g, line)
		if g.Status != "OK" {
			return true
		}
	}
	caps := c.imapCaps(g)
	var problems []string
	sev := OK
	if slices.Contains(caps, "LOGINDISABLED") {
		sev, problems = High, append(problems, "LOGINDISABLED under TLS: clients cannot log in")
	}
	if slices.Contains(caps, "STARTTLS") {
		sev, problems = max(sev, Low), append(problems, "STARTTLS still advertised under TLS")
	}
	var mechs []string
	for _, cp := range caps {
		if m, ok := strings.CutPrefix(cp, "AUTH="); ok {
			mechs = append(mechs, m)
		}
	}
	seen := "under TLS: LOGIN"
	if len(mechs) > 0 {
		seen += ", AUTHENTICATE " + strings.Join(mechs, " ")
	}
	if len(problems) > 0 {
		seen = strings.Join(problems, "; ")
	}
	t.add(IDCapsTLS, sev, seen, fixIf(sev, "advertise LOGIN or AUTH=PLAIN and no STARTTLS under TLS (RFC 9051 section 6.2.1), or put mailfront in front"))
	return true
}

func (imapDialogue) inject(t *target) {
	t.injection("m1 STARTTLS\r\nm2 NOOP\r\n", func(c *conn) error {
		if _, _, err := c.imapGreeting(); err != nil {
			return err
		}
		return nil
	}, func(c *conn) (bool, error) {
		a, err := c.imapAnswer("m1")
		if err != nil {
			return false, err
		}
		return a.tagged.Status == "OK", nil
	}, func(c *conn) (bool, error) {
		a, err := c.imapCommand("m3", "NOOP")
		for _, u := range a.untagged {
			if u.Tag == "m2" {
				return true, nil
			}
		}
		return false, err
	})
}

func (imapDialogue) login(t *target, c *conn, user, pass string) (string, error) {
	if t.kind.implicitTLS() {
		if _, _, err := c.imapGreeting(); err != nil {
			return "", err
		}
	}
	a, err := c.imapCommand("g1", "LOGIN "+user+" "+pass)
	return a.line, err
}
