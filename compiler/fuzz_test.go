package compiler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/minerva-ml/minerva/compiler/config"
)

// FuzzCheck runs what `minervac check` runs (the pipeline up to
// legalize) on arbitrary source and config.json text: it must fail with
// diagnostics or succeed with IR that verifies, and never panic or hang.
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
		b, _ := os.ReadFile(e)
		f.Add(string(b), "{}")
	}
	f.Fuzz(func(t *testing.T, src, cfgText string) {
		opts := Options{File: "fuzz.arch", Source: src, Verify: true, StopAfter: "legalize"} // what check runs
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
	})
}
