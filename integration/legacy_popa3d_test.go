//go:build integration

package integration

// popa3d and solid-pop3d (Debian's packages of both) behind mailfront:
// small POP3 servers run from inetd, one process per connection, checking
// passwords in /etc/shadow through PAM and serving the mbox spool
// /var/mail/<user>. Both answer CAPA with -ERR (popa3d a bare one,
// solid-pop3d "-ERR unknown command"), so mailfront cannot learn that
// they implement TOP and UIDL (RFC 1939's optional commands) unless told.

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailfront/mailfront/internal/pop3client"
)

// popa3dPackages are the Debian packages of the popa3d root.
var popa3dPackages = []string{"popa3d"}

// solidPop3dPackages are the Debian packages of the solid-pop3d root.
var solidPop3dPackages = []string{"solid-pop3d"}

// mboxPOP3Users have passwords that go as they are in PASS.
var mboxPOP3Users = map[string]string{
	"mfquote": `with "quotes" and \back\slash\`,
	"mfspace": "  spaces  inside and around  ",
	"mfutf8":  "Grüße, 日本語 pass",
}

// addTopUIDL declares the commands popa3d and solid-pop3d implement but
// do not advertise.
const addTopUIDL = `, capabilities: {add: [TOP, UIDL]}`

// spoolGID is Debian's mail group, which owns /var/mail and its spools.
const spoolGID = 8

// mboxPOP3 is a POP3 server run from inetd in a root (popa3d,
// solid-pop3d), with users in /etc/shadow and mbox spools in /var/mail,
// behind a port that can be switched off and on (inetd stopped and
// started).
type mboxPOP3 struct {
	name    string // "popa3d", in messages
	root    string
	addr    string  // the port mailfront uses
	log     logFile // syslog
	loginRE *regexp.Regexp
	sw      *portSwitch
	users   map[string]string
}

// startMboxPOP3 makes the users (testUser and mboxPOP3Users, passwords
// set with chpasswd), testUser's spool holding testMessages(), and serves
// program from inetd.
func startMboxPOP3(t *testing.T, name string, packages []string, program string, loginRE *regexp.Regexp) *mboxPOP3 {
	t.Helper()
	root := legacyRoot(t, name, packages...)
	dir := t.TempDir()
	p := &mboxPOP3{name: name, root: root, loginRE: loginRE, users: map[string]string{testUser: testPassword}}
	for u, pw := range mboxPOP3Users {
		p.users[u] = pw
	}
	p.log = syslogIn(t, root, filepath.Join(dir, "syslog"))
	var chpasswd strings.Builder
	for u, pw := range p.users {
		// The users stay in the cached root; their passwords and
		// spools are set afresh on every run.
		if !rootHasUser(root, u) {
			runInRoot(t, root, nil, "useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", u)
		}
		fmt.Fprintf(&chpasswd, "%s:%s\n", u, pw)
	}
	runInRoot(t, root, []byte(chpasswd.String()), "chpasswd")
	for u := range p.users {
		spool := inRoot(root, "/var/mail/"+u)
		os.RemoveAll(spool)
		t.Cleanup(func() { os.Remove(spool) })
	}
	p.writeSpool(t, testUser, testMessages())

	errOut := filepath.Join(dir, name+".stderr")
	p.sw = switchPort(t, inetd(t, root, name, errOut, program))
	p.addr = p.sw.addr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's syslog:\n%s", name, p.log)
			t.Logf("%s's standard error:\n%s", name, logFile{errOut})
		}
	})
	return p
}

// rootHasUser reports whether root's /etc/passwd has user.
func rootHasUser(root, user string) bool {
	b, _ := os.ReadFile(inRoot(root, "/etc/passwd"))
	return bytes.Contains(append([]byte("\n"), b...), []byte("\n"+user+":"))
}

// writeSpool writes user's mbox spool, owned by the user and group mail
// as a local MDA leaves it.
func (p *mboxPOP3) writeSpool(t *testing.T, user string, msgs [][]byte) {
	t.Helper()
	uid, err := strconv.Atoi(strings.TrimSpace(runInRoot(t, p.root, nil, "id", "-u", user)))
	if err != nil {
		t.Fatal(err)
	}
	spool := inRoot(p.root, "/var/mail/"+user)
	writeFile(t, spool, mboxOf(msgs), 0o660)
	if err := os.Chown(spool, uid, spoolGID); err != nil {
		t.Fatal(err)
	}
}

// mboxFromLine matches the lines an mbox writer quotes (mboxrd): "From " after
// any number of '>'.
var mboxFromLine = regexp.MustCompile(`(?m)^(>*From )`)

// mboxOf is msgs in an mbox: each after a From_ line, with Unix line ends,
// "From " lines quoted with '>', and a blank line after it.
func mboxOf(msgs [][]byte) []byte {
	var b bytes.Buffer
	for i, m := range msgs {
		fmt.Fprintf(&b, "From mailfront-it@example.test Tue Nov 14 22:13:%02d 2023\n", 20+i)
		body := mboxFromLine.ReplaceAll(lf(m), []byte(">$1"))
		b.Write(body)
		if !bytes.HasSuffix(body, []byte("\n")) {
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// portSwitch is a loopback port that passes each connection on to
// another address while on and refuses connections while off: the inetd
// helper's listener cannot be closed and opened again on the same port,
// so this stands for inetd being stopped and started. It connects from
// the client's own address, so the server sees the address mailfront
// connected from (client_address: loopback).
type portSwitch struct {
	addr, to string
	ln       net.Listener
	done     chan struct{} // closed when ln's accept loop ends
	wg       sync.WaitGroup
	mu       sync.Mutex
	closed   bool
	conns    map[net.Conn]bool
}

func switchPort(t *testing.T, to string) *portSwitch {
	t.Helper()
	s := &portSwitch{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0])), to: to, conns: map[net.Conn]bool{}}
	s.on(t)
	t.Cleanup(func() {
		s.off(t)
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// on listens again on the switch's port.
func (s *portSwitch) on(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", s.addr, err)
	}
	s.ln, s.done = ln, make(chan struct{})
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go s.pass(c)
		}
	}()
}

// off closes the switch's port (connections already passed on go on).
func (s *portSwitch) off(t *testing.T) {
	t.Helper()
	if s.ln == nil {
		return
	}
	s.ln.Close()
	<-s.done
	s.ln = nil
}

// track adds (or removes) connections to close at the end of the test; it
// reports false once the test has ended.
func (s *portSwitch) track(add bool, conns ...net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range conns {
		if add {
			s.conns[c] = true
		} else {
			delete(s.conns, c)
		}
	}
	return !s.closed
}

// pass joins c to a new connection to s.to until either side ends.
func (s *portSwitch) pass(c net.Conn) {
	defer s.wg.Done()
	from := &net.TCPAddr{IP: c.RemoteAddr().(*net.TCPAddr).IP}
	b, err := (&net.Dialer{LocalAddr: from, Timeout: 10 * time.Second}).Dial("tcp", s.to)
	if err != nil {
		c.Close()
		return
	}
	defer s.track(false, c, b)
	if !s.track(true, c, b) {
		c.Close()
		b.Close()
		return
	}
	ended := make(chan struct{}, 2)
	go func() { io.Copy(b, c); ended <- struct{}{} }()
	go func() { io.Copy(c, b); ended <- struct{}{} }()
	<-ended
	c.Close()
	b.Close()
	<-ended
}

// server is p as the client matrix sees it, behind mailfront's POP3
// listeners with pop3Keys.
func (p *mboxPOP3) server(pop3Keys string) *legacyMailServer {
	others := map[string]string{}
	for u, pw := range p.users {
		if u != testUser {
			others[u] = pw
		}
	}
	return &legacyMailServer{
		name:       p.name,
		backends:   backends{pop3: p.addr, pop3Keys: pop3Keys},
		user:       testUser,
		password:   testPassword,
		log:        p.log,
		loginRE:    p.loginRE,
		stop:       func(t *testing.T) { p.sw.off(t) },
		start:      func(t *testing.T) { p.sw.on(t) },
		otherUsers: others,
	}
}

// unreadableSpool is what a server does when it cannot read the spool
// after a right password.
type unreadableSpool struct {
	reply string         // its whole answer to PASS
	log   *regexp.Regexp // its log line saying so
}

// testMboxPOP3 runs the POP3 client matrix in front of p, with TOP and
// UIDL declared in the listeners' capabilities (p answers CAPA with
// -ERR): mailfront says at start that the backend does not advertise its
// capabilities and offers what it was told. A second mailfront without
// the key warns, offers only what p advertises, neither TOP nor UIDL,
// and still relays UIDL. Last, a spool p cannot read after a right
// password. It returns the first mailfront.
func testMboxPOP3(t *testing.T, p *mboxPOP3, unreadable unreadableSpool) *front {
	s := p.server(addTopUIDL)
	mf := startMailfrontFor(t, s.frontBackends(t))
	t.Run("capabilities declared", func(t *testing.T) {
		// Declared, the refusal is no surprise: an INFO line.
		line := notAdvertised(t, mf, p.addr)
		if !strings.Contains(line, "level=INFO ") || !regexp.MustCompile(`offer="[^"]*\bTOP\b[^"]*\bUIDL\b`).MatchString(line) {
			t.Errorf("mailfront's log: got %q, want level=INFO with an offer of TOP and UIDL", line)
		}
		capa := mailfrontCapa(t, mf)
		for _, c := range []string{"USER", "TOP", "UIDL"} {
			if !hasCapFold(capa, c) {
				t.Errorf("mailfront's CAPA over TLS with add: [TOP, UIDL]: got %q, want %s", capa, c)
			}
		}
	})
	runLegacyMatrix(t, s, mf)

	t.Run("capabilities not declared", func(t *testing.T) {
		plain := startMailfrontFor(t, p.server("").frontBackends(t))
		// Undeclared, the operator is warned and told what to declare.
		line := notAdvertised(t, plain, p.addr)
		if !strings.Contains(line, "level=WARN ") || !strings.Contains(line, " hint=") || regexp.MustCompile(`offer="[^"]*\b(TOP|UIDL)\b`).MatchString(line) {
			t.Errorf("mailfront's log: got %q, want level=WARN with a hint and an offer without TOP or UIDL", line)
		}
		e := &env{mf: plain}
		c := e.pop3Client(t, false)
		if err := c.Login(testUser, testPassword); err != nil {
			t.Fatalf("USER/PASS: %v", err)
		}
		got := uidl(t, c)
		c.Quit()
		capa := mailfrontCapa(t, plain)
		for _, c := range []string{"TOP", "UIDL"} {
			if hasCapFold(capa, c) {
				t.Errorf("mailfront's CAPA over TLS without capabilities: got %q, want no %s (%s advertises none)", capa, c, p.name)
			}
		}
		if !hasCapFold(capa, "USER") {
			t.Errorf("mailfront's CAPA over TLS: got %q, want USER", capa)
		}
		d, err := pop3client.Dial(t.Context(), p.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Login(testUser, testPassword); err != nil {
			t.Fatalf("USER/PASS, directly: %v", err)
		}
		if want := uidl(t, d); !bytes.Equal(got, want) {
			t.Errorf("UIDL through mailfront: got %q, want what %s answers directly, %q", got, p.name, want)
		}
		d.Quit()
	})

	t.Run("spool unreadable", func(t *testing.T) { spoolUnreadable(t, p, &env{mf: mf}, unreadable) })
	// Once in the backend's life: not per listener, not per probe.
	if got := lines(mf.log.String(), regexp.MustCompile(`msg="backend does not advertise its capabilities"`)); len(got) != 1 {
		t.Errorf("mailfront's log after the matrix: got %d lines saying the backend does not advertise its capabilities, want 1: %q", len(got), got)
	}
	return mf
}

// TestPopa3d runs popa3d through testMboxPOP3. popa3d logs no client
// address (inetd gives it the connection; it logs the user and the
// outcome), so nothing tells it clients apart behind mailfront.
func TestPopa3d(t *testing.T) {
	// "Authentication passed for u" or "Authentication failed for u"
	// ("UNKNOWN USER" for none), one line for each password checked.
	p := startMboxPOP3(t, "popa3d", popa3dPackages, "/usr/sbin/popa3d",
		regexp.MustCompile(`popa3d\[\d+\]: Authentication (passed|failed) for `))
	testMboxPOP3(t, p, unreadableSpool{
		reply: "-ERR",
		log:   regexp.MustCompile(`popa3d\[\d+\]: Failed or refused to load /var/mail/` + testUser),
	})
}

// TestSolidPop3d runs solid-pop3d through testMboxPOP3, then checks that
// with client_address: loopback it logs each client network's own
// address ("connect from 127.x.y.z", "user u authenticated - 127.x.y.z").
func TestSolidPop3d(t *testing.T) {
	// "user u authenticated - host (addr)", "authentication failed for
	// user u - ..." or "authentication failed: no such user: u - ...".
	p := startMboxPOP3(t, "solid-pop3d", solidPop3dPackages, "/usr/sbin/solid-pop3d",
		regexp.MustCompile(`solid-pop3d\[\d+\]: (user \S+ authenticated|authentication failed)`))
	testMboxPOP3(t, p, unreadableSpool{
		reply: "-ERR can't open mailbox file",
		log:   regexp.MustCompile(`solid-pop3d\[\d+\]: mailbox: can't open mailbox file: /var/mail/` + testUser),
	})
	t.Run("client address loopback", func(t *testing.T) {
		lb := startMailfrontFor(t, p.server(addTopUIDL+", client_address: loopback").frontBackends(t))
		mark, mfMark := p.log.size(), lb.log.size()
		c := (&env{mf: lb}).pop3Client(t, false)
		if err := c.Login(testUser, testPassword); err != nil {
			t.Fatalf("USER/PASS: %v", err)
		}
		c.Quit()
		line := lb.log.wait(t, mfMark, regexp.MustCompile(`msg=login .*listener=`+lnPOP3S+` .*backend_source=`), lb.exited)
		src, _ := logAttr(line, "backend_source")
		if !strings.HasPrefix(src, "127.") || src == "127.0.0.1" {
			t.Fatalf("mailfront's login line: got backend_source=%q, want an address in 127.0.0.0/8 other than 127.0.0.1", src)
		}
		// "- 127.x.y.z", or "- name (127.x.y.z)" for an address with a name.
		p.log.wait(t, mark, regexp.MustCompile(`user `+testUser+` authenticated - (\S+ \()?`+regexp.QuoteMeta(src)+`\)?$`), nil)
	})
}

// notAdvertised waits for mailfront's line saying the POP3 backend at
// addr refused CAPA, which it logs once at start (its first probe), and
// returns it.
func notAdvertised(t *testing.T, mf *front, addr string) string {
	t.Helper()
	re := regexp.MustCompile(`msg="backend does not advertise its capabilities" .*backend=` + regexp.QuoteMeta(addr) + ` `)
	return mf.log.wait(t, 0, re, mf.exited)
}

// mailfrontCapa is mailfront's CAPA over TLS, after a login through it:
// mailfront then has asked the backend for its CAPA.
func mailfrontCapa(t *testing.T, mf *front) []string {
	t.Helper()
	e := &env{mf: mf}
	c := e.pop3Client(t, false)
	if err := c.Login(testUser, testPassword); err != nil {
		t.Fatalf("USER/PASS: %v", err)
	}
	c.Quit()
	w := dialTLSWire(t, mf, mf.pop3s)
	w.do(step{"", "+OK"})
	capa := pop3Capa(w)
	w.do(step{"QUIT", "+OK"})
	return capa
}

// uidl sends UIDL and returns its listing.
func uidl(t *testing.T, c *pop3client.Client) []byte {
	t.Helper()
	if _, err := c.Cmd("UIDL"); err != nil {
		t.Fatalf("UIDL: %v", err)
	}
	b, err := c.ReadMultiline()
	if err != nil {
		t.Fatalf("UIDL: %v", err)
	}
	if n := bytes.Count(b, []byte("\r\n")); n != len(testMessages()) {
		t.Errorf("UIDL: got %d lines (%q), want %d", n, b, len(testMessages()))
	}
	return b
}

// spoolUnreadable makes the spool unreadable to its owner. The server
// checks the password first, then fails to open the mailbox, logs it, and
// answers PASS with an -ERR that carries no response code (popa3d: a bare
// "-ERR"; solid-pop3d: "-ERR can't open mailbox file"). Nothing in that
// line tells a client, or mailfront, that the password was right:
// mailfront counts it as a failed login (login failed, -ERR [AUTH]) by
// design, the price of never reading a server's free text as backend
// trouble (Courier's "Temporary problem" is the one exception, being
// Courier's fixed answer for its authentication being down); a user locked
// out by their own mailbox shows up in the server's log, not as backend
// trouble in mailfront's.
func spoolUnreadable(t *testing.T, p *mboxPOP3, e *env, want unreadableSpool) {
	spool := inRoot(p.root, "/var/mail/"+testUser)
	if err := os.Chmod(spool, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(spool, 0o660)

	mark := p.log.size()
	w := dialWire(t, p.addr)
	w.do(step{"", "+OK"})
	w.do(step{"USER " + testUser, "+OK"})
	if got := w.do(step{"PASS " + testPassword, "-ERR"}); got != want.reply {
		t.Errorf("%s's PASS with the spool unreadable: got %q, want %q", p.name, got, want.reply)
	}
	p.log.wait(t, mark, want.log, nil)

	mf := e.mf
	mfMark := mf.log.size()
	c := e.pop3Client(t, false)
	if line, ok := pop3client.IsERR(c.Login(testUser, testPassword)); !ok || !strings.HasPrefix(line, "-ERR [AUTH]") {
		t.Errorf("USER/PASS through mailfront with the spool unreadable: got %q, want -ERR [AUTH] (an -ERR without a code is a failed login)", line)
	}
	mf.log.wait(t, mfMark, regexp.MustCompile(`msg="login failed" .*listener=`+lnPOP3S+` .*user=`+testUser+` .*outcome=auth-failed`), mf.exited)
	if down := lines(mf.log.since(mfMark), regexp.MustCompile(`msg="backend unavailable"`)); len(down) > 0 {
		t.Errorf("mailfront logged %q, want a failed login: an -ERR without a code carries no sign of backend trouble", down)
	}
}
