//go:build integration

package integration

import (
	"bufio"
	"encoding/base64"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

// canary is the user name of every login attempted before TLS. Dovecot
// logs the user of every login attempt (auth_verbose and
// login_log_format_elements' user=<%u>), so if the name ever shows up in
// its log, a plaintext credential crossed mailfront.
const canary = "plaintext-canary"

// step is one line a raw client sends and the start of the reply line it
// must get (for IMAP, the tagged reply; untagged lines are skipped).
type step struct {
	send, want string
}

// wire is a raw line-oriented client, for dialogues no real client would
// have (a login before STARTTLS).
type wire struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wire{t: t, c: c, r: bufio.NewReader(c)}
}

func (w *wire) line() string {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	l, err := w.r.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: got %v after %q, want a line", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// do sends s.send and reads until a line starting with s.want, skipping
// IMAP's untagged lines and failing on any other line.
func (w *wire) do(s step) string {
	w.t.Helper()
	if s.send != "" {
		w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.c.Write([]byte(s.send + "\r\n")); err != nil {
			w.t.Fatalf("send %q: %v", s.send, err)
		}
	}
	for {
		l := w.line()
		if strings.HasPrefix(l, s.want) {
			return l
		}
		if !strings.HasPrefix(l, "* ") {
			w.t.Fatalf("after %q: got %q, want %q", s.send, l, s.want)
		}
	}
}

func plainIR(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

// TestPlaintextLoginNeverReachesDovecot sends credentials before TLS on
// both STARTTLS listeners, as an old or misconfigured client would:
// mailfront must refuse them with the protocol's code and log it, and
// Dovecot must never see them (ARCHITECTURE.md invariant 1), which its own log
// proves.
//
// The absence check can fail: the control at the end sends the same
// dialogue straight to Dovecot's plaintext port under another name, and
// that name must show up in Dovecot's log, as must the user of the TLS
// login made through mailfront in the same window.
func TestPlaintextLoginNeverReachesDovecot(t *testing.T) {
	e := setup(t)
	// Sync point: a full IMAP and then POP3 login through mailfront, each
	// seen in Dovecot's log, so what Dovecot logs about start-up (the
	// readiness checks, mailfront's capability probes) is logged before
	// the mark.
	e.goLogin(t)
	e.goPOP3Login(t)
	dvMark, mfMark := e.dv.log.size(), e.mf.log.size()

	tests := []struct {
		name, listener, addr string
		steps                []step
	}{
		{"imap LOGIN and AUTHENTICATE before STARTTLS", lnIMAP, e.mf.imap, imapPlaintextLogin(canary)},
		{"pop3 USER/PASS and AUTH before STLS", lnPOP3, e.mf.pop3, pop3PlaintextLogin(canary)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := e.mf.log.size()
			w := dialWire(t, tt.addr)
			for _, s := range tt.steps {
				w.do(s)
			}
			w.c.Close()
			e.mf.log.wait(t, mark, regexp.MustCompile(`msg="plaintext login refused" .*listener=`+tt.listener+` .*user=`+canary), e.mf.exited)
			e.mf.sessionEnd(t, mark, tt.listener, "privacy-required")
		})
	}

	// Positive control through mailfront: a TLS login's user does appear in
	// Dovecot's log, in this window and in the same format.
	e.goLogin(t)
	e.goPOP3Login(t)
	if strings.Contains(e.dv.log.String(), canary) {
		t.Errorf("Dovecot's log names %q: a plaintext login crossed mailfront:\n%s", canary, e.dv.log.since(dvMark))
	}
	checkOnlyControls(t, e.dv.log.since(dvMark))
	if refused := lines(e.mf.log.since(mfMark), regexp.MustCompile(`msg="plaintext login refused"`)); len(refused) < 2 {
		t.Errorf("mailfront's log: got %d plaintext login refused lines, want at least one per listener", len(refused))
	}

	// Control for the absence check: the same plaintext dialogue sent
	// straight to Dovecot does leave the user name in its log.
	const direct = "direct-canary"
	w := dialWire(t, e.dv.imapAddr)
	w.do(step{"", "* OK "})
	w.do(step{"d1 LOGIN " + direct + ` "` + testPassword + `"`, "d1 NO"})
	w.do(step{"d2 LOGOUT", "d2 OK"})
	e.dv.log.wait(t, dvMark, regexp.MustCompile(`user=<`+direct+`>|\(`+direct+`,`), e.dv.exited)
}

// imapPlaintextLogin is a STARTTLS listener's dialogue with a client that
// logs in without STARTTLS, with LOGIN and then AUTHENTICATE PLAIN.
func imapPlaintextLogin(user string) []step {
	return []step{
		{"", "* OK "},
		{"a1 CAPABILITY", "a1 OK"},
		{"a2 LOGIN " + user + ` "` + testPassword + `"`, "a2 NO [PRIVACYREQUIRED]"},
		{"a3 AUTHENTICATE PLAIN " + plainIR(user, testPassword), "a3 NO [PRIVACYREQUIRED]"},
		{"a4 LOGOUT", "a4 OK"},
	}
}

// pop3PlaintextLogin is the same for POP3, with USER/PASS and AUTH PLAIN.
func pop3PlaintextLogin(user string) []step {
	return []step{
		{"", "+OK"},
		{"USER " + user, "-ERR [AUTH]"},
		{"PASS " + testPassword, "-ERR"},
		{"AUTH PLAIN " + plainIR(user, testPassword), "-ERR [AUTH]"},
		{"QUIT", "+OK"},
	}
}

// checkOnlyControls checks what Dovecot's login processes logged in window:
// the two control logins, and at most mailfront's capability probes, which
// log out without trying to authenticate. A refused login that mailfront
// forwarded would show up as an authentication attempt; a connection it
// opened for one and dropped, as a connection closed without LOGOUT.
func checkOnlyControls(t *testing.T, window string) {
	t.Helper()
	probe := regexp.MustCompile(`Aborted login by logging out \(no auth attempts`)
	logins := 0
	for _, l := range loginLines(window) {
		switch {
		case strings.Contains(l, "Login: user=<"+testUser+">"):
			logins++
		case probe.MatchString(l):
		default:
			t.Errorf("Dovecot's log: got %q, want only the control logins and capability probes after the plaintext attempts", l)
		}
	}
	if logins != 2 {
		t.Errorf("Dovecot's log: got %d logins of %s, want 2 (the controls)\n%s", logins, testUser, window)
	}
}

// goLogin logs in through mailfront's implicit TLS IMAP listener with
// go-imap, logs out, and waits for Dovecot to log the login.
func (e *env) goLogin(t *testing.T) {
	t.Helper()
	mark := e.dv.log.size()
	c := e.dialIMAP(t, false, nil)
	if err := c.Login(testUser, testPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("logout: %v", err)
	}
	e.dv.log.wait(t, mark, regexp.MustCompile(`imap-login: Info: Login: user=<`+testUser+`>`), e.dv.exited)
}

// goPOP3Login does the same over the POP3 STLS listener.
func (e *env) goPOP3Login(t *testing.T) {
	t.Helper()
	mark := e.dv.log.size()
	c := e.pop3Client(t, true)
	if err := c.Login(testUser, testPassword); err != nil {
		t.Fatalf("USER/PASS: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
	e.dv.log.wait(t, mark, regexp.MustCompile(`pop3-login: Info: Login: user=<`+testUser+`>`), e.dv.exited)
}
