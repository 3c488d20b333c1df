package compiler

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/compiler/wcheck"
	"github.com/minerva-ml/minerva/internal/golden"
)

// parseTensors reads a case's `tensors` section, a checkpoint's headers
// one per line: `NAME DTYPE DIM,DIM,...`.
func parseTensors(t *testing.T, text string) []wcheck.Header {
	out := []wcheck.Header{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("tensors: %q is not NAME DTYPE DIMS", line)
		}
		h := wcheck.Header{Name: f[0], DType: f[1]}
		for _, d := range strings.Split(f[2], ",") {
			n, err := strconv.ParseInt(d, 10, 64)
			if err != nil {
				t.Fatalf("tensors: %q: %v", line, err)
			}
			h.Shape = append(h.Shape, n)
		}
		out = append(out, h)
	}
	return out
}

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
		if ts, ok := a.Get("tensors"); ok {
			opts.Checkpoint = parseTensors(t, ts)
		}
		_, cerr := Compile(opts)
		got := "ok\n"
		if cerr != nil {
			got = cerr.Error() + "\n"
		}
		if _, wantsErr := a.Get("stderr"); !wantsErr && !golden.Update() {
			t.Fatalf("%s has no stderr section", path)
		}
		golden.Check(t, path, a, []string{"input.arch", "config.json", "args", "tensors"}, map[string]string{"stderr": got})
		if cerr == nil {
			t.Errorf("%s compiled without error", path)
		}
	})
}
