package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// dialer spreads connections over several loopback source addresses so
// that tens of thousands of sessions never run out of ephemeral ports.
type dialer struct {
	sources []*net.TCPAddr
	next    atomic.Uint64
}

func newDialer(n int) *dialer {
	d := &dialer{}
	for i := 1; i <= max(n, 1); i++ {
		d.sources = append(d.sources, &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))})
	}
	return d
}

func (d *dialer) Dial(addr string) (net.Conn, error) {
	src := d.sources[d.next.Add(1)%uint64(len(d.sources))]
	nd := net.Dialer{Timeout: 10 * time.Second, LocalAddr: src}
	if len(d.sources) == 1 {
		nd.LocalAddr = nil // let the kernel choose, as a client would
	}
	return nd.Dial("tcp", addr)
}

// tlsClient is the client side configuration: TLS 1.3, verifying the
// throwaway CA, no session cache unless asked.
func tlsClient(pool *x509.CertPool, curves []tls.CurveID, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		RootCAs:            pool,
		ServerName:         "localhost",
		MinVersion:         tls.VersionTLS13,
		CurvePreferences:   curves,
		ClientSessionCache: cache,
	}
}

// imapConn is a tiny IMAP client over one connection.
type imapConn struct {
	raw net.Conn // the socket
	c   net.Conn // raw, or TLS over it
	r   *bufio.Reader
	tag int
}

func newIMAP(raw, c net.Conn, bufSize int) *imapConn {
	return &imapConn{raw: raw, c: c, r: bufio.NewReaderSize(c, bufSize)}
}

// line reads one response line without its CRLF.
func (m *imapConn) line() (string, error) {
	s, err := m.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(s, "\r\n"), nil
}

// greeting reads the server greeting and checks it is "* OK".
func (m *imapConn) greeting() error {
	l, err := m.line()
	if err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("greeting: got %q, want * OK", l)
	}
	return nil
}

// cmd sends a tagged command and reads to its tagged reply, which must be
// OK. Untagged lines are skipped.
func (m *imapConn) cmd(format string, args ...any) error {
	m.tag++
	tag := fmt.Sprintf("a%d", m.tag)
	line := tag + " " + fmt.Sprintf(format, args...)
	if _, err := io.WriteString(m.c, line+"\r\n"); err != nil {
		return fmt.Errorf("%s: %w", line, err)
	}
	return m.expectTagged(tag, line)
}

func (m *imapConn) expectTagged(tag, what string) error {
	for range 1000 {
		l, err := m.line()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return fmt.Errorf("%s: got %q", what, l)
			}
			return nil
		}
	}
	return fmt.Errorf("%s: no tagged reply", what)
}

// idle sends IDLE and waits for the continuation.
func (m *imapConn) idle() error {
	m.tag++
	tag := fmt.Sprintf("a%d", m.tag)
	if _, err := io.WriteString(m.c, tag+" IDLE\r\n"); err != nil {
		return err
	}
	for range 100 {
		l, err := m.line()
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		if strings.HasPrefix(l, "+") {
			return nil
		}
		if strings.HasPrefix(l, tag+" ") {
			return fmt.Errorf("idle: got %q", l)
		}
	}
	return errors.New("idle: no continuation")
}

// done ends an IDLE and waits for its OK.
func (m *imapConn) done() error {
	if _, err := io.WriteString(m.c, "DONE\r\n"); err != nil {
		return err
	}
	return m.expectTagged(fmt.Sprintf("a%d", m.tag), "DONE")
}

// dialIMAPS connects to an implicit TLS listener, handshakes and reads the
// greeting.
func dialIMAPS(d *dialer, addr string, cfg *tls.Config, bufSize int) (*imapConn, error) {
	raw, err := d.Dial(addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	raw.SetDeadline(time.Now().Add(60 * time.Second))
	tc := tls.Client(raw, cfg)
	if err := tc.Handshake(); err != nil {
		raw.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	m := newIMAP(raw, tc, bufSize)
	if err := m.greeting(); err != nil {
		raw.Close()
		return nil, err
	}
	return m, nil
}

// login logs in and selects INBOX.
func (m *imapConn) login() error {
	if err := m.cmd("LOGIN load%d secret", m.raw.LocalAddr().(*net.TCPAddr).Port); err != nil {
		return err
	}
	return m.cmd("SELECT INBOX")
}
