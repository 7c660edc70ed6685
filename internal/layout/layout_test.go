package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mailfront/mailfront/"

// rules are the imports each package may have besides the standard library
// (non-test files only), with the reason. A package missing from this table
// fails the test: adding one is a design decision.
var rules = map[string]struct {
	may []string // module-relative packages or external module prefixes
	why string
}{
	"config": {[]string{"go.yaml.in/yaml/v3"}, "the file schema; only the command reads it, and it wires nothing"},
	"tlsconf": {[]string{"github.com/caddyserver/certmagic", "github.com/mholt/acmez/v3", "go.uber.org/zap"},
		"the client-facing TLS policy and its certificate sources; certmagic is the one ACME engine (acmez its ACME types, zap its logger, bridged to slog); knows no config file and no protocol"},
	"acmedns": {[]string{"github.com/miekg/dns", "github.com/mholt/acmez/v3"},
		"dns-01 solvers (RFC 2136 with TSIG, an exec hook) behind acmez's solver interface; knows no certmagic, config or protocol"},
	"proxy": {[]string{"github.com/pires/go-proxyproto"}, "the protocol-neutral engine: it knows nothing of IMAP, POP3, config files or how TLS configs are built"},
	"imap":  {[]string{"proxy", "github.com/emersion/go-sasl"}, "plugs into the engine; never imports pop3, tlsconf or config"},
	"pop3":  {[]string{"proxy", "github.com/emersion/go-sasl"}, "plugs into the engine; never imports imap, tlsconf or config"},
	"cmd/mailfront": {[]string{"config", "tlsconf", "acmedns", "proxy", "imap", "pop3", "guard", "metrics", "admin", "audit", "internal/imapmem", "internal/pop3mem", "github.com/mholt/acmez/v3", "github.com/prometheus/client_golang"},
		"the thin main: wires config into each package's options; the demo runs the in-memory backends; check runs the audit"},
	"cmd/mfload":          {nil, "drives the built binary as a black box, so it shares no code with it"},
	"internal/imapmem":    {[]string{"github.com/emersion/go-imap/v2"}, "go-imap's in-memory server as the demo and test backend"},
	"internal/pop3mem":    {nil, "an in-memory POP3 backend for the demo and tests"},
	"internal/pop3client": {nil, "a POP3 client for tests, the demo and the load tool"},
	"guard":               {[]string{"proxy"}, "the password-guessing defence and per-network admission, behind proxy.Gate; knows no protocol or config file"},
	"metrics":             {[]string{"proxy", "github.com/prometheus/client_golang"}, "implements proxy.Observer with Prometheus collectors; bounded labels only; serves nothing"},
	"admin":               {[]string{"github.com/prometheus/client_golang"}, "the operator HTTP endpoint; imports no mailfront package; cmd composes what it serves"},
	"audit":               {nil, "mailfront check's probes and report; imports no mailfront package, so it judges mailfront's front like any other server"},
	"internal/testpki":    {nil, "throwaway certificates for tests"},
	"internal/logtest":    {nil, "records slog output for every package's tests, so the standard library only"},
	"internal/dockerfile": {nil, "reads the repository's Dockerfile for deploy's and integration's tests, so the standard library only"},
	"internal/gatetest":   {[]string{"proxy"}, "a scripted proxy.Gate for the protocol packages' tests"},
	"internal/acmetest":   {[]string{"internal/testpki", "github.com/letsencrypt/pebble/v2"}, "a real ACME CA (Pebble) in-process for the ACME tests"},
	"internal/dnstest":    {[]string{"github.com/miekg/dns"}, "an authoritative DNS server with TSIG-checked updates for the dns-01 tests"},
	"internal/layout":     {nil, "these tests"},
	"integration":         {[]string{"internal/testpki", "internal/pop3client", "github.com/emersion/go-imap/v2"}, "drives the built binary and real peers"},
}

// walk calls fn for every non-test Go file in the repository (all build
// tags included) with its package's module-relative path.
func walk(t *testing.T, fn func(pkg, path string) error) {
	t.Helper()
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "deploy") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		return fn(filepath.ToSlash(rel), path)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// packages returns every package's imports by module-relative path.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	pkgs := map[string][]string{}
	walk(t, func(pkg, path string) error {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		if _, ok := pkgs[pkg]; !ok {
			pkgs[pkg] = nil
		}
		for _, imp := range f.Imports {
			pkgs[pkg] = append(pkgs[pkg], strings.Trim(imp.Path.Value, `"`))
		}
		return nil
	})
	return pkgs
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestImports(t *testing.T) {
	pkgs := packages(t)
	for pkg, imports := range pkgs {
		rule, ok := rules[pkg]
		if !ok {
			t.Errorf("package %s is not in the layering rules: decide what it may import, and why", pkg)
			continue
		}
		for _, imp := range imports {
			if isStdlib(imp) {
				continue
			}
			name := strings.TrimPrefix(imp, module)
			allowed := slices.ContainsFunc(rule.may, func(m string) bool {
				return name == m || strings.HasPrefix(name, m+"/")
			})
			if !allowed {
				t.Errorf("%s imports %s; it may import only %q besides the standard library (%s)", pkg, imp, rule.may, rule.why)
			}
		}
	}
	for pkg := range rules {
		if _, ok := pkgs[pkg]; !ok {
			t.Errorf("layering rule for %s, which does not exist", pkg)
		}
	}
}

// TestOnlyCommandsImportConfig is ARCHITECTURE.md's "only cmd imports config",
// stated on its own so that the table above cannot quietly relax it.
func TestOnlyCommandsImportConfig(t *testing.T) {
	for pkg, imports := range packages(t) {
		if slices.Contains(imports, module+"config") && !strings.HasPrefix(pkg, "cmd/") {
			t.Errorf("%s imports config; only commands may (the others take their own Options)", pkg)
		}
	}
}

// TestPackageDocs checks that every package has exactly one doc comment,
// that it says what the package does not do, and that the protocol
// packages name the RFCs they follow.
func TestPackageDocs(t *testing.T) {
	docs := map[string][]string{} // package -> files with a doc comment
	texts := map[string]string{}
	walk(t, func(pkg, path string) error {
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		if _, ok := docs[pkg]; !ok {
			docs[pkg] = nil
		}
		if f.Doc != nil {
			docs[pkg] = append(docs[pkg], filepath.Base(path))
			texts[pkg] = docText(f.Doc)
		}
		return nil
	})
	for pkg, files := range docs {
		if len(files) != 1 {
			t.Errorf("%s: got package doc comments in %q, want exactly one", pkg, files)
			continue
		}
		text := texts[pkg]
		if !strings.Contains(text, " not ") {
			t.Errorf("%s: the package doc does not say what the package does not do", pkg)
		}
		if needsRFC[pkg] && !strings.Contains(text, "RFC ") {
			t.Errorf("%s: the package doc names no RFC", pkg)
		}
	}
}

// needsRFC are the packages that speak a protocol.
var needsRFC = map[string]bool{"proxy": true, "tlsconf": true, "imap": true, "pop3": true, "internal/pop3client": true, "internal/pop3mem": true}

func docText(g *ast.CommentGroup) string { return strings.Join(strings.Fields(g.Text()), " ") }
