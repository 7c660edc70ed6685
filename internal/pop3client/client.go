// Package pop3client is a minimal POP3 client (RFC 1939, CAPA of RFC 2449,
// STLS of RFC 2595, AUTH PLAIN of RFC 5034) for mailfront's tests, load
// tool and demo checks: dial plain or TLS, STLS, USER/PASS, AUTH PLAIN,
// STAT, LIST, RETR with dot-unstuffing, QUIT. It is not a mail client: no
// APOP, no UIDL bookkeeping, no retries.
package pop3client

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// DefaultTimeout bounds each command's round trip unless Client.Timeout says
// otherwise.
const DefaultTimeout = 30 * time.Second

// Error is a -ERR reply.
type Error struct {
	Line string // the whole status line, "-ERR ..."
}

func (e *Error) Error() string { return "pop3client: server said " + e.Line }

// IsERR reports whether err is a -ERR reply, and returns its line.
func IsERR(err error) (string, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Line, true
	}
	return "", false
}

// Client is one POP3 connection. It is not safe for concurrent use.
type Client struct {
	// Greeting is the server's first line.
	Greeting string
	// Timeout bounds each round trip (default DefaultTimeout).
	Timeout time.Duration

	conn net.Conn
	r    *bufio.Reader
}

// Dial connects over plain TCP and reads the greeting.
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3client: dial %s: %w", addr, err)
	}
	return NewClient(c)
}

// DialTLS connects with implicit TLS (port 995 style) and reads the
// greeting.
func DialTLS(ctx context.Context, addr string, cfg *tls.Config) (*Client, error) {
	d := tls.Dialer{Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pop3client: dial tls %s: %w", addr, err)
	}
	return NewClient(c)
}

// NewClient wraps an established connection and reads the greeting. It
// closes conn if the greeting is not +OK.
func NewClient(conn net.Conn) (*Client, error) {
	c := &Client{conn: conn, r: bufio.NewReader(conn)}
	c.arm()
	line, err := c.readLine()
	if err == nil {
		err = status(line)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("pop3client: greeting: %w", err)
	}
	c.Greeting = line
	return c, nil
}

// Conn is the underlying connection (a *tls.Conn under TLS).
func (c *Client) Conn() net.Conn { return c.conn }

// Close closes the connection without QUIT.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) arm() {
	t := c.Timeout
	if t <= 0 {
		t = DefaultTimeout
	}
	c.conn.SetDeadline(time.Now().Add(t))
}

func (c *Client) readLine() (string, error) {
	line, err := c.r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("pop3client: read: %w", err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
}

// status turns a status line into nil or an *Error.
func status(line string) error {
	switch {
	case line == "+OK" || strings.HasPrefix(line, "+OK "):
		return nil
	case strings.HasPrefix(line, "-ERR"):
		return &Error{Line: line}
	}
	return fmt.Errorf("pop3client: unexpected reply %q", line)
}

// Cmd sends one command line and returns the status line; a -ERR is an
// *Error. Continuation lines ("+ ...") are returned as they are.
func (c *Client) Cmd(line string) (string, error) {
	c.arm()
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		return "", fmt.Errorf("pop3client: write: %w", err)
	}
	reply, err := c.readLine()
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(reply, "+ ") || reply == "+" {
		return reply, nil
	}
	return reply, status(reply)
}
