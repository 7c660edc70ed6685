package imap

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mailfront/mailfront/proxy"
)

// byteSource is source over a byte slice with proxy.Conn's line semantics
// (CRLF or LF stripped, a line over the limit is a *proxy.LimitError).
type byteSource struct {
	r    *bufio.Reader
	line int
}

func newByteSource(in string, line int) *byteSource {
	return &byteSource{r: bufio.NewReader(strings.NewReader(in)), line: line}
}

func (b *byteSource) ReadLine() ([]byte, error) {
	var line []byte
	for {
		c, err := b.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if c == '\n' {
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		if line = append(line, c); len(line) > b.line+1 {
			return nil, &proxy.LimitError{Kind: proxy.LimitLine, Max: int64(b.line)}
		}
	}
}

func (b *byteSource) ReadFull(p []byte) error {
	_, err := io.ReadFull(b.r, p)
	return err
}

// render shows parsed arguments compactly: atom, "quoted", {literal}, (list).
func render(toks []token) string {
	var parts []string
	for _, t := range toks {
		switch t.kind {
		case tokAtom:
			parts = append(parts, string(t.val))
		case tokQuoted:
			parts = append(parts, `"`+string(t.val)+`"`)
		case tokLiteral:
			parts = append(parts, "{"+string(t.val)+"}")
		case tokList:
			parts = append(parts, "("+render(t.list)+")")
		}
	}
	return strings.Join(parts, " ")
}

var testParseLimits = parseLimits{line: 100, literal: 64, nonSync: 32}

// errKind names an error's class for the tables.
func errKind(err error) string {
	var le *proxy.LimitError
	switch {
	case err == nil:
		return ""
	case isProto(err):
		return "BAD"
	case errors.As(err, &le):
		return "limit " + le.Kind.String()
	}
	return "other: " + err.Error()
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		in       string
		wantTag  string
		wantName string
		wantArgs string
		wantErr  string
		wantCont int    // "+ Ready" continuations sent
		next     string // tag of the command after, when the input has one
	}{
		{name: "no args", in: "a1 NOOP\r\n", wantTag: "a1", wantName: "NOOP"},
		{name: "lower case name", in: "x capability\n", wantTag: "x", wantName: "CAPABILITY"},
		{name: "atoms", in: "a LOGIN alice secret\r\n", wantTag: "a", wantName: "LOGIN", wantArgs: "alice secret"},
		{name: "quoted with escapes", in: `a LOGIN "al\"ice" "p\\w d"` + "\r\n", wantTag: "a", wantName: "LOGIN", wantArgs: `"al"ice" "p\w d"`},
		{name: "empty quoted", in: `a LOGIN "" ""` + "\r\n", wantTag: "a", wantName: "LOGIN", wantArgs: `"" ""`},
		{name: "utf-8 quoted", in: "a LOGIN \"j\u00f6rg\" x\r\n", wantTag: "a", wantName: "LOGIN", wantArgs: "\"j\u00f6rg\" x"},
		{name: "sync literals", in: "a LOGIN {5}\r\nalice {6}\r\nsec\r\nt\r\n", wantTag: "a", wantName: "LOGIN", wantArgs: "{alice} {sec\r\nt}", wantCont: 2},
		{name: "non-sync literal", in: "a LOGIN {5+}\r\nalice pw\r\n", wantTag: "a", wantName: "LOGIN", wantArgs: "{alice} pw"},
		{name: "empty literal", in: "a LOGIN {0}\r\n {0+}\r\n\r\n", wantTag: "a", wantName: "LOGIN", wantArgs: "{} {}", wantCont: 1},
		{name: "id list", in: `a ID ("name" "x" "version" NIL)` + "\r\n", wantTag: "a", wantName: "ID", wantArgs: `("name" "x" "version" NIL)`},
		{name: "empty list", in: "a ID ()\r\n", wantTag: "a", wantName: "ID", wantArgs: "()"},
		{name: "tag with bracket", in: "a] NOOP\r\n", wantTag: "a]", wantName: "NOOP"},
		{name: "then next", in: "a NOOP\r\nb NOOP\r\n", wantTag: "a", wantName: "NOOP", next: "b"},

		{name: "empty line", in: "\r\n", wantErr: "BAD"},
		{name: "tag only", in: "a\r\n", wantErr: "BAD"},
		{name: "plus in tag", in: "a+ NOOP\r\n", wantErr: "BAD"},
		{name: "star tag", in: "* NOOP\r\n", wantErr: "BAD"},
		{name: "double space", in: "a  NOOP\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "trailing space", in: "a NOOP \r\n", wantTag: "a", wantErr: "BAD"},
		{name: "unterminated quoted", in: "a LOGIN \"alice\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "bad escape", in: `a LOGIN "a\lice" x` + "\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "nul in line", in: "a NO\x00OP\r\n", wantErr: "BAD"},
		{name: "nul in quoted", in: "a LOGIN \"a\x00\" x\r\n", wantErr: "BAD"},
		{name: "nul in literal", in: "a LOGIN {2}\r\na\x00 x\r\n", wantTag: "a", wantErr: "BAD", wantCont: 1},
		{name: "nul after literal", in: "a LOGIN {1}\r\na \x00\r\nb NOOP\r\n", wantTag: "a", wantErr: "BAD", wantCont: 1, next: "b"},
		{name: "8-bit atom", in: "a LOGIN \xe9lise x\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "invalid utf-8 quoted", in: "a LOGIN \"\xff\" x\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "ctl in atom", in: "a LOGIN al\x01ce x\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "literal not at end", in: "a LOGIN {5}x\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "literal no digits", in: "a LOGIN {}\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "literal bad digits", in: "a LOGIN {5a}\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "literal minus", in: "a LOGIN {-1}\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "unclosed list", in: "a ID (\"name\"\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "deep lists", in: "a ID ((((()))))\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "wildcard atom", in: "a LOGIN al*ce x\r\n", wantTag: "a", wantErr: "BAD"},
		{name: "bad then non-sync literal skipped", in: "a LOGIN \"x {3+}\r\nabc\r\nb NOOP\r\n", wantTag: "a", wantErr: "BAD", next: "b"},
		{name: "bad then sync literal not invited", in: "a LOGIN \"x {3}\r\nb NOOP\r\n", wantTag: "a", wantErr: "BAD", next: "b"},

		{name: "sync literal over limit", in: "a LOGIN {65}\r\n", wantTag: "a", wantErr: "limit literal size"},
		{name: "literal 2^32-1", in: "a LOGIN {4294967295}\r\n", wantTag: "a", wantErr: "limit literal size"},
		{name: "literal overflow", in: "a LOGIN {99999999999999999999}\r\n", wantTag: "a", wantErr: "limit literal size"},
		{name: "literal overflow non-sync", in: "a LOGIN {99999999999999999999+}\r\n", wantTag: "a", wantErr: "limit literal size"},
		{name: "non-sync over its limit", in: "a LOGIN {33+}\r\n" + strings.Repeat("x", 33) + " y\r\n", wantTag: "a", wantErr: "limit literal size"},
		{name: "literals over total", in: "a LOGIN {32}\r\n" + strings.Repeat("x", 32) + " {33}\r\n", wantTag: "a", wantErr: "limit literal size", wantCont: 1},
		{name: "line over limit", in: "a LOGIN " + strings.Repeat("x", 101) + "\r\n", wantErr: "limit line length"},
		{name: "line parts over limit", in: "a LOGIN " + strings.Repeat("x", 80) + " {1}\r\nx " + strings.Repeat("y", 20) + "\r\n", wantTag: "a", wantErr: "limit line length", wantCont: 1},
		{name: "bad then huge non-sync", in: "a LOGIN \"x {5000+}\r\n", wantTag: "a", wantErr: "limit literal size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newByteSource(tt.in, testParseLimits.line)
			conts := 0
			cmd, err := readCommand(src, testParseLimits, func(*command) error { conts++; return nil })
			if got := errKind(err); got != tt.wantErr {
				t.Fatalf("error: got %q (%v), want %q", got, err, tt.wantErr)
			}
			if cmd.tag != tt.wantTag {
				t.Errorf("tag: got %q, want %q", cmd.tag, tt.wantTag)
			}
			if conts != tt.wantCont {
				t.Errorf("continuations: got %d, want %d", conts, tt.wantCont)
			}
			if err != nil {
				if tt.next != "" {
					checkNext(t, src, tt.next)
				}
				return
			}
			if cmd.name != tt.wantName {
				t.Errorf("name: got %q, want %q", cmd.name, tt.wantName)
			}
			if got := render(cmd.args); got != tt.wantArgs {
				t.Errorf("args: got %q, want %q", got, tt.wantArgs)
			}
			if tt.next != "" {
				checkNext(t, src, tt.next)
			}
		})
	}
}

// checkNext checks that the next command read is tagged tag: the previous
// one consumed exactly its own bytes.
func checkNext(t *testing.T, src source, tag string) {
	t.Helper()
	next, err := readCommand(src, testParseLimits, func(*command) error { return nil })
	if err != nil || next.tag != tag {
		t.Errorf("next command: got tag %q, %v; want %q", next.tag, err, tag)
	}
}

func TestLiteralSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		wantN    int
		wantSync bool
		wantErr  string
	}{
		{"{0}", 0, true, ""},
		{"{10}", 10, true, ""},
		{"{10+}", 10, false, ""},
		{"{50+}", 50, false, ""},
		{"{51+}", 0, false, "limit literal size"},
		{"{0010}", 10, true, ""},
		{"{100}", 100, true, ""},
		{"{101}", 0, true, "limit literal size"},
		{"{4294967295}", 0, true, "limit literal size"},
		{"{18446744073709551616}", 0, true, "limit literal size"},
		{"{+}", 0, false, "BAD"},
		{"{1++}", 0, false, "BAD"},
		{"{ 1}", 0, true, "BAD"},
		{"{1", 0, false, "BAD"},
		{"1}", 0, false, "BAD"},
	}
	for _, tt := range tests {
		n, sync, err := literalSize([]byte(tt.in), 100, 50)
		if got := errKind(err); got != tt.wantErr {
			t.Errorf("%s: error got %q, want %q", tt.in, got, tt.wantErr)
			continue
		}
		if err == nil && (n != tt.wantN || sync != tt.wantSync) {
			t.Errorf("%s: got %d sync=%v, want %d sync=%v", tt.in, n, sync, tt.wantN, tt.wantSync)
		}
	}
}

func TestParseResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in                      string
		tag, status, code, text string
		data                    string
		wantErr                 bool
	}{
		{in: "* OK [CAPABILITY IMAP4rev1 IDLE] ready", tag: "*", status: "OK", code: "CAPABILITY IMAP4rev1 IDLE", text: "ready"},
		{in: "* ok hi", tag: "*", status: "OK", text: "hi"},
		{in: "* PREAUTH welcome", tag: "*", status: "PREAUTH", text: "welcome"},
		{in: "mf1 NO [AUTHENTICATIONFAILED] no", tag: "mf1", status: "NO", code: "AUTHENTICATIONFAILED", text: "no"},
		{in: "mf2 OK", tag: "mf2", status: "OK"},
		{in: "* CAPABILITY IMAP4rev1 ID", tag: "*", data: "CAPABILITY IMAP4rev1 ID"},
		{in: "+ ", tag: "+"},
		{in: "+", tag: "+"},
		{in: "+ VXNlcm5hbWU6", tag: "+", text: "VXNlcm5hbWU6"},
		{in: "", wantErr: true},
		{in: "garbage", wantErr: true},
		{in: "mf1 FOO bar", wantErr: true},
		{in: "* OK [CAPABILITY unterminated", wantErr: true},
		{in: "a\x01 OK x", wantErr: true},
	}
	for _, tt := range tests {
		r, err := parseResponse([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: got error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		got := response{tag: r.tag, status: r.status, code: r.code, text: r.text, data: r.data}
		want := response{tag: tt.tag, status: tt.status, code: tt.code, text: tt.text, data: tt.data}
		if got != want {
			t.Errorf("%q: got %+v, want %+v", tt.in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a NOOP\r\n", "a LOGIN alice secret\r\n", `a LOGIN "a\"b" "c\\d"` + "\r\n",
		"a LOGIN {5}\r\nalice {6}\r\nsecret\r\n", "a LOGIN {5+}\r\nalice x\r\n",
		`a ID ("name" "x" "version" NIL)` + "\r\n", "a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
		"a LOGIN {4294967295}\r\n", "a LOGIN \"x {3+}\r\nabc\r\nb NOOP\r\n", "a NO\x00OP\r\n",
		"a ID ((((()))))\r\n", "a LOGIN {99999999999999999999+}\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := newByteSource(string(in), testParseLimits.line)
		for range 64 {
			cmd, err := readCommand(src, testParseLimits, func(*command) error { return nil })
			if err != nil && !isProto(err) {
				return
			}
			if err != nil {
				continue
			}
			checkParsed(t, cmd)
		}
	})
}

// checkParsed checks what a successful parse promises.
func checkParsed(t *testing.T, cmd *command) {
	t.Helper()
	if cmd.tag == "" || cmd.name == "" {
		t.Fatalf("got tag %q name %q, want both", cmd.tag, cmd.name)
	}
	if !validTag([]byte(cmd.tag)) || !validAtom(cmd.name) {
		t.Fatalf("got tag %q name %q, want valid ones", cmd.tag, cmd.name)
	}
	if n := literalBytes(cmd.args); n > testParseLimits.literal {
		t.Fatalf("got %d literal bytes, want at most %d", n, testParseLimits.literal)
	}
}

func literalBytes(toks []token) int {
	n := 0
	for _, t := range toks {
		if t.kind == tokLiteral {
			n += len(t.val)
		}
		n += literalBytes(t.list)
	}
	return n
}

func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1] hi", "mf1 NO [X] y", "+ ", "* CAPABILITY A B", "* ID (\"name\" {4}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := parseResponse(in)
		if err != nil {
			return
		}
		if r.tag == "" {
			t.Fatalf("got empty tag for %q", in)
		}
		r.capabilities()
		literalAtEnd(in)
	})
}

// TestParseContinuationRefused: when cont refuses a literal, nothing more of
// the command is read, and the next command parses.
func TestParseContinuationRefused(t *testing.T) {
	t.Parallel()
	src := newByteSource("a APPEND INBOX {5}\r\nb NOOP\r\n", testParseLimits.line)
	refusal := bad("Command not valid before login")
	cmd, err := readCommand(src, testParseLimits, func(*command) error { return refusal })
	if err != refusal || cmd.tag != "a" {
		t.Fatalf("got tag %q, %v; want tag a and the refusal", cmd.tag, err)
	}
	checkNext(t, src, "b")
}
