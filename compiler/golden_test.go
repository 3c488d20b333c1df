package compiler

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/golden"
)

// repoRoot is where golden files name their inputs from.
const repoRoot = ".."

// TestGolden compiles each case in testdata/golden and compares every
// stage's output with the file. A case's `args` section reads
// `ARCH [--config CONFIG] [--set k=v ...]` with paths from the repository
// root.
func TestGolden(t *testing.T) {
	golden.Cases(t, filepath.Join("testdata", "golden"), func(t *testing.T, path string, a *golden.Archive) {
		args, ok := a.Get("args")
		if !ok {
			t.Fatalf("%s has no args section", path)
		}
		got := compileStages(t, args)
		golden.Check(t, path, a, []string{"args"}, got)
	})
}

// compileStages compiles one case and returns the text of each stage.
func compileStages(t *testing.T, args string) map[string]string {
	t.Helper()
	fields := strings.Fields(args)
	arch := filepath.Join(repoRoot, fields[0])
	var cfg string
	var sets []string
	for i := 1; i < len(fields); i++ {
		switch fields[i] {
		case "--config":
			i++
			cfg = filepath.Join(repoRoot, fields[i])
		case "--set":
			i++
			sets = append(sets, fields[i])
		default:
			t.Fatalf("unknown golden argument %q", fields[i])
		}
	}
	opts, err := SourceOptions(arch, cfg, sets)
	if err != nil {
		t.Fatal(err)
	}
	opts.File = fields[0]
	opts.Verify = true
	stages := map[string]string{}
	var dumps strings.Builder
	opts.DumpOut = &dumps
	opts.DumpAfter = []string{"dce"}
	u, err := Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	stages["config"] = dumpConfig(u)
	// The IR before the back half of the pipeline, then after it.
	stages["ir"] = dumps.String()
	stages["fused"] = ir.Print(u.Func)
	stages["plan"] = dumpKV(u) + dumpArena(u)
	// The canonical form must read back to the same text.
	back, err := ir.Parse(stages["fused"])
	if err != nil {
		t.Fatalf("the printed IR does not parse: %v", err)
	}
	if err := ir.Verify(back); err != nil {
		t.Fatalf("the parsed IR does not verify: %v", err)
	}
	if again := ir.Print(back); again != stages["fused"] {
		t.Fatalf("print(parse(print(ir))) differs:\n%s", golden.Diff(stages["fused"], again))
	}
	return stages
}

// TestDocsExampleCompiles keeps the worked example of docs/arch-language.md
// true: an architecture written as text only compiles, with and without
// tied embeddings.
func TestDocsExampleCompiles(t *testing.T) {
	for _, sets := range [][]string{nil, {"tie_embeddings=true"}, {"attention_bias=true"}, {"layers=2"}} {
		opts, err := SourceOptions("../models/qwen3.arch", "", sets)
		if err != nil {
			t.Fatal(err)
		}
		opts.Verify = true
		if _, err := Compile(opts); err != nil {
			t.Fatalf("--set %v: %v", sets, err)
		}
	}
}
