package imap

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/mailfront/mailfront/proxy"
)

// nonSyncLiteralMax is the largest non-synchronizing literal mailfront
// accepts before login: RFC 7888 section 4 (LITERAL-) caps them at 4096
// octets, and the bytes are already on the wire when the size is known.
const nonSyncLiteralMax = 4096

// maxListDepth bounds nested parenthesised lists (only ID uses one).
const maxListDepth = 4

// tokenKind is the lexical kind of one command argument.
type tokenKind uint8

const (
	tokAtom tokenKind = iota + 1
	tokQuoted
	tokLiteral
	tokList
)

// token is one parsed argument. Quoted strings are unescaped; literals are
// their bytes; lists hold their members.
type token struct {
	kind tokenKind
	val  []byte
	list []token
}

// command is one complete client command, literals included.
type command struct {
	tag  string // "" when the line had no valid tag
	name string // upper case
	args []token
}

// source is where commands come from: a *proxy.Conn, or a byte slice in
// tests and fuzzing.
type source interface {
	ReadLine() ([]byte, error)
	ReadFull(p []byte) error
}

// parseLimits bounds one command.
type parseLimits struct {
	line    int // all line parts together, CRLFs excluded
	literal int // all literals together
	nonSync int // one non-synchronizing literal
}

func limitsFor(l proxy.Limits) parseLimits {
	return parseLimits{line: l.Line, literal: l.Literal, nonSync: min(l.Literal, nonSyncLiteralMax)}
}

// scanner reads one command from src, line part by line part. It asks for a
// synchronizing literal (cont sends "+ Ready") only once the size is known
// to fit; cont sees the command so far and may refuse instead.
type scanner struct {
	src      source
	cont     func(*command) error
	cmd      *command
	lim      parseLimits
	line     []byte
	pos      int
	lineSum  int
	literals int
}

// readCommand reads and parses one command. Errors are *protoError (BAD:
// the command was malformed and has been consumed), *proxy.LimitError (the
// framing is lost) or the source's read errors. The returned command carries
// the tag whenever one could be read, also alongside an error.
func readCommand(src source, lim parseLimits, cont func(*command) error) (*command, error) {
	line, err := src.ReadLine()
	if err != nil {
		return &command{}, err
	}
	cmd := &command{}
	s := &scanner{src: src, cont: cont, cmd: cmd, lim: lim, line: line, lineSum: len(line)}
	if err := s.parse(cmd); err != nil {
		if _, ok := err.(*protoError); ok {
			if ferr := s.skipRest(); ferr != nil {
				return cmd, ferr
			}
		}
		return cmd, err
	}
	return cmd, nil
}

func (s *scanner) parse(cmd *command) error {
	if bytes.IndexByte(s.line, 0) >= 0 {
		return bad("NUL byte in command")
	}
	tag := s.run(isTagChar)
	if tag == "" || !s.eat(' ') {
		return bad("Missing or invalid tag")
	}
	cmd.tag = tag
	name := s.run(isAtomChar)
	if name == "" {
		return bad("Missing or invalid command name")
	}
	cmd.name = strings.ToUpper(name)
	for s.pos < len(s.line) {
		if !s.eat(' ') {
			return bad("Expected a space between arguments")
		}
		tok, err := s.arg(0)
		if err != nil {
			return err
		}
		cmd.args = append(cmd.args, tok)
	}
	return nil
}

// arg parses one argument: an atom, a quoted string, a literal or a list.
func (s *scanner) arg(depth int) (token, error) {
	if s.pos >= len(s.line) {
		return token{}, bad("Missing argument")
	}
	switch s.line[s.pos] {
	case '"':
		return s.quoted()
	case '{':
		return s.literal()
	case '(':
		return s.list(depth)
	}
	v := s.run(isAStringChar)
	if v == "" {
		return token{}, bad("Invalid character in argument")
	}
	return token{kind: tokAtom, val: []byte(v)}, nil
}

func (s *scanner) list(depth int) (token, error) {
	if depth >= maxListDepth {
		return token{}, bad("Lists nested too deeply")
	}
	s.pos++ // '('
	t := token{kind: tokList}
	for {
		if s.eat(')') {
			return t, nil
		}
		if len(t.list) > 0 && !s.eat(' ') {
			return token{}, bad("Expected a space in list")
		}
		m, err := s.arg(depth + 1)
		if err != nil {
			return token{}, err
		}
		t.list = append(t.list, m)
	}
}

// quoted parses a quoted string: only \\ and \" are escapes (RFC 9051
// section 4.3), and 8-bit bytes must be valid UTF-8.
func (s *scanner) quoted() (token, error) {
	s.pos++ // '"'
	var v []byte
	for s.pos < len(s.line) {
		c := s.line[s.pos]
		s.pos++
		switch c {
		case '"':
			if !utf8.Valid(v) {
				return token{}, bad("Invalid UTF-8 in quoted string")
			}
			return token{kind: tokQuoted, val: v}, nil
		case '\\':
			if s.pos >= len(s.line) || (s.line[s.pos] != '\\' && s.line[s.pos] != '"') {
				return token{}, bad("Invalid escape in quoted string")
			}
			v = append(v, s.line[s.pos])
			s.pos++
		default:
			v = append(v, c)
		}
	}
	return token{}, bad("Unterminated quoted string")
}

// literal reads {n} or {n+} at the end of the current line part, the n
// bytes after it, and the next line part.
func (s *scanner) literal() (token, error) {
	n, sync, err := literalSize(s.line[s.pos:], s.maxLiteral(), s.maxNonSync())
	if err != nil {
		return token{}, err
	}
	if sync {
		if err := s.cont(s.cmd); err != nil {
			return token{}, err
		}
	}
	v := make([]byte, n)
	if err := s.src.ReadFull(v); err != nil {
		return token{}, err
	}
	s.literals += n
	if err := s.nextLine(); err != nil {
		return token{}, err
	}
	if bytes.IndexByte(v, 0) >= 0 {
		return token{}, bad("NUL byte in literal")
	}
	return token{kind: tokLiteral, val: v}, nil
}

// maxLiteral is what is left of the literal budget.
func (s *scanner) maxLiteral() int { return s.lim.literal - s.literals }

// maxNonSync is the largest non-synchronizing literal that fits.
func (s *scanner) maxNonSync() int { return min(s.maxLiteral(), s.lim.nonSync) }

// nextLine reads the line part that follows a literal.
func (s *scanner) nextLine() error {
	line, err := s.src.ReadLine()
	if err != nil {
		return err
	}
	s.lineSum += len(line)
	if s.lineSum > s.lim.line {
		return &proxy.LimitError{Kind: proxy.LimitLine, Max: int64(s.lim.line)}
	}
	s.line, s.pos = line, 0
	if bytes.IndexByte(line, 0) >= 0 {
		return bad("NUL byte in command")
	}
	return nil
}

// skipRest consumes what is left of a malformed command so that its
// literals are not read as commands: non-synchronizing literals are already
// on the wire and are read and dropped; a synchronizing one is never asked
// for, so the client sends nothing more.
func (s *scanner) skipRest() error {
	for {
		i := bytes.LastIndexByte(s.line, '{')
		if i < 0 {
			return nil
		}
		n, sync, err := literalSize(s.line[i:], s.maxLiteral(), s.maxNonSync())
		if err != nil {
			if _, ok := err.(*proxy.LimitError); ok && !sync {
				return err
			}
			return nil // not a literal, or one the client will not send
		}
		if sync {
			return nil
		}
		if err := s.src.ReadFull(make([]byte, n)); err != nil {
			return err
		}
		s.literals += n
		line, err := s.src.ReadLine()
		if err != nil {
			return err
		}
		s.lineSum += len(line)
		if s.lineSum > s.lim.line {
			return &proxy.LimitError{Kind: proxy.LimitLine, Max: int64(s.lim.line)}
		}
		s.line = line
	}
}

// literalSize parses "{n}" or "{n+}", which must be all of b. A size above
// syncMax (nonSyncMax for "{n+}") is a *proxy.LimitError, and sync reports
// which kind it was; digits are never accumulated past the bound, so no
// size overflows.
func literalSize(b []byte, syncMax, nonSyncMax int) (n int, sync bool, err error) {
	if len(b) < 3 || b[0] != '{' || b[len(b)-1] != '}' {
		return 0, false, bad("Invalid literal")
	}
	digits := b[1 : len(b)-1]
	sync = true
	if d, ok := bytes.CutSuffix(digits, []byte("+")); ok {
		digits, sync = d, false
	}
	if len(digits) == 0 {
		return 0, sync, bad("Invalid literal size")
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, sync, bad("Invalid literal size")
		}
	}
	limit := syncMax
	if !sync {
		limit = nonSyncMax
	}
	for _, c := range digits {
		n = n*10 + int(c-'0')
		if n > limit {
			return 0, sync, &proxy.LimitError{Kind: proxy.LimitLiteral, Max: int64(limit)}
		}
	}
	return n, sync, nil
}

// run consumes the longest run of bytes accepted by ok.
func (s *scanner) run(ok func(byte) bool) string {
	start := s.pos
	for s.pos < len(s.line) && ok(s.line[s.pos]) {
		s.pos++
	}
	return string(s.line[start:s.pos])
}

func (s *scanner) eat(c byte) bool {
	if s.pos < len(s.line) && s.line[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// isAtomChar is ATOM-CHAR of RFC 9051 section 9: printable 7-bit ASCII
// except atom-specials.
func isAtomChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '(', ')', '{', '%', '*', '"', '\\', ']':
		return false
	}
	return true
}

// isAStringChar is ASTRING-CHAR: ATOM-CHAR or "]".
func isAStringChar(c byte) bool { return c == ']' || isAtomChar(c) }

// isTagChar is ASTRING-CHAR except "+".
func isTagChar(c byte) bool { return c != '+' && isAStringChar(c) }

// astring returns an atom, quoted string or literal argument as a string.
func (t token) astring() (string, bool) {
	switch t.kind {
	case tokAtom, tokQuoted, tokLiteral:
		return string(t.val), true
	}
	return "", false
}

// isNIL reports whether t is the atom NIL.
func (t token) isNIL() bool {
	return t.kind == tokAtom && strings.EqualFold(string(t.val), "NIL")
}
