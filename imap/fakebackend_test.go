package imap

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend is a scripted plaintext IMAP backend. It records every byte
// it receives, per connection, and every policy breach (a command mailfront
// should never send it).
type fakeBackend struct {
	t        *testing.T
	ln       net.Listener
	greeting string // greeting line; "" accepts and never greets
	preCaps  string // answer to CAPABILITY before login
	postCaps string // in the LOGIN reply's response code; "" for none
	users    map[string]string
	// refusal, when set, answers every login instead of checking it
	// (%s: the command's tag); a line that starts with "* BYE" also
	// ends the connection.
	refusal string

	mu       sync.Mutex
	sessions []*fakeSession
	conns    []net.Conn
	breaches []string
}

type fakeSession struct {
	done     chan struct{} // closed when the backend has hung up
	mu       sync.Mutex
	raw      bytes.Buffer
	loggedIn bool
}

func (fs *fakeSession) Write(p []byte) (int, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.raw.Write(p)
}

// startFake starts a fake backend for user alice.
func startFake(t *testing.T, mod func(*fakeBackend)) *fakeBackend {
	t.Helper()
	fb := &fakeBackend{
		t:        t,
		greeting: "* OK [CAPABILITY IMAP4rev1 ID IDLE LITERAL+] fake-imapd 9.9 ready",
		preCaps:  "IMAP4rev1 ID IDLE LITERAL+",
		postCaps: "IMAP4rev1 ID IDLE LITERAL+ UIDPLUS AUTH=PLAIN STARTTLS",
		users:    map[string]string{testUser: testPassword},
	}
	if mod != nil {
		mod(fb)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fb.ln = ln
	var conns sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		fb.mu.Lock()
		for _, c := range fb.conns {
			c.Close()
		}
		fb.mu.Unlock()
		conns.Wait()
		for _, b := range fb.breachList() {
			t.Errorf("backend policy breach: %s", b)
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fs := &fakeSession{done: make(chan struct{})}
			fb.mu.Lock()
			fb.sessions = append(fb.sessions, fs)
			fb.conns = append(fb.conns, c)
			fb.mu.Unlock()
			conns.Add(1)
			go func() {
				defer conns.Done()
				fb.serve(c, fs)
			}()
		}
	}()
	return fb
}

func (fb *fakeBackend) addr() string { return fb.ln.Addr().String() }

func (fb *fakeBackend) breach(format string, args ...any) {
	fb.mu.Lock()
	fb.breaches = append(fb.breaches, fmt.Sprintf(format, args...))
	fb.mu.Unlock()
}

func (fb *fakeBackend) breachList() []string {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return append([]string(nil), fb.breaches...)
}

// connections is how many connections the backend accepted.
func (fb *fakeBackend) connections() int {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	return len(fb.sessions)
}

// ended waits until the backend has hung up on connection i, so that
// received(i) is complete.
func (fb *fakeBackend) ended(i int) {
	fb.t.Helper()
	fb.mu.Lock()
	fs := fb.sessions[i]
	fb.mu.Unlock()
	select {
	case <-fs.done:
	case <-time.After(safety):
		fb.t.Fatalf("backend connection %d still open after %v", i, safety)
	}
}

// received is what connection i sent the backend.
func (fb *fakeBackend) received(i int) string {
	fb.mu.Lock()
	fs := fb.sessions[i]
	fb.mu.Unlock()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.raw.String()
}

func (fb *fakeBackend) serve(c net.Conn, fs *fakeSession) {
	defer close(fs.done)
	defer c.Close()
	r := bufio.NewReader(io.TeeReader(c, fs))
	if fb.greeting == "" {
		io.Copy(io.Discard, r)
		return
	}
	fmt.Fprintf(c, "%s\r\n", fb.greeting)
	for {
		tag, name, args, err := readFakeCommand(r, c)
		if err != nil {
			return
		}
		if !fb.handle(c, r, fs, tag, name, args) {
			return
		}
	}
}

// handle answers one command; false ends the connection.
func (fb *fakeBackend) handle(c net.Conn, r *bufio.Reader, fs *fakeSession, tag, name string, args []string) bool {
	fs.mu.Lock()
	loggedIn := fs.loggedIn
	fs.mu.Unlock()
	switch {
	case name == "LOGOUT":
		fmt.Fprintf(c, "* BYE fake logging out\r\n%s OK LOGOUT done\r\n", tag)
		return false
	case name == "CAPABILITY":
		fmt.Fprintf(c, "* CAPABILITY %s\r\n%s OK done\r\n", fb.preCaps, tag)
	case name == "ID":
		fmt.Fprintf(c, "* ID (\"name\" {4}\r\nfake)\r\n%s OK ID done\r\n", tag)
	case loggedIn:
		fmt.Fprintf(c, "%s OK fake %s\r\n", tag, name)
	case name == "LOGIN" && len(args) == 2:
		if strings.Contains(fb.preCaps, "LOGINDISABLED") {
			fb.breach("LOGIN sent to a backend with LOGINDISABLED")
		}
		fb.loginReply(c, fs, tag, args[0], args[1])
	case name == "AUTHENTICATE" && len(args) >= 1 && strings.EqualFold(args[0], "PLAIN"):
		fb.authPlain(c, r, fs, tag, args[1:])
	default:
		fb.breach("pre-login command %s %q", name, args)
		fmt.Fprintf(c, "%s BAD fake does not know %s\r\n", tag, name)
	}
	return true
}

func (fb *fakeBackend) authPlain(c net.Conn, r *bufio.Reader, fs *fakeSession, tag string, ir []string) {
	resp := ""
	if len(ir) == 1 {
		if !strings.Contains(fb.preCaps, "SASL-IR") {
			fb.breach("initial response without SASL-IR")
		}
		resp = ir[0]
	} else {
		fmt.Fprintf(c, "+ \r\n")
		l, err := r.ReadString('\n')
		if err != nil {
			return
		}
		resp = strings.TrimRight(l, "\r\n")
	}
	dec, err := base64.StdEncoding.DecodeString(resp)
	parts := strings.Split(string(dec), "\x00")
	if err != nil || len(parts) != 3 {
		fmt.Fprintf(c, "%s BAD fake: bad PLAIN\r\n", tag)
		return
	}
	fb.loginReply(c, fs, tag, parts[1], parts[2])
}

func (fb *fakeBackend) loginReply(c net.Conn, fs *fakeSession, tag, user, pass string) {
	if fb.refusal != "" {
		line := fb.refusal
		if strings.Contains(line, "%s") {
			line = fmt.Sprintf(line, tag)
		}
		fmt.Fprintf(c, "%s\r\n", line)
		if strings.HasPrefix(line, "* BYE") {
			c.Close()
		}
		return
	}
	want, ok := fb.users[user]
	if !ok || want != pass {
		fmt.Fprintf(c, "%s NO [AUTHENTICATIONFAILED] fake-imapd says: wrong password for %s\r\n", tag, user)
		return
	}
	fs.mu.Lock()
	fs.loggedIn = true
	fs.mu.Unlock()
	if fb.postCaps != "" {
		fmt.Fprintf(c, "%s OK [CAPABILITY %s] fake logged in\r\n", tag, fb.postCaps)
		return
	}
	fmt.Fprintf(c, "%s OK fake logged in\r\n", tag)
}

// readFakeCommand reads one command with its literals, independently of
// the package's parser: tag, upper-case name and the arguments' values.
func readFakeCommand(r *bufio.Reader, w io.Writer) (tag, name string, args []string, err error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	tag, rest, _ := strings.Cut(line, " ")
	name, rest, _ = strings.Cut(rest, " ")
	for rest != "" {
		var v string
		switch rest[0] {
		case '"':
			v, rest = fakeQuoted(rest)
		case '{':
			n, _ := strconv.Atoi(strings.Trim(rest, "{}+"))
			if !strings.HasSuffix(rest, "+}") {
				fmt.Fprintf(w, "+ go ahead\r\n")
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return "", "", nil, err
			}
			v = string(buf)
			if rest, err = r.ReadString('\n'); err != nil {
				return "", "", nil, err
			}
			rest = strings.TrimRight(rest, "\r\n")
		case '(':
			v, rest, _ = strings.Cut(rest[1:], ")") // ID lists only
		default:
			v, rest, _ = strings.Cut(rest, " ")
			args = append(args, v)
			continue
		}
		args = append(args, v)
		rest = strings.TrimPrefix(rest, " ")
	}
	return tag, strings.ToUpper(name), args, nil
}

func fakeQuoted(s string) (v, rest string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
			if i < len(s) {
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}
