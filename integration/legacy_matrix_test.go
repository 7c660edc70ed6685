//go:build integration

package integration

// The client matrix every legacy server goes through: the clients of the
// Dovecot tests (curl, Python's imaplib and poplib, fetchmail, mbsync, the
// Go clients) through each of mailfront's listeners in front of a legacy
// server's plaintext IMAP and POP3, compared byte for byte with what the
// server itself serves over a direct plaintext connection.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailfront/mailfront/internal/pop3client"
)

// legacyMailServer is a legacy server running for a test, as the client matrix sees it.
// (The agreed name was legacyServer, which openssl_test.go already gives
// its TLS 1.0 server.)
type legacyMailServer struct {
	name           string                         // "courier", in messages
	backends       backends                       // its plaintext IMAP and/or POP3 address (empty: none), and listener keys
	user, password string                         // a mailbox holding testMessages() in its INBOX, in that order
	log            logFile                        // where it logs logins, to prove a login before TLS never reached it
	loginRE        *regexp.Regexp                 // matches a line in log for a (successful or failed) login attempt of any user
	deliver        func(t *testing.T, msg []byte) // puts a new message in the INBOX (for IDLE); nil when not possible
	stop, start    func(t *testing.T)             // stops the server and starts it again on the same ports (the backend restarted); what start starts must live until the whole test ends, not the subtest t's end
	idle           bool                           // the IMAP server pushes new mail during IDLE
	otherUsers     map[string]string              // more user -> password pairs with hard passwords (quotes, backslashes, spaces, UTF-8)
	exact          bool                           // it serves testMessages() byte for byte (a maildir server); false: clients are only compared with what it serves directly (an mbox server)
	storeHeaders   *regexp.Regexp                 // header lines the server adds to a message it stores (Mailutils' X-UID, Status, X-IMAPbase); nil: none
}

// legacyIdleWait bounds how long an IDLE client waits for the server to
// announce a new message.
const legacyIdleWait = 30 * time.Second

// testLegacyMatrix runs every client through every listener kind in front of s.
func testLegacyMatrix(t *testing.T, s *legacyMailServer) {
	t.Helper()
	mf := startMailfrontFor(t, s.frontBackends(t))
	runLegacyMatrix(t, s, mf)
}

// frontBackends is s.backends with an address where nothing listens in
// place of a protocol s does not serve: mailfront's listeners for it still
// open, and mailfront only learns the backend is missing when it dials.
func (s *legacyMailServer) frontBackends(t *testing.T) backends {
	t.Helper()
	b := s.backends
	if b.imap == "" && b.pop3 == "" {
		t.Fatalf("%s: the matrix needs an IMAP or a POP3 address", s.name)
	}
	if b.imap == "" || b.pop3 == "" {
		dead := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePorts(t, 1)[0]))
		if b.imap == "" {
			b.imap = dead
		}
		if b.pop3 == "" {
			b.pop3 = dead
		}
	}
	return b
}

// runLegacyMatrix is testLegacyMatrix with mailfront already running in
// front of s (a test that wants to look at mailfront's start-up log, or
// gives its listeners extra keys, starts it itself). The backend-stopped
// case runs last: it restarts the server.
func runLegacyMatrix(t *testing.T, s *legacyMailServer, mf *front) {
	t.Helper()
	if s.loginRE == nil || s.stop == nil || s.start == nil {
		t.Fatalf("%s: the matrix needs loginRE, stop and start", s.name)
	}
	e := &env{mf: mf}
	if s.backends.pop3 != "" {
		t.Run("pop3", func(t *testing.T) { legacyPOP3(t, s, e) })
	}
	if s.backends.imap != "" {
		t.Run("imap", func(t *testing.T) { legacyIMAP(t, s, e) })
	}
	if len(s.otherUsers) > 0 {
		t.Run("other users", func(t *testing.T) { legacyOtherUsers(t, s, mf) })
	}
	t.Run("backend stopped and started", func(t *testing.T) { legacyBackendDown(t, s, e) })
	logs := mf.log.String()
	for user, password := range s.otherUsers {
		if strings.Contains(logs, password) {
			t.Errorf("mailfront's log contains the password of %s", user)
		}
	}
}

// storedMessage is a message as the server itself serves it over a direct
// plaintext connection: the reference the matrix compares clients with.
type storedMessage struct {
	uid  imap.UID // IMAP only
	body []byte
}

// messageID is the Message-ID header line of a test message.
var messageID = regexp.MustCompile(`(?m)^Message-ID: <[^>]+>`)

// checkInbox checks that the messages a server serves directly are
// testMessages(), in order: byte for byte when s.exact, else each carries
// the Message-ID of the message stored there (an mbox server serves what
// it keeps, which the matrix then compares clients with).
func checkInbox(t *testing.T, s *legacyMailServer, proto string, got []storedMessage) {
	t.Helper()
	want := testMessages()
	if len(got) != len(want) {
		t.Fatalf("%s %s INBOX, read directly: got %d messages, want %d", s.name, proto, len(got), len(want))
	}
	for i, w := range want {
		id := messageID.Find(w)
		if !bytes.Contains(got[i].body, id) {
			t.Fatalf("%s %s message %d, read directly: got %d bytes (%.120q...), want the message with %s", s.name, proto, i+1, len(got[i].body), got[i].body, id)
		}
		if s.exact && !bytes.Equal(got[i].body, w) {
			t.Fatalf("%s %s message %d, read directly: got %d bytes (%.120q...), want the %d bytes of testMessages(), byte for byte", s.name, proto, i+1, len(got[i].body), got[i].body, len(w))
		}
	}
}

// directIMAP logs in to s's plaintext IMAP server itself, not through
// mailfront.
func (s *legacyMailServer) directIMAP(t *testing.T, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(s.backends.imap, opts)
	if err != nil {
		t.Fatalf("%s IMAP, directly: %v", s.name, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.user, s.password).Wait(); err != nil {
		t.Fatalf("%s IMAP LOGIN, directly: %v", s.name, err)
	}
	return c
}

// imapInbox reads every message of the INBOX (UID and BODY[]) in order.
func imapInbox(t *testing.T, c *imapclient.Client) []storedMessage {
	t.Helper()
	sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("EXAMINE INBOX: %v", err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	var set imap.SeqSet
	set.AddRange(1, sel.NumMessages)
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatalf("FETCH 1:%d (UID BODY.PEEK[]): %v", sel.NumMessages, err)
	}
	out := make([]storedMessage, sel.NumMessages)
	for _, m := range msgs {
		if m.SeqNum < 1 || int(m.SeqNum) > len(out) || len(m.BodySection) != 1 {
			t.Fatalf("FETCH: got message %d with %d body sections, want 1..%d with one", m.SeqNum, len(m.BodySection), len(out))
		}
		out[m.SeqNum-1] = storedMessage{uid: m.UID, body: m.BodySection[0].Bytes}
	}
	return out
}

// expungeDirect removes messages a test added to the INBOX (by UID), over
// a direct connection, so the next case finds testMessages() alone.
func (s *legacyMailServer) expungeDirect(t *testing.T, uids ...imap.UID) {
	t.Helper()
	c := s.directIMAP(t, nil)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("SELECT INBOX, directly: %v", err)
	}
	store := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := c.Store(imap.UIDSetNum(uids...), store, nil).Close(); err != nil {
		t.Fatalf("UID STORE %v +FLAGS (\\Deleted), directly: %v", uids, err)
	}
	// CLOSE rather than EXPUNGE: it expunges without untagged EXPUNGE
	// responses, which Mailutils misspells (* n EXPUNGED).
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatalf("CLOSE, directly: %v", err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT, directly: %v", err)
	}
}

// curlFetch runs curl against a mailfront listener the way TestCurl does
// (the URL names localhost, pinned to 127.0.0.1 with --resolve; the test
// root only) as user.
func curlFetch(t *testing.T, mf *front, user, password, scheme, addr, path string, extra ...string) result {
	t.Helper()
	p := port(addr)
	args := []string{"-sS", "--max-time", "60",
		"--resolve", "localhost:" + p + ":127.0.0.1",
		"--cacert", mf.caFile,
		"-u", user + ":" + password}
	args = append(args, extra...)
	args = append(args, scheme+"://localhost:"+p+path)
	return runClient(t, nil, nil, tool(t, "curl", "curl"), args...)
}

// curlCase is one curl run of the matrix.
type curlCase struct {
	name, scheme, addr, path string
	extra                    []string
	wantCode                 int
	want                     []byte // exact standard output, when set
	contains                 string // standard output contains it, when set
}

func runCurlCases(t *testing.T, s *legacyMailServer, mf *front, cases []curlCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run("curl "+tt.name, func(t *testing.T) {
			r := curlFetch(t, mf, s.user, s.password, tt.scheme, tt.addr, tt.path, tt.extra...)
			if r.code != tt.wantCode {
				t.Fatalf("curl %s://...%s: got exit %d, want %d\n%s", tt.scheme, tt.path, r.code, tt.wantCode, r)
			}
			if tt.want != nil && !bytes.Equal(r.stdout, tt.want) {
				t.Errorf("got %d bytes (%.80q...), want the %d bytes %s serves directly (%.80q...), byte for byte", len(r.stdout), r.stdout, len(tt.want), s.name, tt.want)
			}
			if tt.contains != "" && !strings.Contains(string(r.stdout), tt.contains) {
				t.Errorf("got output %q, want it to contain %q", clip(r.stdout), tt.contains)
			}
		})
	}
}

// pythonFetch runs testdata/mailclient.py in mode against addr and returns
// the message it fetched (msg: a UID for IMAP, a number for POP3), after
// checking it logged in and counted want messages.
func pythonFetch(t *testing.T, s *legacyMailServer, mf *front, mode, addr string, msg, want int) []byte {
	t.Helper()
	script, err := filepath.Abs("testdata/mailclient.py")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "message")
	r := runClient(t, nil, nil, python(t), script, mode,
		"--host", "localhost", "--port", port(addr), "--cafile", mf.caFile,
		"--user", s.user, "--password", s.password,
		"--msg", strconv.Itoa(msg), "--out", out)
	if r.code != 0 {
		t.Fatalf("mailclient.py %s: got %s\nwant exit 0", mode, r)
	}
	if w := "count " + strconv.Itoa(want) + "\n"; !strings.HasPrefix(string(r.stdout), w) {
		t.Errorf("got output %q, want it to start with %q", r.stdout, w)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// sameBytes fails unless got is want, byte for byte.
func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got %d bytes (%.80q...), want the %d bytes the server serves directly (%.80q...), byte for byte", what, len(got), got, len(want), want)
	}
}

// dialTLSWire is a line client (plaintext_test.go's wire) over implicit TLS
// to a mailfront listener.
func dialTLSWire(t *testing.T, mf *front, addr string) *wire {
	t.Helper()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: mf.tlsConfig()}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &wire{t: t, c: c, r: bufio.NewReader(c)}
}

// imapCapability sends CAPABILITY on w (greeting already read) and returns
// the atoms of its untagged answer.
func imapCapability(w *wire) []string {
	w.t.Helper()
	if _, err := w.c.Write([]byte("c CAPABILITY\r\n")); err != nil {
		w.t.Fatal(err)
	}
	var caps []string
	for l := w.line(); !strings.HasPrefix(l, "c "); l = w.line() {
		if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
			caps = append(caps, strings.Fields(rest)...)
		}
	}
	return caps
}

// imapLoginCaps are the capabilities that describe logging in or TLS,
// which mailfront answers for itself: a backend's are not offered as they
// are.
var imapLoginCaps = regexp.MustCompile(`(?i)^(IMAP4REV1|IMAP4REV2|STARTTLS|LOGINDISABLED|SASL-IR|ID|LITERAL[+-]|LOGIN-REFERRALS|UNAUTHENTICATE|AUTH=.*)$`)

// pop3SessionCaps are the POP3 capabilities that describe the session
// after login, which mailfront repeats from the backend's CAPA.
var pop3SessionCaps = regexp.MustCompile(`^(TOP|UIDL|PIPELINING|EXPIRE|LOGIN-DELAY)( |$)`)

func legacyIMAP(t *testing.T, s *legacyMailServer, e *env) {
	mf := e.mf
	direct := s.directIMAP(t, nil)
	stored := imapInbox(t, direct)
	checkInbox(t, s, "IMAP", stored)
	if err := direct.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT, directly: %v", err)
	}
	uid := func(i int) string { return strconv.FormatUint(uint64(stored[i].uid), 10) }

	var cases []curlCase
	for i, m := range stored {
		cases = append(cases,
			curlCase{name: "imaps fetch message " + strconv.Itoa(i+1), scheme: "imaps", addr: mf.imaps, path: "/INBOX;UID=" + uid(i), want: m.body},
			curlCase{name: "imap STARTTLS fetch message " + strconv.Itoa(i+1), scheme: "imap", addr: mf.imap, path: "/INBOX;UID=" + uid(i), extra: []string{"--ssl-reqd"}, want: m.body})
	}
	cases = append(cases,
		curlCase{name: "imaps list mailboxes", scheme: "imaps", addr: mf.imaps, path: "/", contains: "INBOX"},
		// Without TLS mailfront offers no way to log in (LOGINDISABLED):
		// 67 is CURLE_LOGIN_DENIED.
		curlCase{name: "imap without TLS", scheme: "imap", addr: mf.imap, path: "/INBOX;UID=" + uid(0), wantCode: 67, want: []byte{}})
	runCurlCases(t, s, mf, cases)

	for _, tt := range []struct {
		mode, addr string
		msg        int // index in stored
	}{{"imaps", mf.imaps, 1}, {"imaps", mf.imaps, 2}, {"imap-starttls", mf.imap, 0}, {"imap-starttls", mf.imap, 2}} {
		t.Run(fmt.Sprintf("python %s message %d", tt.mode, tt.msg+1), func(t *testing.T) {
			got := pythonFetch(t, s, mf, tt.mode, tt.addr, int(stored[tt.msg].uid), len(stored))
			sameBytes(t, "imaplib UID FETCH "+uid(tt.msg), got, stored[tt.msg].body)
		})
	}

	t.Run("mbsync imaps", func(t *testing.T) { legacyMbsync(t, s, mf, stored) })
	t.Run("capabilities", func(t *testing.T) { legacyIMAPCaps(t, s, e) })
	if s.idle {
		t.Run("IDLE", func(t *testing.T) { legacyIdle(t, s, e) })
	}
	t.Run("1 MB APPEND", func(t *testing.T) { legacyAppend(t, s, e) })
	t.Run("wrong password", func(t *testing.T) {
		sMark, mfMark := s.log.size(), mf.log.size()
		c := e.dialIMAP(t, false, nil)
		err := c.Login(s.user, wrongPassword).Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeAuthenticationFailed {
			t.Errorf("LOGIN with a wrong password: got %v, want NO [AUTHENTICATIONFAILED]", err)
		}
		mf.log.wait(t, mfMark, regexp.MustCompile(`msg="login failed" .*listener=`+lnIMAPS+` .*user=`+regexp.QuoteMeta(s.user)+` .*outcome=auth-failed`), mf.exited)
		s.log.wait(t, sMark, s.loginRE, nil)
	})
	t.Run("login before STARTTLS never reaches "+s.name, func(t *testing.T) {
		legacyPlaintext(t, s, mf, lnIMAP, mf.imap, imapPlaintextLogin(canary), func(t *testing.T) {
			c := e.dialIMAP(t, true, nil)
			if err := c.Login(s.user, s.password).Wait(); err != nil {
				t.Fatalf("LOGIN after STARTTLS: %v", err)
			}
			c.Logout().Wait()
		})
	})
}

// legacyMbsync syncs the INBOX over IMAPS into a local maildir: every
// message arrives as the server serves it (with Unix line ends).
func legacyMbsync(t *testing.T, s *legacyMailServer, mf *front, stored []storedMessage) {
	sync := mbsyncTo(t, port(mf.imaps), s.user, s.password, "IMAPS", mf.caFile)
	var want [][]byte
	for _, m := range stored {
		want = append(want, lf(m.body))
	}
	sameMessages(t, sync(len(want)), want)
}

// legacyIMAPCaps checks what mailfront offers before login over TLS: the
// backend's own CAPABILITY, but for what concerns logging in and TLS.
func legacyIMAPCaps(t *testing.T, s *legacyMailServer, e *env) {
	// A login through mailfront first: mailfront then knows the backend's
	// capabilities (until it has reached the backend it offers its own).
	c := e.dialIMAP(t, false, nil)
	if err := c.Login(s.user, s.password).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	c.Logout().Wait()

	w := dialWire(t, s.backends.imap)
	w.do(step{"", "* OK"})
	backend := imapCapability(w)
	w.do(step{"l LOGOUT", "l OK"})
	fw := dialTLSWire(t, e.mf, e.mf.imaps)
	fw.do(step{"", "* OK"})
	offered := imapCapability(fw)
	fw.do(step{"l LOGOUT", "l OK"})
	for _, c := range backend {
		if imapLoginCaps.MatchString(c) {
			continue
		}
		if !hasCapFold(offered, c) {
			t.Errorf("mailfront's CAPABILITY over TLS lacks %s, which %s offers: got %q, %s offers %q", c, s.name, offered, s.name, backend)
		}
	}
	for _, c := range []string{"STARTTLS", "LOGINDISABLED"} {
		if hasCapFold(offered, c) {
			t.Errorf("mailfront's CAPABILITY over TLS: got %q, want no %s", offered, c)
		}
	}
}

func hasCapFold(caps []string, c string) bool {
	for _, x := range caps {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}

// legacyIdle idles through mailfront while a message arrives (s.deliver,
// or a direct APPEND when the server has no other way): the server's
// EXISTS must come through the relay, and the message be fetched through
// mailfront as the server serves it directly.
func legacyIdle(t *testing.T, s *legacyMailServer, e *env) {
	msg := newMessage("delivered to " + s.name + " while idling")
	c, sel := e.idleThrough(t, true, s.user, s.password, func() {
		if s.deliver != nil {
			s.deliver(t, msg)
			return
		}
		d := s.directIMAP(t, nil)
		if _, err := appendMessage(d, msg); err != nil {
			t.Fatalf("APPEND, directly: %v", err)
		}
		d.Logout().Wait()
	}, legacyIdleWait)
	want := sel.NumMessages + 1
	got := fetchSeq(t, c, want)
	c.Logout().Wait()
	d := s.directIMAP(t, nil)
	stored := imapInbox(t, d)
	d.Logout().Wait()
	if len(stored) != int(want) {
		t.Fatalf("INBOX, read directly: got %d messages, want %d", len(stored), want)
	}
	defer s.expungeDirect(t, stored[want-1].uid)
	if !bytes.Contains(got.body, messageID.Find(msg)) || got.uid != stored[want-1].uid {
		t.Errorf("the new message through mailfront: got UID %d (%.120q...), want UID %d with %s", got.uid, got.body, stored[want-1].uid, messageID.Find(msg))
	}
	sameBytes(t, "the new message", got.body, stored[want-1].body)
}

// fetchSeq fetches the UID and BODY.PEEK[] of message seq.
func fetchSeq(t *testing.T, c *imapclient.Client, seq uint32) storedMessage {
	t.Helper()
	section := &imap.FetchItemBodySection{Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		t.Fatalf("FETCH %d: %v", seq, err)
	}
	if len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		t.Fatalf("FETCH %d: got %d messages, want 1 with one body section", seq, len(msgs))
	}
	return storedMessage{uid: msgs[0].UID, body: msgs[0].BodySection[0].Bytes}
}

// appendMessage appends msg to the INBOX.
func appendMessage(c *imapclient.Client, msg []byte) (*imap.AppendData, error) {
	app := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := app.Write(msg); err != nil {
		return nil, err
	}
	if err := app.Close(); err != nil {
		return nil, err
	}
	return app.Wait()
}

// megabyteMessage is a 1 MB message with CRLF line ends.
func megabyteMessage() []byte {
	var b bytes.Buffer
	b.Write(newMessage("one megabyte appended through mailfront"))
	for i := 0; b.Len() < 1<<20; i++ {
		fmt.Fprintf(&b, "appended %07d %s\r\n", i, strings.Repeat("abcdefghij", 7))
	}
	return b.Bytes()
}

// legacyAppend appends 1 MB through mailfront's implicit TLS listener and
// reads it back directly from the server: the relay from client to
// backend carries every byte.
func legacyAppend(t *testing.T, s *legacyMailServer, e *env) {
	msg := megabyteMessage()
	c := e.dialIMAP(t, false, nil)
	if err := c.Login(s.user, s.password).Wait(); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	if _, err := appendMessage(c, msg); err != nil {
		t.Fatalf("APPEND of %d bytes: %v", len(msg), err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Errorf("LOGOUT: %v", err)
	}
	d := s.directIMAP(t, nil)
	stored := imapInbox(t, d)
	d.Logout().Wait()
	if n := len(testMessages()) + 1; len(stored) != n {
		t.Fatalf("INBOX after APPEND, read directly: got %d messages, want %d", len(stored), n)
	}
	last := stored[len(stored)-1]
	defer s.expungeDirect(t, last.uid)
	body := last.body
	if s.storeHeaders != nil {
		body = s.storeHeaders.ReplaceAll(body, nil)
	}
	if !bytes.Equal(body, msg) {
		t.Errorf("the appended message, read directly: got %d bytes (%.80q...), want the %d bytes appended through mailfront (%.80q...), byte for byte",
			len(body), body, len(msg), msg)
	}
}

// legacyPlaintext sends credentials before STARTTLS/STLS on a STARTTLS
// listener (steps): mailfront refuses them, and the server must never see
// a login attempt. The check can fail: a login through mailfront after
// TLS (control) must be the one attempt the server logs after the
// plaintext ones, so the log is being written and s.loginRE finds
// logins in it; the wrong-password case shows it finds failed ones too.
// (A server that logs an attempt only after answering it could log a
// forwarded one after the control; Courier, popa3d and solid-pop3d log
// before their failed-login delay, and so before answering.)
func legacyPlaintext(t *testing.T, s *legacyMailServer, mf *front, listener, addr string, steps []step, control func(t *testing.T)) {
	sMark, mfMark := s.log.size(), mf.log.size()
	w := dialWire(t, addr)
	for _, st := range steps {
		w.do(st)
	}
	w.c.Close()
	mf.log.wait(t, mfMark, regexp.MustCompile(`msg="plaintext login refused" .*listener=`+listener+` .*user=`+canary), mf.exited)
	mf.sessionEnd(t, mfMark, listener, "privacy-required")

	control(t)
	s.log.wait(t, sMark, s.loginRE, nil)
	window := s.log.since(sMark)
	if got := lines(window, s.loginRE); len(got) != 1 {
		t.Errorf("%s's log after the plaintext attempts: got %d login lines %q, want 1 (the control login after TLS)\n%s", s.name, len(got), got, window)
	}
	if strings.Contains(window, canary) {
		t.Errorf("%s's log names %q: a plaintext login crossed mailfront:\n%s", s.name, canary, window)
	}
}

// directPOP3 logs in to s's plaintext POP3 server itself.
func (s *legacyMailServer) directPOP3(t *testing.T) *pop3client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	c, err := pop3client.Dial(ctx, s.backends.pop3)
	if err != nil {
		t.Fatalf("%s POP3, directly: %v", s.name, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(s.user, s.password); err != nil {
		t.Fatalf("%s POP3 USER/PASS, directly: %v", s.name, err)
	}
	return c
}

// pop3Maildrop reads LIST and every message.
func pop3Maildrop(t *testing.T, c *pop3client.Client) ([]storedMessage, map[int]int64) {
	t.Helper()
	sizes, err := c.List()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	var out []storedMessage
	for i := 1; i <= len(sizes); i++ {
		b, err := c.Retr(i)
		if err != nil {
			t.Fatalf("RETR %d: %v", i, err)
		}
		out = append(out, storedMessage{body: b})
	}
	return out, sizes
}

func legacyPOP3(t *testing.T, s *legacyMailServer, e *env) {
	mf := e.mf
	direct := s.directPOP3(t)
	stored, sizes := pop3Maildrop(t, direct)
	checkInbox(t, s, "POP3", stored)
	if err := direct.Quit(); err != nil {
		t.Errorf("QUIT, directly: %v", err)
	}
	var list strings.Builder
	for i := 1; i <= len(sizes); i++ {
		fmt.Fprintf(&list, "%d %d\r\n", i, sizes[i])
	}

	cases := []curlCase{
		{name: "pop3s list", scheme: "pop3s", addr: mf.pop3s, path: "/", want: []byte(list.String())},
		{name: "pop3 STLS list", scheme: "pop3", addr: mf.pop3, path: "/", extra: []string{"--ssl-reqd"}, want: []byte(list.String())},
	}
	for i, m := range stored {
		n := strconv.Itoa(i + 1)
		cases = append(cases,
			curlCase{name: "pop3s RETR " + n, scheme: "pop3s", addr: mf.pop3s, path: "/" + n, want: m.body},
			curlCase{name: "pop3 STLS RETR " + n, scheme: "pop3", addr: mf.pop3, path: "/" + n, extra: []string{"--ssl-reqd"}, want: m.body})
	}
	// Without TLS mailfront's CAPA offers no way to log in: curl gives up
	// with 67, CURLE_LOGIN_DENIED.
	cases = append(cases, curlCase{name: "pop3 without TLS", scheme: "pop3", addr: mf.pop3, path: "/1", wantCode: 67, want: []byte{}})
	runCurlCases(t, s, mf, cases)

	for _, tt := range []struct {
		mode, addr string
		msg        int
	}{{"pop3s", mf.pop3s, 2}, {"pop3s", mf.pop3s, 3}, {"pop3-stls", mf.pop3, 1}, {"pop3-stls", mf.pop3, 2}} {
		t.Run(fmt.Sprintf("python %s message %d", tt.mode, tt.msg), func(t *testing.T) {
			got := pythonFetch(t, s, mf, tt.mode, tt.addr, tt.msg, len(stored))
			// poplib drops line ends and mailclient.py ends every line
			// with CRLF: the same bytes for a message stored with CRLF.
			sameBytes(t, "poplib RETR "+strconv.Itoa(tt.msg), got, stored[tt.msg-1].body)
		})
	}

	t.Run("fetchmail pop3s", func(t *testing.T) { legacyFetchmail(t, s, mf, stored) })
	t.Run("capabilities", func(t *testing.T) { legacyPOP3Caps(t, s, e) })
	t.Run("wrong password", func(t *testing.T) {
		sMark, mfMark := s.log.size(), mf.log.size()
		c := e.pop3Client(t, true)
		if line, ok := pop3client.IsERR(c.Login(s.user, wrongPassword)); !ok || !strings.HasPrefix(line, "-ERR [AUTH]") {
			t.Errorf("USER/PASS with a wrong password: got %q, want -ERR [AUTH]", line)
		}
		mf.log.wait(t, mfMark, regexp.MustCompile(`msg="login failed" .*listener=`+lnPOP3+` .*user=`+regexp.QuoteMeta(s.user)+` .*outcome=auth-failed`), mf.exited)
		s.log.wait(t, sMark, s.loginRE, nil)
	})
	t.Run("login before STLS never reaches "+s.name, func(t *testing.T) {
		legacyPlaintext(t, s, mf, lnPOP3, mf.pop3, pop3PlaintextLogin(canary), func(t *testing.T) {
			c := e.pop3Client(t, true)
			if err := c.Login(s.user, s.password); err != nil {
				t.Fatalf("USER/PASS after STLS: %v", err)
			}
			c.Quit()
		})
	})
}

// legacyFetchmail runs fetchmail once over POP3S: it must retrieve every
// message as the server serves it (with Unix line ends).
func legacyFetchmail(t *testing.T, s *legacyMailServer, mf *front, stored []storedMessage) {
	r, out := fetchmailOnce(t, "POP3", port(mf.pop3s), s.user, s.password, "ssl", mf.caFile)
	if r.code != 0 {
		t.Fatalf("fetchmail: got %s\nwant exit 0", r)
	}
	if want := fmt.Sprintf("%d messages for %s at localhost", len(stored), s.user); !strings.Contains(string(r.stderr)+string(r.stdout), want) {
		t.Errorf("got %s\nwant %q", r, want)
	}
	var want [][]byte
	for _, m := range stored {
		want = append(want, lf(m.body))
	}
	sameMessages(t, readDir(t, out), want)
}

// legacyPOP3Caps checks mailfront's CAPA over TLS: USER, and the
// backend's capabilities that describe the session after login (TOP,
// UIDL...), which mailfront repeats. A backend that refuses CAPA
// advertises none.
func legacyPOP3Caps(t *testing.T, s *legacyMailServer, e *env) {
	// A login through mailfront first, so it knows the backend's CAPA.
	c := e.pop3Client(t, false)
	if err := c.Login(s.user, s.password); err != nil {
		t.Fatalf("USER/PASS: %v", err)
	}
	c.Quit()

	w := dialWire(t, s.backends.pop3)
	w.do(step{"", "+OK"})
	w.c.Write([]byte("CAPA\r\n"))
	var backend []string
	if l := w.line(); strings.HasPrefix(l, "+OK") {
		for l = w.line(); l != "."; l = w.line() {
			backend = append(backend, l)
		}
	}
	w.do(step{"QUIT", "+OK"})
	fw := dialTLSWire(t, e.mf, e.mf.pop3s)
	fw.do(step{"", "+OK"})
	offered := pop3Capa(fw)
	fw.do(step{"QUIT", "+OK"})
	want := []string{"USER"}
	for _, l := range backend {
		if pop3SessionCaps.MatchString(l) {
			want = append(want, l)
		}
	}
	for _, c := range want {
		if !hasCapFold(offered, c) {
			t.Errorf("mailfront's CAPA over TLS lacks %q: got %q, %s's CAPA is %q", c, offered, s.name, backend)
		}
	}
}

// legacyOtherUsers logs every user of s.otherUsers in through mailfront
// with Python's imaplib (LOGIN with the password quoted, or as a literal
// when it is not ASCII, which imaplib does not quote; and AUTHENTICATE
// PLAIN, which mailfront turns into its own LOGIN) and poplib (USER/PASS).
func legacyOtherUsers(t *testing.T, s *legacyMailServer, mf *front) {
	script := filepath.Join(t.TempDir(), "login.py")
	if err := os.WriteFile(script, []byte(legacyLoginPy), 0o644); err != nil {
		t.Fatal(err)
	}
	type run struct{ mode, addr, method string }
	var runs []run
	if s.backends.imap != "" {
		runs = append(runs, run{"imaps", mf.imaps, "login"}, run{"imap-starttls", mf.imap, "plain"})
	}
	if s.backends.pop3 != "" {
		runs = append(runs, run{"pop3s", mf.pop3s, "user"}, run{"pop3-stls", mf.pop3, "user"})
	}
	for user, password := range s.otherUsers {
		for _, r := range runs {
			t.Run(fmt.Sprintf("%s %s %s", user, r.mode, r.method), func(t *testing.T) {
				res := runClient(t, nil, []string{"MF_USER=" + user, "MF_PASSWORD=" + password}, python(t), script,
					r.mode, "localhost", port(r.addr), mf.caFile, r.method)
				if res.code != 0 || !strings.HasPrefix(string(res.stdout), "logged in") {
					t.Errorf("%s with password %q: got %s\nwant exit 0, logged in", user, password, res)
				}
			})
		}
	}
}

// legacyLoginPy logs in with Python's imaplib or poplib and looks at the
// INBOX; user and password come in the environment (MF_USER,
// MF_PASSWORD), so they reach the server exactly as written.
const legacyLoginPy = `import imaplib, os, poplib, ssl, sys

mode, host, port, cafile, method = sys.argv[1:6]
port = int(port)
user, password = os.environ["MF_USER"], os.environ["MF_PASSWORD"]
ctx = ssl.create_default_context(cafile=cafile)
if mode.startswith("imap"):
    if mode == "imaps":
        conn = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=30)
    else:
        conn = imaplib.IMAP4(host, port, timeout=30)
        conn.starttls(ssl_context=ctx)
    if method == "plain":
        conn.authenticate("PLAIN", lambda _: b"\0" + user.encode() + b"\0" + password.encode())
    elif password.isascii():
        conn.login(user, password)  # imaplib quotes the password
    else:
        # imaplib sends commands in ASCII: the password goes as a literal.
        conn.literal = password.encode()
        typ, data = conn._simple_command("LOGIN", user)
        if typ != "OK":
            raise SystemExit("LOGIN: %s %r" % (typ, data))
        conn.state = "AUTH"
    typ, data = conn.select("INBOX", readonly=True)
    if typ != "OK":
        raise SystemExit("EXAMINE: %s %r" % (typ, data))
    print("logged in, INBOX has", int(data[0]))
    conn.logout()
else:
    if mode == "pop3s":
        conn = poplib.POP3_SSL(host, port, context=ctx, timeout=30)
    else:
        conn = poplib.POP3(host, port, timeout=30)
        conn.stls(context=ctx)
    conn.user(user)
    conn.pass_(password)
    print("logged in, maildrop has", conn.stat()[0])
    conn.quit()
`

// legacyBackendDown stops the server: clients hear mailfront's
// backend-unavailable answer (IMAP NO [UNAVAILABLE], POP3 -ERR
// [SYS/TEMP]), and mailfront logs "backend unavailable", never a failed
// login, which would count against the user with fail2ban. Started again,
// the server takes logins through mailfront at once.
func legacyBackendDown(t *testing.T, s *legacyMailServer, e *env) {
	mf := e.mf
	mark := mf.log.size()
	s.stop(t)
	if s.backends.imap != "" {
		c := e.dialIMAP(t, false, nil)
		err := c.Login(s.user, s.password).Wait()
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeUnavailable {
			t.Errorf("IMAP LOGIN with %s stopped: got %v, want NO [UNAVAILABLE]", s.name, err)
		}
		mf.log.wait(t, mark, regexp.MustCompile(`level=WARN msg="backend unavailable" .*listener=`+lnIMAPS+` `), mf.exited)
	}
	if s.backends.pop3 != "" {
		c := e.pop3Client(t, false)
		if line, ok := pop3client.IsERR(c.Login(s.user, s.password)); !ok || !strings.HasPrefix(line, "-ERR [SYS/TEMP]") {
			t.Errorf("POP3 USER/PASS with %s stopped: got %q, want -ERR [SYS/TEMP]", s.name, line)
		}
		mf.log.wait(t, mark, regexp.MustCompile(`level=WARN msg="backend unavailable" .*listener=`+lnPOP3S+` `), mf.exited)
	}
	if failed := lines(mf.log.since(mark), regexp.MustCompile(`msg="login failed"`)); len(failed) > 0 {
		t.Errorf("mailfront logged %q with %s stopped, want only backend unavailable", failed, s.name)
	}

	s.start(t)
	if s.backends.imap != "" {
		c := e.dialIMAP(t, false, nil)
		if err := c.Login(s.user, s.password).Wait(); err != nil {
			t.Fatalf("IMAP LOGIN with %s started again: %v", s.name, err)
		}
		sel, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil || sel.NumMessages != uint32(len(testMessages())) {
			t.Errorf("EXAMINE INBOX with %s started again: got %v (%v), want %d messages", s.name, sel, err, len(testMessages()))
		}
		c.Logout().Wait()
	}
	if s.backends.pop3 != "" {
		c := e.pop3Client(t, false)
		if err := c.Login(s.user, s.password); err != nil {
			t.Fatalf("POP3 USER/PASS with %s started again: %v", s.name, err)
		}
		if n, _, err := c.Stat(); err != nil || n != len(testMessages()) {
			t.Errorf("STAT with %s started again: got %d (%v), want %d", s.name, n, err, len(testMessages()))
		}
		c.Quit()
	}
}
