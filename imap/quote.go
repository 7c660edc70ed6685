package imap

import "strings"

// quotable reports whether s can be sent as a quoted string to any IMAP4rev1
// server: 7-bit, no NUL, CR or LF (RFC 3501 section 4.3). Anything else
// goes as a literal.
func quotable(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == 0, c == '\r', c == '\n', c >= 0x80:
			return false
		}
	}
	return true
}

// quote renders a quotable s as a quoted string, escaping \ and ".
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '"' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
