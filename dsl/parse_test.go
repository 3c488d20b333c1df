package dsl

import (
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/dsl/budget"
)

func TestTreePrecedence(t *testing.T) {
	src := "model \"m\"\nconfig { a = 1 + 2 * 3 - 4 / 2 == 5 and not false or 1 < 2 }\n"
	f, err := Parse("t.arch", src)
	if err != nil {
		t.Fatal(err)
	}
	n := f.Blocks[0].Config.Items[0].Derived.Value.Tree("t.arch")
	if got, want := show(n), "(((((1 + (2 * 3)) - (4 / 2)) == 5) and (not false)) or (1 < 2))"; got != want {
		t.Fatalf("precedence: got %s, want %s", got, want)
	}
}

func show(n Node) string {
	switch x := n.(type) {
	case *Binary:
		return "(" + show(x.L) + " " + x.Op + " " + show(x.R) + ")"
	case *UnaryOp:
		return "(" + x.Op + " " + show(x.X) + ")"
	case *Lit:
		switch v := x.Value.(type) {
		case bool:
			if v {
				return "true"
			}
			return "false"
		case int64:
			return strings.TrimSpace(strings.Repeat(" ", 0)) + itoa(v)
		}
	}
	return "?"
}

func itoa(v int64) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

func TestRangeLexesAsIntegers(t *testing.T) {
	// `0..layers` must not lex "0." as a float.
	src := "model \"m\"\nweights { for i in 0..4 { w: f32[1.5e3] = \"w\" } }\n"
	f, err := Parse("t.arch", src)
	if err != nil {
		t.Fatal(err)
	}
	loop := f.Blocks[0].Weights.Items[0].Layers
	if lit, ok := loop.From.Tree("t.arch").(*Lit); !ok || lit.Value != int64(0) {
		t.Fatalf("range start: %#v", loop.From.Tree("t.arch"))
	}
	if lit, ok := loop.Weights[0].Dims[0].Tree("t.arch").(*Lit); !ok || lit.Value != 1.5e3 {
		t.Fatalf("float dimension: %#v", loop.Weights[0].Dims[0].Tree("t.arch"))
	}
}

func TestSyntaxErrorsAreAllReported(t *testing.T) {
	src := "model \"m\"\nconfig {\n  a: int = = 1\n  b: int = 2\n  c: int = * 3\n}\n"
	_, err := Parse("t.arch", src)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"t.arch:3:12: unexpected '='", "t.arch:5:12: unexpected '*'"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
	if strings.Count(msg, "unexpected") != 2 {
		t.Errorf("expected exactly two errors (no cascade), got:\n%s", msg)
	}
}

// Strings unquote as participle.Unquote did (Go's escapes, by rune), in
// linear time: a 2 MB literal (past the file limit, so parsed with a
// larger one) took minutes.
func TestUnquote(t *testing.T) {
	src := "model \"m\"\nconfig {\n  a = \"x\\ty\\\"\\u00e9\\xff\\\\\"\n  b = \"" + strings.Repeat("A", 2<<20) + "\"\n}\n"
	f, err := ParseWithin("t.arch", src, budget.Limits{SourceBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	items := f.Blocks[0].Config.Items
	if got := *items[0].Derived.Value.First.Operand.Primary.String; got != "x\ty\"\u00e9\u00ff\\" {
		t.Fatalf("got %q", got)
	}
	if got := *items[1].Derived.Value.First.Operand.Primary.String; len(got) != 2<<20 {
		t.Fatalf("got %d bytes", len(got))
	}
	_, err = Parse("t.arch", "model \"m\"\nconfig {\n  a = \"\\q\"\n}\n")
	if err == nil || !strings.Contains(err.Error(), `invalid quoted string "\"\\q\"": invalid syntax`) {
		t.Fatalf("got %v", err)
	}
}
