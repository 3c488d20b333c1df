package ir

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRegistryComplete: every kind constant has a registry entry whose
// properties agree with each other, so a new op cannot half exist.
func TestRegistryComplete(t *testing.T) {
	if len(AllOps()) == 0 {
		t.Fatal("no ops registered")
	}
	for _, k := range AllOps() {
		d := MustLookup(k)
		switch {
		case d.Doc == "":
			t.Errorf("op %s has no Doc", k)
		case !d.Fused && d.Infer == nil:
			t.Errorf("op %s has no type rule", k)
		case d.Fused && (d.Infer != nil || len(d.Attrs) > 0 || d.InPlace || d.SideEffects || d.Cost != nil):
			t.Errorf("fused op %s declares a type rule, attributes or properties; a fused op's are its body's", k)
		}
		for _, in := range d.Inputs {
			if in.Kind == TensorIn && in.Role != RoleOther {
				t.Errorf("op %s: activation input %s has a weight role", k, in.Name)
			}
		}
	}
}

// opLiteralFree lists the Go files that may spell op names as strings:
// the registry. The fusion rules (rules.fuse) and the templates
// (templates/*.tmpl) are not Go files and are not scanned.
var opLiteralFree = map[string]bool{
	"compiler/ir/kinds.go": true,
	"compiler/ir/ops.go":   true,
}

// TestNoOpNameLiterals scans every non-test Go file of the module for a
// string literal that spells an op kind: code outside the registry names
// kinds by their constants (ir.OpLinear), so that adding, renaming or
// removing an op is a compile error everywhere it matters. Two kinds of
// string are not op kinds though they may spell one: attribute names
// (affine's "mul" and "add": Attr keys and the Attrs accessors'
// arguments) and the names of template functions (FuncMap keys).
func TestNoOpNameLiterals(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range AllOps() {
		kinds[string(k)] = true
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "shared" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || opLiteralFree[rel] {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, lit := range opNameLiterals(f, kinds) {
			t.Errorf("%s: op kind %s spelt as a string; use its constant (compiler/ir/kinds.go)", fset.Position(lit.Pos()), lit.Value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// opNameLiterals returns the string literals of f that spell an op kind
// where a kind is meant.
func opNameLiterals(f *ast.File, kinds map[string]bool) []*ast.BasicLit {
	exempt := map[*ast.BasicLit]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.KeyValueExpr:
			// ir.Attr{Key: "mul", ...}
			if id, ok := n.Key.(*ast.Ident); ok && id.Name == "Key" {
				if lit, ok := n.Value.(*ast.BasicLit); ok {
					exempt[lit] = true
				}
			}
		case *ast.CompositeLit:
			// template.FuncMap{"add": ...}
			if sel, ok := n.Type.(*ast.SelectorExpr); ok && sel.Sel.Name == "FuncMap" {
				for _, e := range n.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						if lit, ok := kv.Key.(*ast.BasicLit); ok {
							exempt[lit] = true
						}
					}
				}
			}
		case *ast.CallExpr:
			// a.Float("mul"): the Attrs accessors take attribute names.
			if sel, ok := n.Fun.(*ast.SelectorExpr); ok && len(n.Args) > 0 {
				switch sel.Sel.Name {
				case "Int", "Float", "Bool", "String", "Get", "Set":
					if lit, ok := n.Args[0].(*ast.BasicLit); ok {
						exempt[lit] = true
					}
				}
			}
		}
		return true
	})
	var out []*ast.BasicLit
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING || exempt[lit] {
			return true
		}
		if s, err := strconv.Unquote(lit.Value); err == nil && kinds[s] {
			out = append(out, lit)
		}
		return true
	})
	return out
}

// TestOpNameLiteralScan: the scan finds a kind spelt as a string in the
// places code would write one, and passes over attribute names.
func TestOpNameLiteralScan(t *testing.T) {
	src := `package p
var a = op.Kind == "linear"
var b = map[string]bool{"rope": true}
var c = ir.Attrs{{Key: "mul", Value: 1.0}}
var d = op.Attrs.Float("add")
var e = template.FuncMap{"div": nil}
var f = "not an op"
`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, k := range AllOps() {
		kinds[string(k)] = true
	}
	var got []string
	for _, lit := range opNameLiterals(f, kinds) {
		got = append(got, lit.Value)
	}
	if strings.Join(got, " ") != `"linear" "rope"` {
		t.Fatalf("found %v, want the two kinds in code", got)
	}
}
