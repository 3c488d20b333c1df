package dsl

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/dsl/budget"
)

// quirks are inputs at the edges of participle's behaviour, where a
// hand-written parser that followed the grammar's intent rather than
// participle's rules would differ.
var quirks = []string{
	`model "x"`,
	`"model" "x"`,                     // a string matches a literal
	`model "x" for "A", "B"`,          //
	`model "x" for "A",`,              // ',' commits
	`model "x" def f(a,) { }`,         // ',' commits, the trailing ','? is unreachable
	`model "x" def f(a, b) { x = 1 }`, //
	`model "x" def f() { }`,           //
	`model "x" forward(t) { x = a "+" b return x }`,
	`model "x" forward(t) { x = [a,,b] y = [] z = [,a] }`,
	`model "x" forward(t) { x = f() y = f(a,) z = f(a,,b) w = f(,a) }`,
	`model "x" forward(t) { x = f(a, n=1, m=[1 for i in 0..3]) }`,
	`model "x" forward(t) { x = [i for i in 0..3] y = [1, 2 for i in 0..3] }`,
	`model "x" forward(t) { if a { } else { } }`,
	`model "x" forward(t) { if a { x = 1 } else if b { x = 2 } else { x = 3 } }`,
	`model "x" forward(t) { if a { } else x = 1 }`,
	`model "x" forward(t) { x = 010 y = 09 }`, // base 0: octal, and an error
	`model "x" forward(t) { x = 1e999 }`,      // out of range
	`model "x" forward(t) { x = 99999999999999999999 }`,
	`model "x" forward(t) { x = a not in b y = a not b }`,
	`model "x" forward(t) { x = - - not a z = -1.5e3 }`,
	`model "x" forward(t) { x = if a then b else c y = if a then b }`,
	`model "x" forward(t) { x = a.b[c](d).e }`,
	`model "x" forward(t) { x = a. }`,
	`model "x" forward(t) { x = true y = false z = none w = "s\n" }`,
	`model "x" forward(t) { for i in 0..n { x = 1 } return x }`,
	`model "x" forward(t) { for = 1 }`,
	`model "x" forward(t) { a, b = f(x) }`,
	`model "x" forward(t) { a, = f(x) }`,
	`model "x" forward(t) { "for" i in 0..2 { } }`,
	`model "x" config { a: int = 1 from "k", "l" or default b: [int] in [1, 2] c = a + 1 check a > 0, "m" check b }`,
	`model "x" config { a: [[float]] = [[1.5]] from "k" or 2 }`,
	`model "x" config { a: int in 1..8 }`,
	`model "x" config { a int }`,
	`model "x" config { a: = 1 }`,
	`model "x" weights { w: f32[a, b] = "w" when i > 0 for i in 0..n { v: bf16[a] = "v.{i}" } }`,
	`model "x" weights { for: f32[a] = "w" }`,
	`model "x" weights { w: f32[] = "w" }`,
	`model "x" # comment` + "\n" + `forward(t) { # c` + "\n" + `x = a # d` + "\n" + `}`,
	"model \"x\"\n\nforward(t)\t{\r\n  x = a\n\n}\n\n",
	`model "x" forward(t) { x = "unterminated }`,
	`model "x" forward(t) { x = "\q" }`,
	`model "x" forward(t) { x = a $ b }`,
	`model "x" forward(t) { x = (a }`,
	`model "x" } `,
	`model "x" forward(t) { x = "(" a ")" }`,
	``,
	`   `,
}

// TestFastParseMatchesGrammar checks fastParse against participle's
// parser of the grammar in ast.go, the oracle: on every input, both fail,
// or both succeed with equal trees (positions included).
func TestFastParseMatchesGrammar(t *testing.T) {
	inputs := append([]string{}, quirks...)
	paths, _ := filepath.Glob("../models/*.arch")
	more, _ := filepath.Glob("../internal/backendtest/testdata/*.arch")
	paths = append(paths, more...)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, string(b))
	}
	// The compiler's error cases: most parse, some have syntax errors.
	txtars, _ := filepath.Glob("../compiler/testdata/errors/*.txtar")
	for _, p := range txtars {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, archFiles(string(b))...)
	}
	if len(inputs) < len(quirks)+60 {
		t.Fatalf("only %d inputs: the models and error cases were not found", len(inputs))
	}
	succeeded := 0
	for _, src := range inputs {
		if compareParsers(t, src) {
			succeeded++
		}
	}
	// Both outcomes must be exercised for the comparison to mean much.
	t.Logf("%d of %d inputs parsed", succeeded, len(inputs))
	if succeeded < 40 || succeeded == len(inputs) {
		t.Fatalf("%d of %d inputs parsed", succeeded, len(inputs))
	}
}

// compareParsers reports a difference between the two parsers on src and
// returns whether it parsed.
func compareParsers(t *testing.T, src string) bool {
	t.Helper()
	want, werr := parser().ParseString("f.arch", src)
	got, ok := fastParse("f.arch", src)
	switch {
	case werr != nil && ok:
		t.Errorf("fastParse accepts what participle rejects (%v):\n%s", werr, src)
	case werr == nil && !ok:
		t.Errorf("fastParse rejects what participle accepts:\n%s", src)
	case werr == nil && !reflect.DeepEqual(got, want):
		t.Errorf("trees differ:\n%s\nparticiple: %s\nfastParse:  %s", src, dump(want), dump(got))
	}
	return werr == nil
}

func dump(f *File) string {
	var b strings.Builder
	dumpValue(&b, reflect.ValueOf(f), 0)
	return b.String()
}

func dumpValue(b *strings.Builder, v reflect.Value, depth int) {
	if depth > 40 {
		b.WriteString("…")
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		dumpValue(b, v.Elem(), depth+1)
	case reflect.Struct:
		b.WriteString(v.Type().Name() + "{")
		for i := 0; i < v.NumField(); i++ {
			if i > 0 {
				b.WriteString(" ")
			}
			b.WriteString(v.Type().Field(i).Name + ":")
			dumpValue(b, v.Field(i), depth+1)
		}
		b.WriteString("}")
	case reflect.Slice:
		if v.IsNil() {
			b.WriteString("nil")
			return
		}
		b.WriteString("[")
		for i := 0; i < v.Len(); i++ {
			dumpValue(b, v.Index(i), depth+1)
			b.WriteString(",")
		}
		b.WriteString("]")
	case reflect.String:
		b.WriteString(strconv.Quote(v.String()))
	default:
		b.WriteString(fmt.Sprint(v))
	}
}

// txtarFile matches a txtar archive's file header line.
var txtarFile = regexp.MustCompile(`(?m)^-- (.+) --$`)

// archFiles returns the .arch files of a txtar archive.
func archFiles(archive string) []string {
	var out []string
	heads := txtarFile.FindAllStringSubmatchIndex(archive, -1)
	for i, h := range heads {
		end := len(archive)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		if name := archive[h[2]:h[3]]; strings.HasSuffix(name, ".arch") && h[1] < end {
			out = append(out, archive[h[1]+1:end])
		}
	}
	return out
}

// FuzzFastParse: on any input, fastParse and participle agree (see
// TestFastParseMatchesGrammar). Seeded with the models and the quirks.
func FuzzFastParse(f *testing.F) {
	seeds, _ := filepath.Glob("../models/*.arch")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, q := range quirks {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, src string) {
		// The limits ParseWithin applies first bound the recursion of both.
		if _, d := checkLimits("f.arch", src, budget.Limits{}.WithDefaults()); d != nil {
			return
		}
		compareParsers(t, src)
	})
}
