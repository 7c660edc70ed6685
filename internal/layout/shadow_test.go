package layout

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoBuiltinShadowed fails on a declaration anywhere in the repository,
// tests included, named like a predeclared identifier: a variable, a
// constant, a parameter, a named result, a receiver, a function, a type, a
// type parameter or an import name called max, len, new, close, error,
// string, any, nil, true... A shadowed builtin reads like the builtin and is
// not: `max := 10` followed, lines later, by a call to max(a, b). Methods
// and struct fields are not declarations in a scope and may use the names.
func TestNoBuiltinShadowed(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, s := range shadows(f) {
			pos := fset.Position(s.id.Pos())
			rel, _ := filepath.Rel(root, pos.Filename)
			found = append(found, fmt.Sprintf("%s:%d: %s %s shadows the predeclared %s", filepath.ToSlash(rel), pos.Line, s.kind, s.id.Name, s.id.Name))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Error(f)
	}
}

type declaration struct {
	id   *ast.Ident
	kind string
}

// shadows lists the declarations in f named like a predeclared identifier.
func shadows(f *ast.File) []declaration {
	var out []declaration
	for _, d := range declared(f) {
		if d.id.Name != "_" && types.Universe.Lookup(d.id.Name) != nil {
			out = append(out, d)
		}
	}
	return out
}

// declared lists the names f declares in a scope.
func declared(f *ast.File) []declaration {
	var out []declaration
	add := func(kind string, ids ...*ast.Ident) {
		for _, id := range ids {
			if id != nil {
				out = append(out, declaration{id, kind})
			}
		}
	}
	fields := func(kind string, l *ast.FieldList) {
		if l != nil {
			for _, fld := range l.List {
				add(kind, fld.Names...)
			}
		}
	}
	defined := func(tok token.Token, exprs ...ast.Expr) {
		if tok != token.DEFINE {
			return
		}
		for _, e := range exprs {
			if id, ok := e.(*ast.Ident); ok {
				add("variable", id)
			}
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ImportSpec:
			add("import", n.Name)
		case *ast.FuncDecl:
			fields("receiver", n.Recv)
			if n.Recv == nil {
				add("function", n.Name)
			}
		case *ast.FuncType:
			fields("type parameter", n.TypeParams)
			fields("parameter", n.Params)
			fields("result", n.Results)
		case *ast.TypeSpec:
			add("type", n.Name)
			fields("type parameter", n.TypeParams)
		case *ast.ValueSpec:
			add("variable or constant", n.Names...)
		case *ast.AssignStmt:
			defined(n.Tok, n.Lhs...)
		case *ast.RangeStmt:
			defined(n.Tok, n.Key, n.Value)
		}
		return true
	})
	return out
}

// TestShadowsFinds checks the finder on each kind of declaration, and that
// methods, fields and uses pass.
func TestShadowsFinds(t *testing.T) {
	const src = `package p

import string "strings"

type error struct{ len int }

const iota, ok = 1, true

var nil, x any

func copy[any comparable](cap int, _ int) (new bool) {
	min := 1
	for max, v := range []int{} {
		_, _ = max, v
	}
	f := func(close chan int) (real float64) { return }
	_, _, _ = min, f, len("")
	switch print := any(nil).(type) {
	default:
		_ = print
	}
	return
}

func (append T) len() int { return 0 }

type T struct{ make, delete int }

type I interface{ clear(panic int) }
`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range shadows(f) {
		got = append(got, d.kind+" "+d.id.Name)
	}
	want := []string{
		"import string", "type error", "variable or constant iota", "variable or constant nil",
		"function copy", "type parameter any", "parameter cap", "result new", "variable min", "variable max",
		"parameter close", "result real", "variable print", "receiver append", "parameter panic",
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("got %q,\nwant %q", got, want)
	}
}
