package audit

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Kind is what a port speaks.
type Kind string

// The kinds. The empty kind is "recognise it by what it says".
const (
	IMAP       Kind = "imap"       // IMAP with STARTTLS (RFC 9051), 143
	IMAPS      Kind = "imaps"      // IMAP over implicit TLS (RFC 8314), 993
	POP3       Kind = "pop3"       // POP3 with STLS (RFC 2595), 110
	POP3S      Kind = "pop3s"      // POP3 over implicit TLS, 995
	SMTP       Kind = "smtp"       // SMTP with STARTTLS (RFC 3207), 25
	Submission Kind = "submission" // message submission with STARTTLS (RFC 6409), 587
	SMTPS      Kind = "smtps"      // submission over implicit TLS (RFC 8314), 465
)

// kinds are the kinds --ports takes, with their aliases.
var kinds = map[string]Kind{
	"imap": IMAP, "imaps": IMAPS, "pop3": POP3, "pop3s": POP3S,
	"smtp": SMTP, "submission": Submission, "smtps": SMTPS, "submissions": SMTPS,
}

// standardPorts are the kinds of the well-known ports.
var standardPorts = map[int]Kind{143: IMAP, 993: IMAPS, 110: POP3, 995: POP3S, 25: SMTP, 587: Submission, 465: SMTPS}

// implicitTLS reports whether the port starts with a TLS handshake.
func (k Kind) implicitTLS() bool { return k == IMAPS || k == POP3S || k == SMTPS }

// protocol is the dialogue spoken: imap, pop3 or smtp.
func (k Kind) protocol() string {
	switch k {
	case IMAP, IMAPS:
		return "imap"
	case POP3, POP3S:
		return "pop3"
	case SMTP, Submission, SMTPS:
		return "smtp"
	}
	return ""
}

// withTLS is the kind's implicit-TLS twin for a handshake that succeeded
// on a port recognised as plaintext protocol p.
func withTLS(p string) Kind {
	switch p {
	case "imap":
		return IMAPS
	case "pop3":
		return POP3S
	}
	return SMTPS
}

// plain is the kind's STARTTLS twin for protocol p on port n.
func plain(p string, n int) Kind {
	switch {
	case p == "imap":
		return IMAP
	case p == "pop3":
		return POP3
	case n == 587:
		return Submission
	}
	return SMTP
}

// Port is one port to check, and its kind when known ahead.
type Port struct {
	Number int
	Kind   Kind // empty: the standard port's kind, or recognised by what it says
}

func (p Port) String() string {
	if p.Kind == "" {
		return strconv.Itoa(p.Number)
	}
	return strconv.Itoa(p.Number) + "/" + string(p.Kind)
}

// DefaultPorts are IMAP's and POP3's standard ports; with SMTP also
// SMTP's, submission's and submissions'.
func DefaultPorts(smtp bool) []Port {
	ports := []Port{{Number: 143}, {Number: 110}, {Number: 993}, {Number: 995}}
	if smtp {
		ports = append(ports, Port{Number: 25}, Port{Number: 465}, Port{Number: 587})
	}
	return ports
}

// ParsePorts reads --ports: a comma-separated list of port numbers, each
// optionally followed by /KIND (imap, imaps, pop3, pop3s, smtp,
// submission, smtps).
func ParsePorts(s string) ([]Port, error) {
	var ports []Port
	seen := map[int]bool{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		num, kind, hasKind := strings.Cut(item, "/")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q: want a number from 1 to 65535, optionally with /imap, /imaps, /pop3, /pop3s, /smtp, /submission or /smtps", item)
		}
		p := Port{Number: n}
		if hasKind {
			k, ok := kinds[strings.ToLower(kind)]
			if !ok {
				return nil, fmt.Errorf("port %q: unknown kind %q: use imap, imaps, pop3, pop3s, smtp, submission or smtps", item, kind)
			}
			p.Kind = k
		}
		if seen[n] {
			return nil, fmt.Errorf("port %d is listed twice", n)
		}
		seen[n] = true
		ports = append(ports, p)
	}
	return ports, nil
}

// Options say what to check and how long to take.
type Options struct {
	// Host is the server's name or address.
	Host string
	// Name is the name the certificate must hold and TLS clients send as
	// SNI; default Host. An address is checked against the certificate's
	// IP addresses and never sent as SNI.
	Name string
	// Ports to check; default DefaultPorts(false).
	Ports []Port
	// Roots verify certificate chains; nil means the system's roots.
	Roots *x509.CertPool
	// ProbeGuard sends a few wrong logins over TLS, once per protocol,
	// and checks whether the answers slow down. Off by default: the
	// server counts them against this address.
	ProbeGuard bool
	// FailOn is the severity from which the exit code is 2; default High.
	FailOn Severity
	// StepTimeout bounds each network step (connect, a reply, a
	// handshake); default DefaultStepTimeout.
	StepTimeout time.Duration
	// Deadline bounds the whole run; default DefaultDeadline.
	Deadline time.Duration
	// Now is the clock certificates are judged by; default time.Now.
	Now func() time.Time
	// LookupHost resolves Host; default net.DefaultResolver's.
	LookupHost func(ctx context.Context, host string) ([]string, error)
}

// Defaults for Options' zero values.
const (
	DefaultStepTimeout = 5 * time.Second
	DefaultDeadline    = 30 * time.Second
)

func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = o.Host
	}
	if len(o.Ports) == 0 {
		o.Ports = DefaultPorts(false)
	}
	if o.FailOn == 0 {
		o.FailOn = High
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.Deadline <= 0 {
		o.Deadline = DefaultDeadline
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LookupHost == nil {
		o.LookupHost = net.DefaultResolver.LookupHost
	}
	return o
}
