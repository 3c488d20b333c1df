package compiler

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/dsl/budget"
	"github.com/minerva-ml/minerva/dsl/diag"
	"github.com/minerva-ml/minerva/internal/golden"
)

// fuzzLimits are far smaller than the defaults, so that no input costs
// more than a few milliseconds: CI runs each target for 10000 inputs.
// The defaults are the same mechanism at a larger scale (the eval-*
// cases of testdata/errors check them).
var fuzzLimits = budget.Limits{
	SourceBytes: 1 << 15, Tokens: 1 << 12, Depth: 64,
	Steps: 1 << 14, Elements: 1 << 12, StringBytes: 1 << 14, Unrolled: 1 << 10,
}

// FuzzCheck runs what `minervac check` runs (the pipeline up to
// legalize) on arbitrary source and config.json text: it must fail with
// diagnostics or succeed with IR that verifies, and never panic or hang.
// Seeded with the shipped models and every case of testdata/errors.
func FuzzCheck(f *testing.F) {
	archs, _ := filepath.Glob("../models/*.arch")
	cfgs := []string{"../testdata/gpt-oss/tiny-random/config.json", "../testdata/llama/llama-tiny/config.json"}
	for i, a := range archs {
		src, err := os.ReadFile(a)
		if err != nil {
			f.Fatal(err)
		}
		cfg, _ := os.ReadFile(cfgs[i%len(cfgs)])
		f.Add(string(src), string(cfg))
		f.Add(string(src), "")
	}
	errs, _ := filepath.Glob("testdata/errors/*.txtar")
	for _, e := range errs {
		b, err := os.ReadFile(e)
		if err != nil {
			f.Fatal(err)
		}
		// The case's source, not the txtar text, which does not parse.
		a := golden.Parse(string(b))
		src, _ := a.Get("input.arch")
		cfg, _ := a.Get("config.json")
		f.Add(src, cfg)
	}
	f.Fuzz(func(t *testing.T, src, cfgText string) {
		opts := Options{File: "fuzz.arch", Source: src, Verify: true, StopAfter: "legalize", Limits: fuzzLimits} // what check runs
		if cfgText != "" {
			js, err := config.ParseJSON("config.json", []byte(cfgText))
			if err != nil {
				return
			}
			opts.JSON = js
		}
		u, err := Compile(opts)
		if err == nil && (u.Func == nil || u.Func.Output == nil) {
			t.Fatal("compiled without an output")
		}
		checkLimitDiagnostics(t, err)
	})
}

// evalTemplate is a small valid model with a place for config items and
// one for forward-pass statements, so that FuzzEval's inputs reach
// evaluation and lowering rather than stopping at a syntax error.
const evalTemplate = `model "fuzz"
config {
  vocab: int = 16
  hidden: int = 8
  layers: int = 2
%s
}
weights {
  embed: f32[vocab, hidden] = "embed"
  for i in 0..layers {
    w: f32[hidden, hidden] = "w.{i}"
  }
}
forward(tokens) {
  x = embedding(embed, tokens)
%s
  return linear(x, embed)
}
`

// FuzzEval fuzzes compile-time evaluation: config items and forward-pass
// statements inside a valid model, through what `minervac check` runs, under a
// small budget. Evaluation must end in a value or in diagnostics, every
// budget diagnostic points into the file, and nothing panics or hangs.
func FuzzEval(f *testing.F) {
	seeds := [][2]string{
		{"big = 9223372036854775807 * 9223372036854775807", ""},
		{"low = -(-9223372036854775807 - 1)\nquot = (-9223372036854775807 - 1) / -1\nrem = (-9223372036854775807 - 1) % -1", ""},
		{"ids = [1, 2, 3, 4] * 4611686018427387904", ""},
		{"cube = [[[0 for i in 0..1000] for j in 0..1000] for k in 0..1000]", ""},
		{"a = [0 for i in 0..100]\nb = [a for i in 0..100]\nc = [b for i in 0..100]\ncheck c == c, \"x\"", ""},
		{"f = 1e300 * 1e300\ng = float(9223372036854775807) * 2", ""},
		{"deep = " + strings.Repeat("[", 100) + strings.Repeat("]", 100), ""},
		{"m = min(1, 2.5) + max(3, 4) + len([1]) + int(2.0) + float(3) + sqrt(4.0)", ""},
		{"t = if layers > 1 then \"a\" else \"b\"", "if t == \"a\" { x = -x } else { x = x * 2.0 }"},
		{"", "for j in (-9223372036854775807 - 1)..9223372036854775807 {\n x = x + x\n}"},
		{"", "s = \"ab\"\nfor i in 0..64 {\n s = s + s\n}"},
		{"", "for i in 0..layers {\n x = x + linear(rmsnorm(x, w[i][0]), w[i])\n}"},
		{"", "for i in 0..300 {\n for j in 0..300 {\n  x = x + x\n }\n}"},
		{"", "l = [x for i in 0..layers]\nx = l[1] - l[0]"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, cfgItems, body string) {
		src := fmt.Sprintf(evalTemplate, cfgItems, body)
		u, err := Compile(Options{File: "fuzz.arch", Source: src, Verify: true, StopAfter: "legalize", Limits: fuzzLimits}) // what check runs
		if err == nil && (u.Func == nil || u.Func.Output == nil) {
			t.Fatal("compiled without an output")
		}
		checkLimitDiagnostics(t, err)
	})
}

// checkLimitDiagnostics: a diagnostic that a limit gives points into the
// source file (FILE:LINE:COL), as every diagnostic about the source does.
func checkLimitDiagnostics(t *testing.T, err error) {
	var de *diag.Error
	if !errors.As(err, &de) {
		return
	}
	for _, d := range de.List.Diags {
		if strings.Contains(d.Message, "past the limit") && (d.Pos.File != "fuzz.arch" || !d.Pos.IsValid()) {
			t.Fatalf("a limit's diagnostic without a position: %s: %s", d.Pos, d.Message)
		}
	}
}
