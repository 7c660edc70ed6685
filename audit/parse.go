package audit

import (
	"regexp"
	"strconv"
	"strings"
)

// The parsers below read untrusted server lines (already bounded by
// maxLine). They never fail: what they cannot read comes back empty, and
// the dialogue decides what an unreadable answer means.

// imapLine is one IMAP response line (RFC 9051 section 7).
type imapLine struct {
	Tag      string // "*", "+", or the command's tag
	Status   string // OK, NO, BAD, PREAUTH, BYE, or untagged data's name (CAPABILITY), upper-case
	Code     string // the response code's name, upper-case: PRIVACYREQUIRED, CAPABILITY...
	CodeArgs string // what follows the code's name inside the brackets
	Text     string // the human-readable text after the code
	Rest     string // everything after the status
}

// parseIMAPLine splits a response line into tag, status, code and text.
func parseIMAPLine(line string) imapLine {
	var l imapLine
	l.Tag, line, _ = strings.Cut(line, " ")
	if l.Tag == "+" {
		l.Text = line
		return l
	}
	l.Status, line, _ = strings.Cut(line, " ")
	l.Status = strings.ToUpper(l.Status)
	l.Rest = line
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			code := line[1:end]
			l.Code, l.CodeArgs, _ = strings.Cut(code, " ")
			l.Code = strings.ToUpper(l.Code)
			line = strings.TrimPrefix(line[end+1:], " ")
		}
	}
	l.Text = line
	return l
}

// caps are the capabilities an IMAP line carries: untagged CAPABILITY
// data, or a CAPABILITY response code; upper-case.
func (l imapLine) caps() []string {
	var list string
	switch {
	case l.Tag == "*" && l.Status == "CAPABILITY":
		list = l.Rest
	case l.Code == "CAPABILITY":
		list = l.CodeArgs
	default:
		return nil
	}
	return strings.Fields(strings.ToUpper(list))
}

// pop3Line is a POP3 status line (RFC 1939 section 3) with its RFC 2449
// response code.
type pop3Line struct {
	Valid bool // +OK or -ERR
	OK    bool
	Code  string // AUTH, SYS/TEMP..., upper-case
	Text  string
}

func parsePOP3Line(line string) pop3Line {
	var l pop3Line
	status, rest, _ := strings.Cut(line, " ")
	switch strings.ToUpper(status) {
	case "+OK":
		l.Valid, l.OK = true, true
	case "-ERR":
		l.Valid = true
	default:
		return l
	}
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end > 0 {
			l.Code = strings.ToUpper(rest[1:end])
			rest = strings.TrimPrefix(rest[end+1:], " ")
		}
	}
	l.Text = rest
	return l
}

// smtpLine is one line of an SMTP reply (RFC 5321 section 4.2).
type smtpLine struct {
	Valid bool
	Code  int
	Last  bool // "250 " rather than "250-"
	Text  string
}

func parseSMTPLine(line string) smtpLine {
	if len(line) < 3 {
		return smtpLine{}
	}
	code, err := strconv.Atoi(line[:3])
	if err != nil || code < 200 || code > 599 {
		return smtpLine{}
	}
	l := smtpLine{Valid: true, Code: code, Last: true}
	if len(line) > 3 {
		switch line[3] {
		case ' ':
		case '-':
			l.Last = false
		default:
			return smtpLine{}
		}
		l.Text = line[4:]
	}
	return l
}

// products are mail server names a greeting may carry.
var products = []struct {
	name string
	re   *regexp.Regexp
}{
	{"Dovecot", regexp.MustCompile(`(?i)\bdovecot\b`)},
	{"Courier", regexp.MustCompile(`(?i)\bcourier\b`)},
	{"Cyrus", regexp.MustCompile(`(?i)\bcyrus\b`)},
	{"UW IMAP", regexp.MustCompile(`\bIMAP4rev1 \d{4}[a-z]?\.\d+`)},
	{"GNU Mailutils", regexp.MustCompile(`(?i)\bmailutils\b`)},
	{"Microsoft Exchange", regexp.MustCompile(`(?i)\bmicrosoft exchange\b|\bexchange (imap4|pop3)\b`)},
	{"Zimbra", regexp.MustCompile(`(?i)\bzimbra\b`)},
	{"hMailServer", regexp.MustCompile(`(?i)\bhmailserver\b`)},
	{"MDaemon", regexp.MustCompile(`(?i)\bmdaemon\b`)},
	{"Kerio Connect", regexp.MustCompile(`(?i)\bkerio\b`)},
	{"IceWarp", regexp.MustCompile(`(?i)\bicewarp\b|\bmerak\b`)},
	{"Axigen", regexp.MustCompile(`(?i)\baxigen\b`)},
	{"SmarterMail", regexp.MustCompile(`(?i)\bsmartermail\b`)},
	{"CommuniGate Pro", regexp.MustCompile(`(?i)\bcommunigate\b`)},
	{"Lotus Domino", regexp.MustCompile(`(?i)\bdomino\b`)},
	{"Qpopper", regexp.MustCompile(`(?i)\bqpopper\b`)},
	{"popa3d", regexp.MustCompile(`(?i)\bpopa3d\b`)},
	{"tpop3d", regexp.MustCompile(`(?i)\btpop3d\b`)},
	{"Citadel", regexp.MustCompile(`(?i)\bcitadel\b`)},
	{"Kopano", regexp.MustCompile(`(?i)\bkopano\b|\bzarafa\b`)},
	{"Stalwart", regexp.MustCompile(`(?i)\bstalwart\b`)},
	{"Postfix", regexp.MustCompile(`(?i)\bpostfix\b`)},
	{"Exim", regexp.MustCompile(`(?i)\bexim\b`)},
	{"Sendmail", regexp.MustCompile(`(?i)\bsendmail\b`)},
	{"OpenSMTPD", regexp.MustCompile(`(?i)\bopensmtpd\b`)},
	{"qmail", regexp.MustCompile(`(?i)\bqmail\b`)},
	{"mailfront", regexp.MustCompile(`(?i)\bmailfront\b`)},
}

// versionRE is a version number: 2.3.19, v4.1.0, 2007f.404, 8.15.2/8.15.2.
var versionRE = regexp.MustCompile(`\b[vV]?(\d+[a-z]?\.\d+(?:\.\d+)*(?:[a-z]\b|[-+~][0-9A-Za-z.]*\d)?)`)

// ipv4RE is a dotted quad, which is an address, not a version.
var ipv4RE = regexp.MustCompile(`^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$`)

// software finds a product name and a version number in a greeting or an
// IMPLEMENTATION line; either may be empty.
func software(text string) (product, version string) {
	for _, p := range products {
		if p.re.MatchString(text) {
			product = p.name
			break
		}
	}
	for _, m := range versionRE.FindAllStringSubmatch(text, 8) {
		if !ipv4RE.MatchString(m[1]) {
			return product, m[1]
		}
	}
	return product, ""
}
