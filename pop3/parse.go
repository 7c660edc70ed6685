package pop3

import "strings"

// maxKeyword bounds a command keyword. RFC 1939 and RFC 2449 keywords are
// three or four characters; a little slack lets "unknown command" name
// longer junk without accepting arbitrary text as a keyword.
const maxKeyword = 8

// command is one parsed command line.
type command struct {
	name string   // the keyword, upper case
	rest string   // everything after the keyword and one separator, verbatim (PASS, USER)
	args []string // rest split on spaces and tabs, empty fields dropped
}

// parse splits a command line (without its CRLF) into keyword and arguments.
// Keywords are case-insensitive (RFC 1939 section 3). It rejects NUL and
// other control characters except tab, and keywords that are not short
// alphanumeric words; both errors are refusals that count as invalid.
func parse(line []byte) (*command, error) {
	for _, b := range line {
		switch {
		case b == 0:
			return nil, errNUL
		case b < ' ' && b != '\t', b == 0x7f:
			return nil, errSyntax
		}
	}
	s := string(line)
	name, rest, _ := strings.Cut(s, " ")
	if name == "" || len(name) > maxKeyword {
		return nil, errSyntax
	}
	for i := 0; i < len(name); i++ {
		if !isKeywordByte(name[i]) {
			return nil, errSyntax
		}
	}
	return &command{name: strings.ToUpper(name), rest: rest, args: fields(rest)}, nil
}

func isKeywordByte(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-'
}

// fields splits s on spaces and tabs, dropping empty fields.
func fields(s string) []string {
	var out []string
	for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ' ' || r == '\t' }) {
		out = append(out, f)
	}
	return out
}
