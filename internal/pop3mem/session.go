package pop3mem

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// session is one client connection.
type session struct {
	srv *Server
	c   net.Conn
	r   *bufio.Reader
	w   *bufio.Writer
	idx int

	user    string     // from USER
	authed  string     // the logged-in user, "" before
	msgs    []*message // the maildrop at login
	deleted map[*message]bool
}

func newSession(s *Server, c net.Conn, idx int) *session {
	return &session{srv: s, c: c, r: newReader(c), w: bufio.NewWriterSize(c, 32<<10), idx: idx}
}

func (ss *session) serve() {
	defer ss.unlock()
	if !ss.greet() {
		return
	}
	for {
		line, err := ss.readLine()
		if err != nil {
			return
		}
		if quit := ss.dispatch(line); quit {
			ss.w.Flush()
			return
		}
		if err := ss.w.Flush(); err != nil {
			return
		}
	}
}

// greet waits as configured, then sends a greeting with an APOP-style
// timestamp (RFC 1939 section 7), which a front must not pass on.
func (ss *session) greet() bool {
	o := ss.srv.opts
	if o.Silent {
		for {
			if _, err := ss.readLine(); err != nil {
				return false
			}
		}
	}
	if o.GreetDelay > 0 {
		t := time.NewTimer(o.GreetDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ss.srv.closed:
			return false
		}
	}
	fmt.Fprintf(ss.w, "+OK pop3mem ready <%d.%d@pop3mem>\r\n", os.Getpid(), time.Now().UnixNano())
	return ss.w.Flush() == nil
}

func (ss *session) readLine() (string, error) {
	b, err := ss.r.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	line := string(bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r")))
	ss.srv.record(ss.idx, line)
	return line, nil
}

func (ss *session) ok(format string, args ...any) {
	fmt.Fprintf(ss.w, "+OK "+format+"\r\n", args...)
}

func (ss *session) err(text string) { ss.w.WriteString("-ERR " + text + "\r\n") }

// dispatch runs one command and reports whether the session is over.
func (ss *session) dispatch(line string) (quit bool) {
	name, arg, _ := strings.Cut(line, " ")
	name = strings.ToUpper(name)
	switch {
	case name == "QUIT":
		ss.quit()
		return true
	case name == "CAPA":
		ss.capa()
	case ss.authed == "":
		ss.authorization(name, arg)
	default:
		ss.transaction(name, arg)
	}
	return false
}

func (ss *session) capa() {
	if ss.srv.opts.NoCAPA {
		ss.err("unknown command")
		return
	}
	ss.ok("Capability list follows")
	ss.w.WriteString("PIPELINING\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n")
	if !ss.srv.opts.NoUSER {
		ss.w.WriteString("USER\r\n")
	}
	ss.w.WriteString("SASL PLAIN\r\n.\r\n")
}

func (ss *session) authorization(name, arg string) {
	switch name {
	case "USER":
		if ss.srv.opts.NoUSER {
			ss.err("USER not supported, use AUTH PLAIN")
			return
		}
		ss.user = arg
		ss.ok("send PASS")
	case "PASS":
		if ss.user == "" {
			ss.err("send USER first")
			return
		}
		ss.login(ss.user, arg)
	case "AUTH":
		ss.authPlain(arg)
	default:
		ss.err("unknown command or not before login")
	}
}

// authPlain runs AUTH PLAIN with or without an initial response.
func (ss *session) authPlain(arg string) {
	mech, ir, hasIR := strings.Cut(arg, " ")
	if !strings.EqualFold(mech, "PLAIN") {
		ss.err("unsupported mechanism")
		return
	}
	if !hasIR {
		ss.w.WriteString("+ \r\n")
		if ss.w.Flush() != nil {
			return
		}
		var err error
		if ir, err = ss.readLine(); err != nil {
			return
		}
		if ir == "*" {
			ss.err("cancelled")
			return
		}
	}
	raw, err := base64.StdEncoding.DecodeString(ir)
	parts := strings.Split(string(raw), "\x00")
	if err != nil || len(parts) != 3 {
		ss.err("malformed PLAIN response")
		return
	}
	ss.login(parts[1], parts[2])
}

func (ss *session) login(user, pass string) {
	want, ok := ss.srv.opts.Users[user]
	if !ok || pass != want {
		ss.user = ""
		ss.err("[AUTH] invalid credentials")
		return
	}
	if ss.srv.opts.Lock && !ss.lock(user) {
		ss.err("[IN-USE] maildrop already locked")
		return
	}
	ss.authed = user
	ss.msgs = ss.srv.snapshot(user)
	ss.deleted = make(map[*message]bool)
	ss.ok("Logged in, %d messages", len(ss.msgs))
}

func (ss *session) lock(user string) bool {
	ss.srv.mu.Lock()
	defer ss.srv.mu.Unlock()
	if ss.srv.locked[user] {
		return false
	}
	ss.srv.locked[user] = true
	return true
}

func (ss *session) unlock() {
	if ss.authed == "" || !ss.srv.opts.Lock {
		return
	}
	ss.srv.mu.Lock()
	delete(ss.srv.locked, ss.authed)
	ss.srv.mu.Unlock()
}

// quit ends the session; after login it expunges deleted messages.
func (ss *session) quit() {
	if ss.authed != "" && len(ss.deleted) > 0 {
		ss.srv.expunge(ss.authed, ss.deleted)
	}
	ss.ok("pop3mem signing off")
}

// msg resolves a message number argument.
func (ss *session) msg(arg string) *message {
	n, err := strconv.Atoi(strings.TrimSpace(arg))
	if err != nil || n < 1 || n > len(ss.msgs) || ss.deleted[ss.msgs[n-1]] {
		return nil
	}
	return ss.msgs[n-1]
}
