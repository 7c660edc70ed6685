package pop3client

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ReadMultiline reads a multi-line response body up to the "." line and
// undoes dot-stuffing (RFC 1939 section 3). Lines keep their CRLF.
func (c *Client) ReadMultiline() ([]byte, error) {
	var b bytes.Buffer
	lineStart := true
	for {
		frag, err := c.r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("pop3client: read body: %w", err)
		}
		if lineStart && len(frag) > 0 && frag[0] == '.' {
			if string(frag) == ".\r\n" || string(frag) == ".\n" {
				return b.Bytes(), nil
			}
			frag = frag[1:]
		}
		b.Write(frag)
		lineStart = err == nil
	}
}

// Capa returns the capability lines (RFC 2449 section 5).
func (c *Client) Capa() ([]string, error) {
	if _, err := c.Cmd("CAPA"); err != nil {
		return nil, err
	}
	body, err := c.ReadMultiline()
	if err != nil {
		return nil, err
	}
	return strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n"), nil
}

// STLS upgrades the connection (RFC 2595 section 4). The client discards
// anything it had buffered.
func (c *Client) STLS(cfg *tls.Config) error {
	if _, err := c.Cmd("STLS"); err != nil {
		return err
	}
	if n := c.r.Buffered(); n > 0 {
		return fmt.Errorf("pop3client: stls: server sent %d bytes after +OK", n)
	}
	t := tls.Client(c.conn, cfg)
	c.arm()
	if err := t.Handshake(); err != nil {
		return fmt.Errorf("pop3client: stls handshake: %w", err)
	}
	c.conn = t
	c.r.Reset(t)
	return nil
}

// Login sends USER and PASS.
func (c *Client) Login(user, pass string) error {
	if _, err := c.Cmd("USER " + user); err != nil {
		return err
	}
	_, err := c.Cmd("PASS " + pass)
	return err
}

// AuthPlain authenticates with AUTH PLAIN and an initial response.
func (c *Client) AuthPlain(user, pass string) error {
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	reply, err := c.Cmd("AUTH PLAIN " + ir)
	if err == nil && strings.HasPrefix(reply, "+ ") {
		return fmt.Errorf("pop3client: unexpected continuation %q", reply)
	}
	return err
}

// Stat returns the message count and the maildrop size in octets.
func (c *Client) Stat() (count int, size int64, err error) {
	reply, err := c.Cmd("STAT")
	if err != nil {
		return 0, 0, err
	}
	if _, err := fmt.Sscanf(reply, "+OK %d %d", &count, &size); err != nil {
		return 0, 0, fmt.Errorf("pop3client: parse STAT reply %q: %w", reply, err)
	}
	return count, size, nil
}

// List returns each message's size by message number.
func (c *Client) List() (map[int]int64, error) {
	if _, err := c.Cmd("LIST"); err != nil {
		return nil, err
	}
	body, err := c.ReadMultiline()
	if err != nil {
		return nil, err
	}
	sizes := make(map[int]int64)
	for _, line := range strings.Split(strings.TrimSuffix(string(body), "\r\n"), "\r\n") {
		if line == "" {
			continue
		}
		num, size, ok := strings.Cut(line, " ")
		n, err1 := strconv.Atoi(num)
		s, err2 := strconv.ParseInt(size, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("pop3client: parse LIST line %q", line)
		}
		sizes[n] = s
	}
	return sizes, nil
}

// Retr returns message n, dot-unstuffed, with CRLF line endings.
func (c *Client) Retr(n int) ([]byte, error) {
	if _, err := c.Cmd("RETR " + strconv.Itoa(n)); err != nil {
		return nil, err
	}
	return c.ReadMultiline()
}

// Dele marks message n deleted.
func (c *Client) Dele(n int) error {
	_, err := c.Cmd("DELE " + strconv.Itoa(n))
	return err
}

// Noop sends NOOP.
func (c *Client) Noop() error {
	_, err := c.Cmd("NOOP")
	return err
}

// Quit sends QUIT and closes the connection.
func (c *Client) Quit() error {
	_, err := c.Cmd("QUIT")
	c.conn.Close()
	return err
}
