package compiler

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/internal/golden"
)

// TestDiagnostics compiles each malformed input in testdata/errors and
// compares the exact diagnostics. A case holds `input.arch`, optionally
// `config.json` and `args` (--set k=v ...), and the expected `stderr`.
func TestDiagnostics(t *testing.T) {
	golden.Cases(t, filepath.Join("testdata", "errors"), func(t *testing.T, path string, a *golden.Archive) {
		src, ok := a.Get("input.arch")
		if !ok {
			t.Fatalf("%s has no input.arch", path)
		}
		opts := Options{File: "input.arch", Source: src, Verify: true}
		if js, ok := a.Get("config.json"); ok {
			if j, err := config.ParseJSON("config.json", []byte(js)); err == nil {
				opts.JSON = j
			}
		}
		if args, ok := a.Get("args"); ok {
			f := strings.Fields(args)
			for i := 0; i+1 < len(f); i += 2 {
				if f[i] == "--set" {
					opts.Sets = append(opts.Sets, f[i+1])
				}
			}
		}
		_, cerr := Compile(opts)
		got := "ok\n"
		if cerr != nil {
			got = cerr.Error() + "\n"
		}
		if _, wantsErr := a.Get("stderr"); !wantsErr && !golden.Update() {
			t.Fatalf("%s has no stderr section", path)
		}
		golden.Check(t, path, a, []string{"input.arch", "config.json", "args"}, map[string]string{"stderr": got})
		if cerr == nil {
			t.Errorf("%s compiled without error", path)
		}
	})
}
