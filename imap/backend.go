package imap

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// backendRefusal is the backend's tagged NO or BAD to mailfront's LOGIN
// or AUTHENTICATE: a wrong password, or backend trouble when its response
// code says so (result). Every other error from a backend login means the
// backend is unavailable.
type backendRefusal struct {
	status string // NO or BAD
	code   string // the response code's atom, upper-cased ("AUTHENTICATIONFAILED"); "" for none
	// trouble is a known text of backend trouble in a NO without a code
	// (troubleTexts), empty for any other text.
	trouble string
}

// troubleTexts are refusals, without a response code, that the servers
// mailfront is tested with give for their own trouble, never for a wrong
// password, lower-cased. (Courier's imapd says "* BYE Temporary problem"
// when its authdaemon is down: a BYE, trouble already.)
var troubleTexts = []string{
	// Cyrus when its SASL layer fails (SASL_FAIL: the sasldb cannot be
	// read, saslauthd is down); a wrong password is "authentication
	// failure".
	"generic failure",
}

func (e *backendRefusal) Error() string {
	if e.trouble != "" {
		return "imap: backend refused the login: " + e.status + " " + strconv.Quote(e.trouble) + ": the backend's own trouble"
	}
	if e.code == "" {
		return "imap: backend refused the login: " + e.status
	}
	s := "imap: backend refused the login: " + e.status + " [" + e.code + "]"
	if hint := refusalHints[e.code]; hint != "" {
		s += ": " + hint
	}
	return s
}

// LoginDetail implements proxy.LoginDetail: the response code, if any.
func (e *backendRefusal) LoginDetail() []any {
	if e.code == "" {
		return nil
	}
	return []any{"code", e.code}
}

// result is what the refusal says about the password. A NO without a code,
// or with AUTHENTICATIONFAILED, AUTHORIZATIONFAILED or a code mailfront
// does not know, is a wrong password: a refusal with no signal must
// count, or the guard would be blind (ARCHITECTURE.md, "Backend trouble or
// a wrong password"). RFC 5530's codes for trouble that is not the
// password's, and the known texts of trouble (troubleTexts), are backend
// trouble; INUSE and LIMIT are a busy mailbox,
// which a right password gets too. A BAD means the backend did not
// understand mailfront's command: the password was never checked.
func (e *backendRefusal) result() proxy.LoginResult {
	switch {
	case e.status == "BAD":
		return proxy.LoginBackendError
	case e.code == "INUSE", e.code == "LIMIT":
		return proxy.LoginBusy
	case refusalHints[e.code] != "":
		return proxy.LoginBackendError
	case e.code == "" && e.trouble != "":
		return proxy.LoginBackendError
	}
	return proxy.LoginFailed
}

// refusalHints are the response codes (RFC 5530) that refuse a login for
// a reason other than the password, with what they mean for the operator.
var refusalHints = map[string]string{
	"UNAVAILABLE":     "the backend (or a service it needs) is unavailable",
	"SERVERBUG":       "the backend failed",
	"CONTACTADMIN":    "the backend refuses this user until an administrator acts",
	"EXPIRED":         "the user's password or account has expired",
	"PRIVACYREQUIRED": "the backend refuses logins without TLS: let it take them from mailfront (Dovecot: login_trusted_networks; Cyrus: allowplaintext: yes)",
}

// backendConn is mailfront's side of the login dialogue with the backend.
// Every command in it is built by mailfront with its own tags (mf1, mf2...);
// no client byte reaches the backend before the hand-off (ARCHITECTURE.md invariant 4).
type backendConn struct {
	c    *proxy.Conn
	tags int
}

// backendLogin dials the backend, tells it who the client is (see
// proxy.ClientAddress), replays the client's ID and logs cr in.
// It returns the logged-in connection and the backend's post-login
// capabilities as the client may see them. Reads are bounded by the
// backend's login timeout, and shutdown interrupts them.
func (s *session) backendLogin(cr credentials) (*proxy.Conn, []string, error) {
	peer := s.ps.Peer()
	c, err := s.h.Backend.Open(s.ctx, peer)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(s.ctx, c.Stop)
	defer stop()
	b := &backendConn{c: c}
	caps, err := b.login(s.h, cr, s.clientID, peer)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, caps, nil
}

// login logs cr in. Before the login it sends one ID (RFC 2971) with the
// client's own fields and, under client_address id (or auto, when the
// backend lists ID), the fields that tell the backend who the client is.
func (b *backendConn) login(h *Handler, cr credentials, id []idField, peer *proxy.Peer) ([]string, error) {
	pre, err := b.preLoginCaps(h)
	if err != nil {
		return nil, err
	}
	mode := h.Backend.ClientAddress
	tell := mode == proxy.ClientAddressID || mode == proxy.ClientAddressAuto && hasCap(pre, "ID")
	if tell {
		id = append(peerID(peer), id...)
		id = id[:min(len(id), idMaxPairs)] // RFC 2971's 30 pairs
	}
	if len(id) > 0 && (tell || hasCap(pre, "ID")) {
		r, _, err := b.command(idCommand(id))
		if err != nil {
			return nil, fmt.Errorf("backend id: %w", err)
		}
		if tell && r.status != "OK" {
			h.ClientAddressRefused("ID")
		}
	}
	post, err := b.authenticate(cr, pre)
	if err != nil {
		return nil, err
	}
	if post == nil {
		if post, err = b.capability(); err != nil {
			return nil, err
		}
	}
	return afterLogin(edit(post, h.Edit)), nil
}

// preLoginCaps is the backend's capability list before login, for this
// login's choices (LOGIN or AUTHENTICATE PLAIN, ID): the greeting's list
// when it has one, else as learnt recently, else asked for on this
// connection. Only an answer to CAPABILITY is remembered for the next
// sessions and for what clients are offered: a greeting's list may be a
// short one (Cyrus's names what logging in needs, its CAPABILITY about 60
// more), and must never replace the fuller one. The probe (Handler.Watch)
// keeps that fresh for a backend whose greetings have lists.
func (b *backendConn) preLoginCaps(h *Handler) ([]string, error) {
	greeting, err := b.greeting()
	if err != nil || greeting != nil {
		return greeting, err
	}
	if known, fresh := h.Caps.Fresh(); fresh {
		return known, nil
	}
	caps, err := b.capability()
	if err != nil {
		return nil, err
	}
	h.Caps.Put(h.learnt(caps))
	return caps, nil
}

// greeting reads the backend's greeting, which must be "* OK" (PREAUTH
// would skip the login, BYE means it is refusing connections), and returns
// the capabilities it carries, if any.
func (b *backendConn) greeting() ([]string, error) {
	r, err := b.read()
	if err != nil {
		return nil, fmt.Errorf("read backend greeting: %w", err)
	}
	if r.tag != "*" || r.status != "OK" {
		return nil, fmt.Errorf("read backend greeting: %w: got %q, want OK", errBackendProtocol, r.status)
	}
	caps, _ := r.capabilities()
	return caps, nil
}

// capability asks the backend for its capabilities. A backend that
// answers without a list gets nil: mailfront then assumes only IMAP4rev1.
func (b *backendConn) capability() ([]string, error) {
	r, caps, err := b.command("CAPABILITY")
	if err != nil {
		return nil, fmt.Errorf("backend capability: %w", err)
	}
	if r.status != "OK" {
		return nil, nil
	}
	return caps, nil
}

// authenticate logs cr in with LOGIN or, when the backend has LOGIN
// disabled, AUTHENTICATE PLAIN. It returns the capabilities from the OK's
// response code (nil when it had none).
func (b *backendConn) authenticate(cr credentials, pre []string) ([]string, error) {
	var r *response
	var caps []string
	var err error
	switch {
	case !hasCap(pre, "LOGINDISABLED"):
		r, caps, err = b.loginCommand(cr)
	case hasCap(pre, "AUTH=PLAIN"):
		r, caps, err = b.authPlain(cr, hasCap(pre, "SASL-IR"))
	default:
		return nil, fmt.Errorf("backend login: %w: LOGINDISABLED and no AUTH=PLAIN", errBackendProtocol)
	}
	if err != nil {
		return nil, fmt.Errorf("backend login: %w", err)
	}
	switch r.status {
	case "OK":
		return caps, nil
	case "NO", "BAD":
		code, _, _ := strings.Cut(r.code, " ")
		return nil, &backendRefusal{status: r.status, code: strings.ToUpper(code), trouble: proxy.KnownText(r.text, troubleTexts)}
	}
	return nil, fmt.Errorf("backend login: %w: got %q", errBackendProtocol, r.status)
}

// loginCommand sends LOGIN with each value quoted, or as a synchronizing
// literal when it cannot be quoted (RFC 9051 section 4.3).
func (b *backendConn) loginCommand(cr credentials) (*response, []string, error) {
	tag := b.tag()
	line := tag + " LOGIN"
	for _, v := range []string{cr.user, cr.pass} {
		if quotable(v) {
			line += " " + quote(v)
			continue
		}
		if err := b.c.WriteString(line + " {" + strconv.Itoa(len(v)) + "}\r\n"); err != nil {
			return nil, nil, err
		}
		if r, err := b.waitContinue(tag); r != nil || err != nil {
			return r, nil, err
		}
		line = v
	}
	if err := b.c.WriteString(line + "\r\n"); err != nil {
		return nil, nil, err
	}
	return b.reply(tag)
}

// authPlain sends AUTHENTICATE PLAIN (RFC 4616) with an empty authorization
// identity, as an initial response when the backend has SASL-IR (RFC 4959).
func (b *backendConn) authPlain(cr credentials, saslIR bool) (*response, []string, error) {
	tag := b.tag()
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + cr.user + "\x00" + cr.pass))
	if saslIR {
		if err := b.c.WriteString(tag + " AUTHENTICATE PLAIN " + ir + "\r\n"); err != nil {
			return nil, nil, err
		}
		return b.reply(tag)
	}
	if err := b.c.WriteString(tag + " AUTHENTICATE PLAIN\r\n"); err != nil {
		return nil, nil, err
	}
	if r, err := b.waitContinue(tag); r != nil || err != nil {
		return r, nil, err
	}
	if err := b.c.WriteString(ir + "\r\n"); err != nil {
		return nil, nil, err
	}
	return b.reply(tag)
}

// command sends "tag line" and reads until its tagged reply.
func (b *backendConn) command(line string) (*response, []string, error) {
	tag := b.tag()
	if err := b.c.WriteString(tag + " " + line + "\r\n"); err != nil {
		return nil, nil, err
	}
	return b.reply(tag)
}

func (b *backendConn) tag() string {
	b.tags++
	return "mf" + strconv.Itoa(b.tags)
}

// reply reads until the tagged response for tag and returns it with the
// capabilities seen on the way (untagged CAPABILITY or the response code).
func (b *backendConn) reply(tag string) (*response, []string, error) {
	var caps []string
	for {
		r, err := b.read()
		if err != nil {
			return nil, nil, err
		}
		if c, ok := r.capabilities(); ok {
			caps = c
		}
		switch r.tag {
		case tag:
			return r, caps, nil
		case "+":
			return nil, nil, fmt.Errorf("%w: unexpected continuation", errBackendProtocol)
		}
	}
}

// waitContinue reads until the backend's "+" continuation request, or
// returns its tagged refusal.
func (b *backendConn) waitContinue(tag string) (*response, error) {
	for {
		r, err := b.read()
		if err != nil {
			return nil, err
		}
		switch r.tag {
		case "+":
			return nil, nil
		case tag:
			return r, nil
		}
	}
}

// read reads one response, folding any literals in untagged data into an
// empty quoted string. An untagged BYE ends the dialogue.
func (b *backendConn) read() (*response, error) {
	line, err := b.c.ReadLine()
	if err != nil {
		return nil, fmt.Errorf("read backend: %w", err)
	}
	for parts := 0; ; parts++ {
		r, err := parseResponse(line)
		if err != nil {
			return nil, err
		}
		if r.tag == "*" && r.status == "BYE" {
			return nil, fmt.Errorf("%w: backend said BYE", errBackendProtocol)
		}
		if r.tag != "*" || r.status != "" {
			return r, nil
		}
		n, err := literalAtEnd(line)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return r, nil
		}
		if line, err = b.fold(line, n, parts); err != nil {
			return nil, err
		}
	}
}

// fold reads the n-byte literal that ends line and the line part after it.
func (b *backendConn) fold(line []byte, n, parts int) ([]byte, error) {
	if parts >= backendParts {
		return nil, fmt.Errorf("%w: too many literals", errBackendProtocol)
	}
	if err := b.c.ReadFull(make([]byte, n)); err != nil {
		return nil, fmt.Errorf("read backend literal: %w", err)
	}
	next, err := b.c.ReadLine()
	if err != nil {
		return nil, fmt.Errorf("read backend: %w", err)
	}
	i := bytes.LastIndexByte(line, '{')
	return append(append(line[:i:i], `""`...), next...), nil
}
