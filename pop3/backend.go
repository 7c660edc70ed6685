package pop3

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mailfront/mailfront/proxy"
)

// maxCapaLines bounds a backend's CAPA response.
const maxCapaLines = 64

// errUnavailable marks backend trouble: down, slow, or not speaking POP3.
var errUnavailable = errors.New("pop3: backend unavailable")

// errUnsendable marks credentials that cannot be put on a command line: a
// failed login that never reaches the backend.
var errUnsendable = &unsendable{}

type unsendable struct{}

func (*unsendable) Error() string { return "pop3: credentials cannot be sent to the backend" }

// LoginDetail implements proxy.LoginDetail.
func (*unsendable) LoginDetail() []any {
	return []any{"reason", "credentials cannot be sent to the backend"}
}

// backendRefusal is a backend's -ERR to a login step.
type backendRefusal struct {
	step string
	code string // response code, if any
	// trouble is a known text of backend trouble without a code
	// (Courier's "Temporary problem"), empty for any other text.
	trouble string
}

func (e *backendRefusal) Error() string {
	if e.trouble != "" {
		return fmt.Sprintf("pop3: %s: backend refused: %q", e.step, e.trouble)
	}
	return fmt.Sprintf("pop3: %s: backend refused [%s]", e.step, e.code)
}

// LoginDetail implements proxy.LoginDetail: the response code, if any.
func (e *backendRefusal) LoginDetail() []any {
	if e.code == "" {
		return nil
	}
	return []any{"code", e.code}
}

// login opens a backend connection and logs in with user and pass. Reads
// are bounded by the backend's login timeout, and fail at once on shutdown.
// Credentials that cannot be sent never reach the backend: it should not
// see a connection without a login attempt.
func (h *Handler) login(ctx context.Context, peer *proxy.Peer, user, pass string) (*proxy.Conn, error) {
	if !sendable(user) || !sendable(pass) || strings.ContainsAny(user, " \t") && !h.Caps.Last().plainOnly() {
		return nil, errUnsendable
	}
	be, err := h.Backend.Open(ctx, peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnavailable, err)
	}
	stop := context.AfterFunc(ctx, be.Stop)
	err = h.backendLogin(be, peer, user, pass)
	if !stop() && err == nil {
		err = proxy.ErrShutdown // Stop ran: be is unusable
	}
	if err != nil {
		be.WriteString("QUIT\r\n")
		be.Close()
		return nil, err
	}
	return be, nil
}

// backendLogin reads the greeting, learns the capabilities when the cache
// is stale (on this connection, before the login), tells the backend who
// the client is (XCLIENT, see tellClient), then logs in with USER and
// PASS, or AUTH PLAIN when the backend offers SASL PLAIN but no USER.
func (h *Handler) backendLogin(be *proxy.Conn, peer *proxy.Peer, user, pass string) error {
	line, err := be.ReadLine()
	if err != nil {
		return backendErr("read backend greeting", err)
	}
	if !strings.HasPrefix(string(line), "+OK") {
		return fmt.Errorf("backend greeting: not +OK: %w", errUnavailable)
	}
	caps, fresh := h.Caps.Fresh()
	if !fresh {
		if caps, err = h.fetchCaps(be); err != nil {
			return err
		}
		h.Caps.Put(caps)
	}
	// Dovecot offers XCLIENT in the greeting ("+OK [XCLIENT] ..."), and
	// only to the addresses it trusts.
	offered := caps.xclient || strings.HasPrefix(string(line), "+OK [XCLIENT]")
	if err := h.tellClient(be, peer, offered); err != nil {
		return err
	}
	if caps.plainOnly() {
		return loginPLAIN(be, user, pass)
	}
	err = loginUSER(be, user, pass)
	var br *backendRefusal
	if errors.As(err, &br) && br.step == stepUSER && !caps.user && !caps.saslPlain {
		// Asked, not assumed: a capability probe sees a connection
		// the backend may treat otherwise than a login's (Dovecot
		// behind a PROXY header saying the client used TLS lists no
		// USER to the probe's LOCAL header, and takes USER on the
		// login's).
		return errNoLoginMethod
	}
	return err
}

// tellClient sends XCLIENT ADDR= PORT= SESSION= (Dovecot's, after
// Postfix's) under client_address id, or auto when the backend offers
// XCLIENT. A refusal (an -ERR, or Dovecot's +OK that says it ignores the
// command) is logged once and the login goes on: the backend then sees
// mailfront's address.
func (h *Handler) tellClient(be *proxy.Conn, peer *proxy.Peer, offered bool) error {
	mode := h.Backend.ClientAddress
	if mode != proxy.ClientAddressID && (mode != proxy.ClientAddressAuto || !offered) {
		return nil
	}
	cmd := "XCLIENT ADDR=" + peer.Client.Addr().String() + " PORT=" + strconv.Itoa(int(peer.Client.Port())) + " SESSION=" + peer.Session
	line, err := roundTrip(be, "backend XCLIENT", cmd)
	if err != nil {
		return err
	}
	// Dovecot answers an address it does not trust "+OK You are not from
	// trusted IP - ignoring": a refusal in all but the status.
	if status("backend XCLIENT", line) != nil || strings.Contains(strings.ToLower(line), "ignor") {
		h.ClientAddressRefused("XCLIENT")
	}
	return nil
}

// stepUSER names the USER command in errors.
const stepUSER = "backend USER"

// loginUSER logs in with USER and PASS (RFC 1939 section 7).
func loginUSER(be *proxy.Conn, user, pass string) error {
	if strings.ContainsAny(user, " \t") {
		return errUnsendable
	}
	line, err := roundTrip(be, stepUSER, "USER "+user)
	if err != nil {
		return err
	}
	if err := status(stepUSER, line); err != nil {
		return err
	}
	if line, err = roundTrip(be, "backend PASS", "PASS "+pass); err != nil {
		return err
	}
	return status("backend PASS", line)
}

// loginPLAIN logs in with AUTH PLAIN (RFC 5034, RFC 4616), without an
// initial response so that RFC 1734 servers understand it too.
func loginPLAIN(be *proxy.Conn, user, pass string) error {
	line, err := roundTrip(be, "backend AUTH", "AUTH PLAIN")
	if err != nil {
		return err
	}
	if line != "+" && !strings.HasPrefix(line, "+ ") {
		if err := status("backend AUTH", line); err != nil {
			return err
		}
		return fmt.Errorf("backend AUTH: +OK before credentials: %w", errUnavailable)
	}
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if line, err = roundTrip(be, "backend AUTH response", resp); err != nil {
		return err
	}
	return status("backend AUTH", line)
}

// errNoLoginMethod is a backend that refused USER after a CAPA that
// lists neither USER nor SASL PLAIN (Cyrus with allowplaintext: no): it
// offers no login mailfront has. Backend trouble, never a wrong
// password; the password was not sent.
var errNoLoginMethod = fmt.Errorf("the backend offers no login mailfront can use: it refused USER, and its CAPA lists neither USER nor SASL PLAIN "+
	"(let it accept USER/PASS or AUTH PLAIN without TLS from mailfront, such as Cyrus's allowplaintext: yes): %w", errUnavailable)

// fetchCaps asks be for CAPA (the package's fetchCaps) and returns what
// it says as the listener's configuration edits it (learnt).
func (h *Handler) fetchCaps(be *proxy.Conn) (backendCaps, error) {
	caps, err := fetchCaps(be)
	if err != nil {
		return caps, err
	}
	return h.learnt(caps), nil
}

// learnt is caps as the listener's configuration edits them; a backend
// that does not advertise its capabilities is logged once.
func (h *Handler) learnt(caps backendCaps) backendCaps {
	edited := caps.edited(h.Edit)
	if !caps.advertised {
		h.NotAdvertised(edited.offer(), "clients that trust CAPA may stop using TOP and UIDL (and leave mail on the server no more): "+
			"if the server has them, as popa3d and solid-pop3d do, declare them on its listeners: capabilities: {add: [TOP, UIDL]}")
	}
	return edited
}

// fetchCaps asks the backend for CAPA (RFC 2449 section 5). A backend
// without CAPA is taken to be plain RFC 1939.
func fetchCaps(be *proxy.Conn) (backendCaps, error) {
	line, err := roundTrip(be, "backend CAPA", "CAPA")
	if err != nil {
		return backendCaps{}, err
	}
	switch {
	case strings.HasPrefix(line, "-ERR"):
		return capsRFC1939, nil
	case !strings.HasPrefix(line, "+OK"):
		return backendCaps{}, fmt.Errorf("backend CAPA: unexpected reply: %w", errUnavailable)
	}
	var lines []string
	for range maxCapaLines {
		l, err := be.ReadLine()
		if err != nil {
			return backendCaps{}, backendErr("read backend CAPA", err)
		}
		if string(l) == "." {
			caps := parseBackendCaps(lines)
			caps.advertised = true
			return caps, nil
		}
		lines = append(lines, strings.TrimPrefix(string(l), "."))
	}
	return backendCaps{}, fmt.Errorf("backend CAPA: more than %d lines: %w", maxCapaLines, errUnavailable)
}

// roundTrip sends one command and reads the reply line. step names the
// command in errors; the line itself (which may hold a password) never
// appears in one.
func roundTrip(be *proxy.Conn, step, cmd string) (string, error) {
	if err := be.WriteString(cmd + "\r\n"); err != nil {
		return "", backendErr(step, err)
	}
	line, err := be.ReadLine()
	if err != nil {
		return "", backendErr(step, err)
	}
	return string(line), nil
}

// status turns a reply line into nil (+OK), a refusal (-ERR) or
// backend trouble (anything else). The reply text is dropped.
func status(step, line string) error {
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return nil
	case line == "-ERR" || strings.HasPrefix(line, "-ERR "):
		return &backendRefusal{step: step, code: respCode(line), trouble: proxy.KnownText(line, troubleTexts)}
	}
	return fmt.Errorf("%s: unexpected reply: %w", step, errUnavailable)
}

// troubleTexts are refusals, without a response code, that the servers
// mailfront is tested with give for backend trouble, never for a wrong
// password, lower-cased.
var troubleTexts = []string{
	// Courier's pop3d when its authdaemon cannot be reached.
	"temporary problem",
}

// respCode extracts the response code from "-ERR [CODE] text".
func respCode(line string) string {
	rest, ok := strings.CutPrefix(line, "-ERR [")
	if !ok {
		return ""
	}
	code, _, ok := strings.Cut(rest, "]")
	if !ok || len(code) > 40 || !safeArgs([]string{code}) {
		return ""
	}
	return strings.ToUpper(code)
}

// backendErr wraps a backend I/O error as unavailability; shutdown stays
// shutdown.
func backendErr(step string, err error) error {
	if errors.Is(err, proxy.ErrShutdown) {
		return err
	}
	return fmt.Errorf("%s: %w: %w", step, errUnavailable, err)
}
