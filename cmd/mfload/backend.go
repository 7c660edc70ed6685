package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
)

// backend is a fast in-memory plaintext IMAP server, just enough for the
// load: a greeting, CAPABILITY, LOGIN and AUTHENTICATE PLAIN for anyone,
// SELECT, IDLE until DONE, a FETCH of BODY[]<0.N> that streams N bytes as a
// literal, an APPEND that swallows its literal, NOOP and LOGOUT. It runs in
// the load tool's process so that mailfront's figures are mailfront's alone.
type backend struct {
	ln    net.Listener
	bulk  []byte // the bytes FETCH streams, repeated
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

const backendReaderSize = 1024

func startBackend() (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("backend listen: %w", err)
	}
	bulk := make([]byte, 256<<10)
	rng := rand.NewChaCha8([32]byte{1})
	rng.Read(bulk)
	b := &backend{ln: ln, bulk: bulk, conns: make(map[net.Conn]struct{})}
	go b.accept()
	return b, nil
}

func (b *backend) Addr() string { return b.ln.Addr().String() }

// Close stops accepting and closes every connection.
func (b *backend) Close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
}

func (b *backend) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		go func() {
			b.serve(c)
			c.Close()
			b.mu.Lock()
			delete(b.conns, c)
			b.mu.Unlock()
		}()
	}
}

// serve runs one backend session. Replies are written straight to the
// socket; the only buffer is a small line reader.
func (b *backend) serve(c net.Conn) {
	r := bufio.NewReaderSize(c, backendReaderSize)
	if _, err := io.WriteString(c, "* OK ready\r\n"); err != nil {
		return
	}
	for {
		line, err := readCommand(r, c)
		if err != nil {
			return
		}
		tag, cmd, args := splitCommand(line)
		var reply string
		switch cmd {
		case "CAPABILITY":
			reply = "* CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN\r\n" + tag + " OK done\r\n"
		case "LOGIN", "NOOP", "CHECK", "CLOSE", "UNSELECT":
			reply = tag + " OK done\r\n"
		case "AUTHENTICATE":
			if !strings.Contains(args, " ") { // no initial response: ask for it
				if _, err := io.WriteString(c, "+ \r\n"); err != nil {
					return
				}
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
			}
			reply = tag + " OK done\r\n"
		case "ID":
			reply = "* ID NIL\r\n" + tag + " OK done\r\n"
		case "SELECT", "EXAMINE":
			reply = "* FLAGS (\\Seen)\r\n* 1 EXISTS\r\n* OK [UIDVALIDITY 1] ok\r\n" + tag + " OK [READ-WRITE] done\r\n"
		case "IDLE":
			if _, err := io.WriteString(c, "+ idling\r\n"); err != nil {
				return
			}
			if done, err := r.ReadString('\n'); err != nil || !strings.EqualFold(strings.TrimSpace(done), "DONE") {
				return
			}
			reply = tag + " OK IDLE done\r\n"
		case "FETCH", "UID":
			if err := b.fetch(c, tag, args); err != nil {
				return
			}
			continue
		case "APPEND":
			// readCommand has already swallowed the literal.
			reply = tag + " OK APPEND done\r\n"
		case "LOGOUT":
			io.WriteString(c, "* BYE bye\r\n"+tag+" OK done\r\n")
			return
		default:
			reply = tag + " BAD unknown command\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// fetch answers "FETCH 1 BODY[]<0.N>" with N bytes as a literal.
func (b *backend) fetch(w io.Writer, tag, args string) error {
	n := int64(0)
	if i := strings.Index(args, "<0."); i >= 0 {
		end := strings.IndexByte(args[i:], '>')
		if end > 0 {
			n, _ = strconv.ParseInt(args[i+3:i+end], 10, 64)
		}
	}
	if _, err := fmt.Fprintf(w, "* 1 FETCH (BODY[]<0> {%d}\r\n", n); err != nil {
		return err
	}
	for n > 0 {
		m := min(n, int64(len(b.bulk)))
		if _, err := w.Write(b.bulk[:m]); err != nil {
			return err
		}
		n -= m
	}
	_, err := io.WriteString(w, ")\r\n"+tag+" OK FETCH done\r\n")
	return err
}

// readCommand reads one command line, answering and consuming any literals
// in it (synchronising {N} with a continuation, {N+} without). Literal
// bytes are discarded: no command here needs them.
func readCommand(r *bufio.Reader, w io.Writer) (string, error) {
	var line strings.Builder
	for {
		part, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		part = strings.TrimRight(part, "\r\n")
		line.WriteString(part)
		n, sync, ok := literalSuffix(part)
		if !ok {
			return line.String(), nil
		}
		if sync {
			if _, err := io.WriteString(w, "+ go on\r\n"); err != nil {
				return "", err
			}
		}
		if _, err := io.CopyN(io.Discard, r, n); err != nil {
			return "", err
		}
	}
}

// literalSuffix parses a trailing {N} or {N+}.
func literalSuffix(s string) (n int64, sync, ok bool) {
	if !strings.HasSuffix(s, "}") {
		return 0, false, false
	}
	i := strings.LastIndexByte(s, '{')
	if i < 0 {
		return 0, false, false
	}
	num := s[i+1 : len(s)-1]
	sync = true
	if strings.HasSuffix(num, "+") {
		num, sync = num[:len(num)-1], false
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, false, false
	}
	return n, sync, true
}

// splitCommand returns the tag, the upper-cased command name and the rest.
func splitCommand(line string) (tag, cmd, args string) {
	tag, rest, _ := strings.Cut(line, " ")
	cmd, args, _ = strings.Cut(rest, " ")
	return tag, strings.ToUpper(cmd), args
}
