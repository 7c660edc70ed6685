package layout

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The tests in this file keep the Markdown honest: ARCHITECTURE.md's
// package table says what the rules above enforce, every test it cites
// exists, and every relative link in the repository's Markdown leads
// somewhere.

// repoRoot is the repository's root, seen from this package.
var repoRoot = filepath.Join("..", "..")

// TestArchitecturePackages checks that ARCHITECTURE.md's package table
// lists exactly the packages of the rules map, each with the same imports.
func TestArchitecturePackages(t *testing.T) {
	rows := table(t, architecture(t), "Packages", "package")
	doc := map[string][]string{}
	for _, row := range rows {
		if len(row) != 3 {
			t.Errorf("package table row %q: got %d cells, want 3 (package, holds, may import)", row, len(row))
			continue
		}
		names := codeSpans(row[0])
		if len(names) != 1 {
			t.Errorf("package table row %q: got %d package names, want one code span", row, len(names))
			continue
		}
		if _, dup := doc[names[0]]; dup {
			t.Errorf("package table lists %s twice", names[0])
		}
		doc[names[0]] = codeSpans(row[2])
	}
	for pkg, rule := range rules {
		got, ok := doc[pkg]
		if !ok {
			t.Errorf("ARCHITECTURE.md's package table has no row for %s, which layout_test.go's rules list", pkg)
			continue
		}
		want := slices.Clone(rule.may)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ARCHITECTURE.md says %s may import %q; layout_test.go's rules say %q", pkg, got, want)
		}
	}
	for pkg := range doc {
		if _, ok := rules[pkg]; !ok {
			t.Errorf("ARCHITECTURE.md's package table lists %s, which layout_test.go's rules do not", pkg)
		}
	}
}

// minInvariants is how many invariants the design has.
const minInvariants = 12

// TestArchitectureInvariants checks the shape of ARCHITECTURE.md's
// invariant table: invariants numbered from 1, each citing at least one
// test, or saying that it is planned work. (That every cited test exists
// is TestArchitectureTestsExist's job.)
func TestArchitectureInvariants(t *testing.T) {
	rows := table(t, architecture(t), "Invariants", "invariant")
	number := regexp.MustCompile(`^(\d+)\.\s`)
	for i, row := range rows {
		m := number.FindStringSubmatch(row[0])
		if m == nil {
			t.Errorf("invariant table row %d: %q does not start with its number", i+1, row[0])
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n != i+1 {
			t.Errorf("invariant table row %d is numbered %d", i+1, n)
		}
		last := row[len(row)-1]
		if len(citedTests(last)) == 0 && !strings.Contains(last, "planned") {
			t.Errorf("invariant %s cites no test and is not marked planned", m[1])
		}
	}
	if len(rows) < minInvariants {
		t.Errorf("invariant table: got %d invariants, want at least %d", len(rows), minInvariants)
	}
}

// TestArchitectureTestsExist checks that every test, fuzz target or
// benchmark named in a code span of ARCHITECTURE.md exists, so that the
// document never cites a test that was renamed or removed. A name may be
// qualified by its package (`imap.TestLineTooLong`); an unqualified name
// belongs to the package last named in the same table cell or line, or to
// any package when none was. A trailing * matches by prefix.
func TestArchitectureTestsExist(t *testing.T) {
	funcs := testFuncs(t)
	for _, ln := range proseLines(architecture(t)) {
		contexts := []string{ln.text}
		if isTableRow(ln.text) {
			contexts = splitRow(ln.text)
		}
		for _, ctx := range contexts {
			for _, c := range citedTests(ctx) {
				if !c.found(funcs) {
					where := c.pkg
					if where == "" {
						where = "any package"
					}
					t.Errorf("ARCHITECTURE.md line %d cites %s, which is not a test function in %s", ln.n, c.name, where)
				}
			}
		}
	}
}

// TestMarkdownLinks checks every relative link in every Markdown file of
// the repository: the file or directory exists inside the repository, and
// an #anchor into a Markdown file names one of its headings.
func TestMarkdownLinks(t *testing.T) {
	files := markdownFiles(t)
	if !slices.Contains(files, "ARCHITECTURE.md") || !slices.Contains(files, "README.md") {
		t.Fatalf("got Markdown files %q, want README.md and ARCHITECTURE.md among them", files)
	}
	anchors := map[string]map[string]bool{} // file -> its heading anchors
	anchorsOf := func(rel string) map[string]bool {
		if a, ok := anchors[rel]; ok {
			return a
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		anchors[rel] = headingAnchors(string(b))
		return anchors[rel]
	}
	for _, file := range files {
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(file)))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(string(b)) {
			target, err := resolveLink(file, l.target)
			if err != nil {
				t.Errorf("%s:%d: link %q: %v", file, l.line, l.target, err)
				continue
			}
			if target.path == "" {
				continue // not relative
			}
			fi, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(target.path)))
			if err != nil {
				t.Errorf("%s:%d: link %q: %s does not exist", file, l.line, l.target, target.path)
				continue
			}
			if target.anchor == "" || fi.IsDir() || !strings.HasSuffix(target.path, ".md") {
				continue
			}
			if !anchorsOf(target.path)[target.anchor] {
				t.Errorf("%s:%d: link %q: %s has no heading with the anchor #%s", file, l.line, l.target, target.path, target.anchor)
			}
		}
	}
}

// TestHeadingAnchors pins the anchor rules TestMarkdownLinks uses to
// GitHub's: lower case, spaces to hyphens, punctuation dropped, inline
// markup reduced to its text, and -1, -2... for repeated headings.
func TestHeadingAnchors(t *testing.T) {
	src := "# mailfront\n" +
		"## Password guessing: the guard\n" +
		"### Recipe: dns-01 with RFC 2136 (BIND, Knot, PowerDNS)\n" +
		"## The path of a connection\n" +
		"## `proxy` and [the relay](proxy/relay.go)\n" +
		"## snake_case stays, ≤ goes ##\n" +
		"```\n# not a heading\n```\n" +
		"## Tests\n## Tests\n"
	want := []string{"mailfront", "password-guessing-the-guard",
		"recipe-dns-01-with-rfc-2136-bind-knot-powerdns", "the-path-of-a-connection",
		"proxy-and-the-relay", "snake_case-stays--goes", "tests", "tests-1"}
	got := headingAnchors(src)
	for _, a := range want {
		if !got[a] {
			t.Errorf("anchor %q missing; got %v", a, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d anchors %v, want %d", len(got), got, len(want))
	}
}

// architecture is ARCHITECTURE.md's text.
func architecture(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mdLine is a line of Markdown outside fenced code blocks, with its number.
type mdLine struct {
	n    int
	text string
}

// fence opens or closes a fenced code block.
var fence = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")

// proseLines returns src's lines outside fenced code blocks.
func proseLines(src string) []mdLine {
	var out []mdLine
	open := "" // the fence that opened the current code block
	for i, text := range strings.Split(src, "\n") {
		text = strings.TrimRight(text, "\r")
		if m := fence.FindStringSubmatch(text); m != nil {
			switch {
			case open == "":
				open = m[1]
				continue
			case m[1][0] == open[0] && len(m[1]) >= len(open) && strings.TrimSpace(text[len(m[0]):]) == "":
				open = ""
				continue
			}
		}
		if open == "" {
			out = append(out, mdLine{i + 1, text})
		}
	}
	return out
}

// atxHeading is a heading line: its level's hashes and its text.
var atxHeading = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)

// table returns the rows (cells, header and delimiter left out) of the
// first table in the section headed heading whose first header cell is
// first.
func table(t *testing.T, src, heading, first string) [][]string {
	t.Helper()
	level := 0
	var rows [][]string
	inTable := false
	for _, ln := range proseLines(src) {
		if m := atxHeading.FindStringSubmatch(ln.text); m != nil {
			if level > 0 && len(m[1]) <= level {
				break // the section ended
			}
			if level == 0 && strings.TrimSpace(m[2]) == heading {
				level = len(m[1])
			}
			continue
		}
		if level == 0 {
			continue
		}
		if !isTableRow(ln.text) {
			if inTable {
				break
			}
			continue
		}
		cells := splitRow(ln.text)
		switch {
		case !inTable && strings.TrimSpace(cells[0]) == first:
			inTable = true
		case inTable && isDelimiterRow(cells):
		case inTable:
			rows = append(rows, cells)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("ARCHITECTURE.md: no table starting with the column %q under the heading %q", first, heading)
	}
	return rows
}

func isTableRow(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "|") }

func isDelimiterRow(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(strings.TrimSpace(c), ":-") != "" {
			return false
		}
	}
	return true
}

// splitRow splits a table row into its cells. A | inside a code span or
// escaped as \| does not split.
func splitRow(s string) []string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "|")
	if strings.HasSuffix(s, "|") && !strings.HasSuffix(s, `\|`) {
		s = s[:len(s)-1]
	}
	var cells []string
	var cell strings.Builder
	code := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '`':
			code = !code
		case c == '\\' && i+1 < len(s) && s[i+1] == '|':
			i++
			cell.WriteByte('|')
			continue
		case c == '|' && !code:
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
			continue
		}
		cell.WriteByte(s[i])
	}
	return append(cells, strings.TrimSpace(cell.String()))
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// codeSpans returns the contents of s's code spans.
func codeSpans(s string) []string {
	var out []string
	for _, m := range codeSpan.FindAllStringSubmatch(s, -1) {
		out = append(out, strings.TrimSpace(m[1]))
	}
	return out
}

// testName is a code span that names a test: an optional module-relative
// package, the function's name, an optional * for a prefix.
var testName = regexp.MustCompile(`^(?:([a-z0-9_/]+)\.)?((?:Test|Fuzz|Benchmark)[A-Za-z0-9_]*)(\*?)$`)

// citation is one test named in the text.
type citation struct {
	pkg, name string // pkg is "" for any package
	prefix    bool
}

func (c citation) found(funcs map[string]map[string]bool) bool {
	for pkg, names := range funcs {
		if c.pkg != "" && pkg != c.pkg {
			continue
		}
		for n := range names {
			if n == c.name || c.prefix && strings.HasPrefix(n, c.name) {
				return true
			}
		}
	}
	return false
}

// citedTests returns the tests named in s's code spans, an unqualified
// name taking the package last named before it.
func citedTests(s string) []citation {
	var out []citation
	pkg := ""
	for _, span := range codeSpans(s) {
		m := testName.FindStringSubmatch(span)
		if m == nil {
			continue
		}
		if m[1] != "" {
			pkg = m[1]
		}
		out = append(out, citation{pkg: pkg, name: m[2], prefix: m[3] == "*"})
	}
	return out
}

// testFuncs returns, by module-relative package directory, the names of
// the Test, Fuzz and Benchmark functions in its _test.go files (all build
// tags included).
func testFuncs(t *testing.T) map[string]map[string]bool {
	t.Helper()
	funcs := map[string]map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(path, d) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !testName.MatchString(fn.Name.Name) {
				continue
			}
			if funcs[pkg] == nil {
				funcs[pkg] = map[string]bool{}
			}
			funcs[pkg][fn.Name.Name] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return funcs
}

// skipDir reports whether the walks leave a directory out: hidden ones
// (.git, .ci) and test data.
func skipDir(path string, d fs.DirEntry) bool {
	name := d.Name()
	return path != repoRoot && (strings.HasPrefix(name, ".") || name == "testdata")
}

// markdownFiles returns the repository's Markdown files, slash-separated
// and relative to its root.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if skipDir(path, d) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".md") {
			rel, _ := filepath.Rel(repoRoot, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// link is a link's target as written, and its line.
type link struct {
	line   int
	target string
}

var (
	// inlineLink is [text](target) or ![alt](target "title").
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// refDefinition is a reference link's definition: [label]: target.
	refDefinition = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
)

// links returns the link targets in Markdown src, outside code blocks and
// code spans.
func links(src string) []link {
	var out []link
	for _, ln := range proseLines(src) {
		text := codeSpan.ReplaceAllString(ln.text, "")
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			out = append(out, link{ln.n, m[1]})
		}
		if m := refDefinition.FindStringSubmatch(text); m != nil {
			out = append(out, link{ln.n, m[1]})
		}
	}
	return out
}

// linkTarget is a relative link resolved: a slash-separated path from the
// repository's root (empty for a link that is not relative), and the
// anchor.
type linkTarget struct {
	path, anchor string
}

var scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)

// resolveLink resolves target, written in the Markdown file from (relative
// to the repository's root). A link that leaves the repository is an error:
// on GitHub it leads nowhere.
func resolveLink(from, target string) (linkTarget, error) {
	if target == "" {
		return linkTarget{}, errors.New("empty target")
	}
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return linkTarget{}, nil
	}
	p, anchor, _ := strings.Cut(target, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		return linkTarget{}, err
	}
	if anchor, err = url.PathUnescape(anchor); err != nil {
		return linkTarget{}, err
	}
	switch {
	case p == "":
		p = from
	case strings.HasPrefix(p, "/"):
		p = strings.TrimPrefix(p, "/")
	default:
		p = filepath.ToSlash(filepath.Join(filepath.Dir(filepath.FromSlash(from)), filepath.FromSlash(p)))
	}
	p = filepath.ToSlash(filepath.Clean(filepath.FromSlash(p)))
	if p == ".." || strings.HasPrefix(p, "../") {
		return linkTarget{}, errors.New("it leaves the repository")
	}
	return linkTarget{path: p, anchor: anchor}, nil
}

// headingAnchors returns the anchors GitHub gives the ATX headings of src.
// (The repository's Markdown uses no setext headings.)
func headingAnchors(src string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	for _, ln := range proseLines(src) {
		m := atxHeading.FindStringSubmatch(ln.text)
		if m == nil {
			continue
		}
		a := slug(m[2])
		if n := seen[a]; n > 0 {
			seen[a]++
			a += "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		anchors[a] = true
	}
	return anchors
}

var (
	mdLinkText = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTag    = regexp.MustCompile(`<[^>]+>`)
)

// slug is GitHub's anchor for a heading's text: the text as rendered
// (links reduced to their text, code spans to their content, HTML tags
// dropped), lower case, without characters other than letters, marks,
// digits, '_', '-' and ' ', with each space turned into '-'.
func slug(heading string) string {
	text := mdLinkText.ReplaceAllString(heading, "$1")
	text = htmlTag.ReplaceAllString(text, "")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.M, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}
