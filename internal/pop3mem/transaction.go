package pop3mem

import (
	"fmt"
	"strconv"
	"strings"
)

// transaction runs a TRANSACTION-state command (RFC 1939 section 5).
func (ss *session) transaction(name, arg string) {
	switch name {
	case "STAT":
		n, size := ss.stat()
		ss.ok("%d %d", n, size)
	case "LIST":
		ss.list(arg, func(m *message) string { return strconv.Itoa(len(m.data)) })
	case "UIDL":
		ss.list(arg, func(m *message) string { return m.uid })
	case "RETR":
		if m := ss.msg(arg); m != nil {
			ss.ok("%d octets", len(m.data))
			writeMultiline(ss.w, m.data, -1)
			return
		}
		ss.err("no such message")
	case "TOP":
		ss.top(arg)
	case "DELE":
		if m := ss.msg(arg); m != nil {
			ss.deleted[m] = true
			ss.ok("message deleted")
			return
		}
		ss.err("no such message")
	case "RSET":
		clear(ss.deleted)
		ss.ok("maildrop has %d messages", len(ss.msgs))
	case "NOOP":
		ss.w.WriteString("+OK\r\n")
	default:
		ss.err("unknown command")
	}
}

func (ss *session) stat() (n, size int) {
	for _, m := range ss.msgs {
		if !ss.deleted[m] {
			n++
			size += len(m.data)
		}
	}
	return n, size
}

// list answers LIST and UIDL, for one message or all.
func (ss *session) list(arg string, value func(*message) string) {
	if arg != "" {
		m := ss.msg(arg)
		if m == nil {
			ss.err("no such message")
			return
		}
		ss.ok("%s %s", strings.TrimSpace(arg), value(m))
		return
	}
	ss.ok("listing follows")
	for i, m := range ss.msgs {
		if !ss.deleted[m] {
			fmt.Fprintf(ss.w, "%d %s\r\n", i+1, value(m))
		}
	}
	ss.w.WriteString(".\r\n")
}

// top sends the header and the first n body lines of a message.
func (ss *session) top(arg string) {
	num, lines, _ := strings.Cut(arg, " ")
	m := ss.msg(num)
	n, err := strconv.Atoi(strings.TrimSpace(lines))
	if m == nil || err != nil || n < 0 {
		ss.err("usage: TOP msg n")
		return
	}
	ss.ok("top of message follows")
	writeMultiline(ss.w, m.data, n)
}
