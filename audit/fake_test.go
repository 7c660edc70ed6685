package audit

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// script is how a scripted server behaves. The zero value of each field
// is the well-behaved server's answer; a test sets what it is about.
type script struct {
	proto    string // imap, pop3 or smtp
	implicit bool   // TLS from the first byte
	tls      *tls.Config
	greeting string   // the first line; default the protocol's plain "ready"
	caps     []string // IMAP capabilities, POP3 CAPA lines or EHLO keywords before TLS; STARTTLS/STLS added when tls is set
	capsTLS  []string // the same under TLS
	noCapa   bool     // POP3: CAPA is an unknown command
	// inject is the CVE-2011-0411 bug: plaintext read before STARTTLS is
	// still read as commands inside TLS.
	inject bool
	// login is the answer to a login before TLS: IMAP's tagged answer
	// after the tag, POP3's to PASS; user is POP3's answer to USER.
	login, user string
	// loginDelay is the server's failure delay before a login's answer.
	loginDelay time.Duration
	// tlsLoginDelays are the delays of successive logins under TLS
	// (--probe-guard), the last repeated.
	tlsLoginDelays []time.Duration
}

// fake is a running scripted server.
type fake struct {
	s     script
	ln    net.Listener
	port  int
	mu    sync.Mutex
	conns []net.Conn
	tlsN  int // logins under TLS so far
	wg    sync.WaitGroup
}

// startFake serves s on a loopback port until the test ends.
func startFake(t *testing.T, s script) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{s: s, ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	f.wg.Go(f.accept)
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *fake) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns = append(f.conns, c)
		f.mu.Unlock()
		f.wg.Go(func() {
			defer c.Close()
			f.serve(c)
		})
	}
}

// session is one connection to the fake.
type session struct {
	f     *fake
	raw   net.Conn
	w     io.Writer
	r     *bufio.Reader
	inTLS bool
}

func (f *fake) serve(raw net.Conn) {
	s := &session{f: f, raw: raw, w: raw, r: bufio.NewReader(raw)}
	if f.s.implicit {
		tc := tls.Server(raw, f.s.tls)
		if tc.Handshake() != nil {
			return
		}
		s.w, s.r, s.inTLS = tc, bufio.NewReader(tc), true
	}
	switch f.s.proto {
	case "imap":
		s.imap()
	case "pop3":
		s.pop3()
	default:
		s.smtp()
	}
}

func (s *session) send(lines ...string) {
	for _, l := range lines {
		io.WriteString(s.w, l+"\r\n")
	}
}

func (s *session) line() (string, bool) {
	l, err := s.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err == nil
}

// upgrade starts TLS; the vulnerable server keeps what it had buffered.
func (s *session) upgrade() bool {
	pending, _ := s.r.Peek(s.r.Buffered())
	pending = bytes.Clone(pending)
	tc := tls.Server(s.raw, s.f.s.tls)
	if tc.Handshake() != nil {
		return false
	}
	s.w, s.inTLS = tc, true
	if s.f.s.inject {
		s.r = bufio.NewReader(io.MultiReader(bytes.NewReader(pending), tc))
	} else {
		s.r = bufio.NewReader(tc)
	}
	return true
}

// caps is the capability list for the session's state.
func (s *session) caps(starttls string) []string {
	if s.inTLS {
		return s.f.s.capsTLS
	}
	caps := s.f.s.caps
	if s.f.s.tls != nil && !s.f.s.implicit {
		caps = append([]string{starttls}, caps...)
	}
	return caps
}

// loginWait is the failure delay: before TLS the script's, under TLS the
// next of tlsLoginDelays.
func (s *session) loginWait() {
	d := s.f.s.loginDelay
	if s.inTLS {
		s.f.mu.Lock()
		if n := len(s.f.s.tlsLoginDelays); n > 0 {
			d = s.f.s.tlsLoginDelays[min(s.f.tlsN, n-1)]
		}
		s.f.tlsN++
		s.f.mu.Unlock()
	}
	time.Sleep(d) // the server's own failure delay, which the check measures
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *session) imap() {
	s.send(or(s.f.s.greeting, "* OK ready"))
	for {
		l, ok := s.line()
		if !ok {
			return
		}
		tag, rest, _ := strings.Cut(l, " ")
		cmd, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(cmd) {
		case "CAPABILITY":
			s.send("* CAPABILITY IMAP4rev1 "+strings.Join(s.caps("STARTTLS"), " "), tag+" OK done")
		case "STARTTLS":
			if s.f.s.tls == nil || s.inTLS {
				s.send(tag + " BAD no")
				continue
			}
			s.send(tag + " OK begin TLS")
			if !s.upgrade() {
				return
			}
		case "LOGIN":
			s.loginWait()
			if s.inTLS {
				s.send(tag + " NO [AUTHENTICATIONFAILED] Authentication failed.")
				continue
			}
			s.send(tag + " " + or(s.f.s.login, "NO [PRIVACYREQUIRED] TLS required"))
		case "NOOP":
			s.send(tag + " OK NOOP done")
		case "LOGOUT":
			s.send("* BYE bye", tag+" OK bye")
			return
		default:
			s.send(tag + " BAD unknown")
		}
	}
}

func (s *session) pop3() {
	s.send(or(s.f.s.greeting, "+OK ready"))
	for {
		l, ok := s.line()
		if !ok {
			return
		}
		cmd, _, _ := strings.Cut(l, " ")
		switch strings.ToUpper(cmd) {
		case "CAPA":
			if s.f.s.noCapa {
				s.send("-ERR unknown command")
				continue
			}
			s.send("+OK capabilities")
			s.send(s.caps("STLS")...)
			s.send(".")
		case "STLS":
			if s.f.s.tls == nil || s.inTLS {
				s.send("-ERR no")
				continue
			}
			s.send("+OK begin TLS")
			if !s.upgrade() {
				return
			}
		case "USER":
			s.send(or(s.f.s.user, "+OK"))
		case "PASS":
			s.loginWait()
			if s.inTLS {
				s.send("-ERR [AUTH] Authentication failed.")
				continue
			}
			s.send(or(s.f.s.login, "-ERR [AUTH] Authentication failed."))
		case "QUIT":
			s.send("+OK bye")
			return
		default:
			s.send("-ERR unknown command")
		}
	}
}

func (s *session) smtp() {
	s.send(or(s.f.s.greeting, "220 mx ESMTP ready"))
	for {
		l, ok := s.line()
		if !ok {
			return
		}
		cmd, _, _ := strings.Cut(l, " ")
		switch strings.ToUpper(cmd) {
		case "EHLO":
			ext := s.caps("STARTTLS")
			lines := []string{"250-mx"}
			for i, e := range ext {
				sep := "-"
				if i == len(ext)-1 {
					sep = " "
				}
				lines = append(lines, "250"+sep+e)
			}
			if len(ext) == 0 {
				lines = []string{"250 mx"}
			}
			s.send(lines...)
		case "STARTTLS":
			if s.f.s.tls == nil || s.inTLS {
				s.send("502 no")
				continue
			}
			s.send("220 go ahead")
			if !s.upgrade() {
				return
			}
		case "NOOP":
			s.send("250 ok")
		case "QUIT":
			s.send("221 bye")
			return
		default:
			s.send("500 unknown")
		}
	}
}

// port is the fake's port with a kind, for Options.Ports.
func (f *fake) at(k Kind) Port { return Port{Number: f.port, Kind: k} }

func (f *fake) String() string { return strconv.Itoa(f.port) }
