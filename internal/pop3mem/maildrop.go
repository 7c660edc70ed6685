package pop3mem

import (
	"bufio"
	"bytes"
	"fmt"
)

// message is one stored message, with CRLF line endings.
type message struct {
	data []byte
	uid  string
}

// AddMessage appends raw to user's maildrop. Bare LF line endings become
// CRLF and a final line ending is added if missing, so sizes match what
// RETR sends (RFC 1939 section 11).
func (s *Server) AddMessage(user string, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUID++
	m := &message{data: crlf(raw), uid: fmt.Sprintf("m%06d", s.nextUID)}
	s.boxes[user] = append(s.boxes[user], m)
}

// Messages returns user's maildrop as RETR would deliver it.
func (s *Server) Messages(user string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, m := range s.boxes[user] {
		out = append(out, append([]byte(nil), m.data...))
	}
	return out
}

// snapshot is the maildrop as a session sees it from login.
func (s *Server) snapshot(user string) []*message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*message(nil), s.boxes[user]...)
}

// expunge removes the given messages from user's maildrop (the UPDATE
// state, RFC 1939 section 6).
func (s *Server) expunge(user string, gone map[*message]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.boxes[user][:0:0]
	for _, m := range s.boxes[user] {
		if !gone[m] {
			kept = append(kept, m)
		}
	}
	s.boxes[user] = kept
}

// crlf normalises line endings to CRLF and ends the data with one.
func crlf(raw []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(raw) + len(raw)/32 + 2)
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i < 0 {
			b.Write(raw)
			b.WriteString("\r\n")
			break
		}
		b.Write(bytes.TrimSuffix(raw[:i], []byte("\r")))
		b.WriteString("\r\n")
		raw = raw[i+1:]
	}
	return b.Bytes()
}

// writeMultiline sends CRLF-terminated data dot-stuffed, then the
// terminating "." line (RFC 1939 section 3). Only the first limit body
// lines after the header are sent when limit >= 0 (TOP).
func writeMultiline(w *bufio.Writer, data []byte, limit int) {
	inBody := false
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data[:i+1]
		data = data[i+1:]
		if inBody && limit >= 0 {
			if limit == 0 {
				break
			}
			limit--
		}
		if line[0] == '.' {
			w.WriteByte('.')
		}
		w.Write(line)
		if !inBody && len(line) == 2 {
			inBody = true
		}
	}
	w.WriteString(".\r\n")
}
