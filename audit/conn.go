package audit

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

const (
	// maxLine bounds one line from the server. IMAP capability lines
	// are the longest a server sends before login, a few hundred bytes.
	maxLine = 8192
	// maxLines bounds the lines of one answer: a CAPA or EHLO list, the
	// untagged lines before a tagged IMAP answer.
	maxLines = 256
)

// errLineTooLong is a line past maxLine: the server is broken or hostile.
var errLineTooLong = errors.New("audit: line too long")

// errAnswer is an answer that is not the protocol's: the check cannot go on.
var errAnswer = errors.New("audit: unexpected answer")

// conn is one connection to the server: bounded lines, and a deadline on
// every step that never goes past the run's.
type conn struct {
	ctx     context.Context
	raw     net.Conn // the TCP connection
	c       net.Conn // raw, or the TLS connection over it
	r       *bufio.Reader
	step    time.Duration
	stop    func() bool // releases the close on the run's end
	pending int         // plaintext bytes left unread when TLS started
}

// dial connects to addr within one step; the connection closes when ctx
// ends, so that nothing outlives the run's deadline.
func dial(ctx context.Context, addr string, step time.Duration) (*conn, error) {
	dctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &conn{ctx: ctx, raw: raw, c: raw, r: bufio.NewReaderSize(raw, 4096), step: step}
	c.stop = context.AfterFunc(ctx, func() { raw.Close() })
	return c, nil
}

func (c *conn) close() {
	c.stop()
	c.c.Close()
}

// deadline is one step from now, or the run's deadline if sooner.
func (c *conn) deadline() time.Time {
	d := time.Now().Add(c.step)
	if end, ok := c.ctx.Deadline(); ok && end.Before(d) {
		return end
	}
	return d
}

// readLine reads one line within a step, without its CRLF. A line longer
// than maxLine is an error, and so is one the connection ends inside.
func (c *conn) readLine() (string, error) {
	c.c.SetReadDeadline(c.deadline())
	var line []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		if len(line)+len(frag) > maxLine {
			return "", errLineTooLong
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// write sends b in one write (one TCP segment, for the injection test).
func (c *conn) write(b string) error {
	c.c.SetWriteDeadline(c.deadline())
	_, err := io.WriteString(c.c, b)
	return err
}

// writeLine sends one command line.
func (c *conn) writeLine(s string) error { return c.write(s + "\r\n") }

// startTLS runs a TLS handshake over the TCP connection within one step,
// and reads only from TLS from then on: plaintext bytes the server sent
// after its go-ahead are counted in pending and dropped.
func (c *conn) startTLS(cfg *tls.Config) (tls.ConnectionState, error) {
	c.pending = c.r.Buffered()
	tc := tls.Client(c.raw, cfg)
	tc.SetDeadline(c.deadline())
	if err := tc.HandshakeContext(c.ctx); err != nil {
		return tls.ConnectionState{}, err
	}
	tc.SetDeadline(time.Time{})
	c.c, c.r = tc, bufio.NewReaderSize(tc, 4096)
	return tc.ConnectionState(), nil
}

// describe says what went wrong in words, for a finding's Seen: never a
// Go type, and a library's own text only after what happened.
func describe(err error, step time.Duration) string {
	var rh tls.RecordHeaderError
	var ne net.Error
	var refused *refusedError
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, errLineTooLong):
		return fmt.Sprintf("the server sent a line longer than %d bytes", maxLine)
	case errors.As(err, &rh):
		return "the server answered the TLS handshake in plaintext (" + quote(string(rh.RecordHeader[:])) + "...)"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within %v", step)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "the server reset the connection"
	case errors.Is(err, net.ErrClosed):
		return "the run's deadline ended"
	case errors.As(err, &refused):
		return refused.Error()
	case errors.Is(err, errAnswer):
		return strings.TrimPrefix(err.Error(), "audit: unexpected answer: ")
	}
	msg := err.Error()
	if i := strings.Index(msg, "remote error: tls: "); i >= 0 {
		return "the server refused the handshake (TLS alert: " + msg[i+len("remote error: tls: "):] + ")"
	}
	if i := strings.LastIndex(msg, "tls: "); i >= 0 {
		return "the handshake failed (" + msg[i+len("tls: "):] + ")"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return "network error (" + oe.Err.Error() + ")"
	}
	return "network error (" + msg + ")"
}

// unexpected is errAnswer for an answer that does not fit the dialogue.
func unexpected(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errAnswer, fmt.Sprintf(format, args...))
}

// quoteLen is how much of a server's line a finding quotes.
const quoteLen = 100

// quote is a server's words for a finding: in double quotes, control
// characters and invalid UTF-8 replaced, clipped at quoteLen.
func quote(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '.'
		}
		return r
	}, strings.ToValidUTF8(s, "."))
	if utf8.RuneCountInString(s) > quoteLen {
		s = string([]rune(s)[:quoteLen]) + "..."
	}
	return `"` + s + `"`
}
