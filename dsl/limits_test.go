package dsl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/dsl/budget"
	"github.com/minerva-ml/minerva/dsl/diag"
)

// firstDiag parses src and returns its only diagnostic, failing the test
// when the parse succeeds or reports more than one.
func firstDiag(t *testing.T, src string, lim budget.Limits) diag.Diagnostic {
	t.Helper()
	_, err := ParseWithin("input.arch", src, lim)
	var de *diag.Error
	if !errors.As(err, &de) {
		t.Fatalf("want a diagnostic, got %v", err)
	}
	if len(de.List.Diags) != 1 {
		t.Fatalf("want one diagnostic, got %d:\n%v", len(de.List.Diags), err)
	}
	return de.List.Diags[0]
}

func wantDiag(t *testing.T, d diag.Diagnostic, pos, msg string) {
	t.Helper()
	if d.Pos.String() != pos || d.Message != msg {
		t.Fatalf("got %s: %s\nwant %s: %s", d.Pos, d.Message, pos, msg)
	}
	if d.Hint != budget.Hint {
		t.Fatalf("hint %q, want %q", d.Hint, budget.Hint)
	}
}

const depthMsg = "this is nested 257 deep (brackets, prefix operators and if-expressions), past the limit of 256 levels for an .arch file"

// 100,000 nested '[' overflowed the goroutine stack (a fatal error, not a
// panic) in participle's recursion.
func TestNestedBracketsRefusedBeforeParsing(t *testing.T) {
	src := "model \"m\"\nconfig {\n  a = " + strings.Repeat("[", 100000) + "\n}\n"
	// The config block's '{' is the first level; the first '[' is at
	// column 7, the 256th (the 257th level) at column 262.
	wantDiag(t, firstDiag(t, src, budget.Limits{}), "input.arch:3:262", depthMsg)
}

// 206 KB of nested parentheses took 1.1 GB to parse.
func TestNestedParenthesesRefusedBeforeParsing(t *testing.T) {
	n := 103000
	src := "model \"m\"\nconfig {\n  a = " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) + "\n}\n"
	wantDiag(t, firstDiag(t, src, budget.Limits{}), "input.arch:3:262", depthMsg)
}

// A 50 MB file ran out of memory in the lexer; it is refused at the byte
// where it passes the limit, before any token is made.
func TestFileSizeRefusedBeforeLexing(t *testing.T) {
	var b strings.Builder
	b.WriteString("model \"m\"\nconfig {\n  a = [")
	line := strings.Repeat("1, ", 33) + "\n" // 100 bytes
	for b.Len() < 50<<20 {
		b.WriteString(line)
	}
	b.WriteString("]\n}\n")
	// The text before the list is 26 bytes and its lines are 100, so the
	// byte at offset 1048576 is 1048550 into the list: 10485 lines after
	// line 3, column 51.
	wantDiag(t, firstDiag(t, b.String(), budget.Limits{}), "input.arch:10488:51",
		"the file goes on past the limit of 1048576 bytes for an .arch file")
}

func TestTokenLimit(t *testing.T) {
	src := "model \"m\"\nconfig {\n  a = [1, 2, 3]\n}\n"
	// model "m" config { a = [ 1 , 2 , 3 ] } is 14 tokens, and the runs
	// of whitespace between them 10 more.
	if _, err := ParseWithin("input.arch", src, budget.Limits{Tokens: 24}); err != nil {
		t.Fatalf("24 tokens within a limit of 24: %v", err)
	}
	// The 24th is the newline after '}'.
	wantDiag(t, firstDiag(t, src, budget.Limits{Tokens: 23}), "input.arch:4:2",
		"the file goes on past the limit of 23 tokens for an .arch file")
	// A comment is a token too: a file of comments cannot hold more than
	// a file of code. Line 3 starts with token 9, and each line is two.
	comments := "model \"m\"\nconfig {\n" + strings.Repeat("#\n", 100) + "}\n"
	wantDiag(t, firstDiag(t, comments, budget.Limits{Tokens: 100}), "input.arch:49:1",
		"the file goes on past the limit of 100 tokens for an .arch file")
}

// TestDepthBoundsRecursion checks the depth measure against each way the
// grammar nests: at the limit a file parses, one level deeper it is
// refused. An undercount here is a stack overflow on a deeper file. Each
// shape(n) nests n deep inside a block, whose '{' is one level more.
func TestDepthBoundsRecursion(t *testing.T) {
	cfg := func(expr string) string { return "model \"m\"\nconfig {\n  a = " + expr + "\n}\n" }
	fwd := func(body string) string {
		return "model \"m\"\nconfig { c: bool = true }\nforward(tokens) {\n" + body + "\n  return tokens\n}\n"
	}
	shapes := map[string]func(n int) string{
		"parentheses": func(n int) string { return cfg(strings.Repeat("(", n) + "1" + strings.Repeat(")", n)) },
		"lists":       func(n int) string { return cfg(strings.Repeat("[", n) + "1" + strings.Repeat("]", n)) },
		"negation":    func(n int) string { return cfg(strings.Repeat("- ", n) + "1") },
		"not":         func(n int) string { return cfg(strings.Repeat("not ", n) + "true") },
		"else-if":     func(n int) string { return cfg(strings.Repeat("if true then 1 else ", n) + "1") },
		"then-if": func(n int) string {
			return cfg(strings.Repeat("if true then ", n) + "1" + strings.Repeat(" else 2", n))
		},
		"call args": func(n int) string { return cfg(strings.Repeat("min(1, ", n) + "1" + strings.Repeat(")", n)) },
		"mixed":     func(n int) string { return cfg("-" + strings.Repeat("(-", n/2) + "1" + strings.Repeat(")", n/2)) },
		// The forward block's '{' is one level, each 'if' of the chain one more.
		"else-if statements": func(n int) string {
			return fwd(strings.Repeat("if c { x = 1 } else ", n-1) + "{ x = 2 }")
		},
	}
	const limit = 12
	for name, shape := range shapes {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseWithin("input.arch", shape(limit-1), budget.Limits{Depth: limit}); err != nil {
				t.Fatalf("nested %d deep within a limit of %d: %v", limit, limit, err)
			}
			d := firstDiag(t, shape(limit), budget.Limits{Depth: limit})
			if want := fmt.Sprintf("this is nested %d deep", limit+1); !strings.HasPrefix(d.Message, want) {
				t.Fatalf("nested %d deep: %s", limit+1, d.Message)
			}
		})
	}
}

// TestDepthIgnoresWhatDoesNotNest: long flat code must not count as deep.
func TestDepthIgnoresWhatDoesNotNest(t *testing.T) {
	lim := budget.Limits{Depth: 8}
	cases := map[string]string{
		"subtraction chain":   "model \"m\"\nconfig {\n  a = 1" + strings.Repeat(" - 1", 300) + "\n}\n",
		"negative statements": "model \"m\"\nconfig {\n" + strings.Repeat("  a = -1\n", 300) + "}\n",
		"if statements": "model \"m\"\nconfig { c: bool = true }\nforward(tokens) {\n" +
			strings.Repeat("  if c { x = -1 }\n", 300) + "  return tokens\n}\n",
		"list of negatives": "model \"m\"\nconfig {\n  a = [" + strings.Repeat("-1, ", 300) + "]\n}\n",
		"indexing":          "model \"m\"\nconfig {\n  a = b" + strings.Repeat("[0]", 300) + "\n}\n",
	}
	for name, src := range cases {
		if _, err := ParseWithin("input.arch", src, lim); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The shipped models stay far inside the default limits: an eighth of the
// tokens, a thirty-second of the depth.
func TestShippedModelsFarWithinLimits(t *testing.T) {
	files, _ := filepath.Glob("../models/*.arch")
	ex, _ := filepath.Glob("../docs/examples/*.arch")
	files = append(files, ex...)
	if len(files) < 3 {
		t.Fatalf("found %d models", len(files))
	}
	lim := budget.Limits{Tokens: budget.DefaultTokens / 8, Depth: budget.DefaultDepth / 32, SourceBytes: budget.DefaultSourceBytes / 64}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseWithin(f, string(b), lim); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// Error recovery blanks the line of each syntax error and parses again;
// blanking a line of '=' joins the prefix operators of the lines around
// it into one expression nested twice as deep. The text parsed again is
// checked too, so recovery stops there rather than recurse past the limit
// (and the later error on line 6 goes unreported).
func TestRecoveryRechecksDepth(t *testing.T) {
	run := strings.Repeat("- ", 6)
	src := "model \"m\"\nconfig {\n  a = " + run + "\n= 1\n" + run + "1\n  b = )\n}\n"
	count := func(lim budget.Limits) int {
		_, err := ParseWithin("input.arch", src, lim)
		var de *diag.Error
		if !errors.As(err, &de) {
			t.Fatalf("want syntax errors, got %v", err)
		}
		if d := de.List.Diags[0]; d.Message != "unexpected '='" || d.Pos.Line != 4 {
			t.Fatalf("first error: %s: %s", d.Pos, d.Message)
		}
		return len(de.List.Diags)
	}
	if n := count(budget.Limits{Depth: 10}); n != 1 {
		t.Fatalf("depth 10: %d errors, want recovery to stop after the first", n)
	}
	if n := count(budget.Limits{Depth: 20}); n != 2 {
		t.Fatalf("depth 20: %d errors, want both", n)
	}
}
