package compiler

import (
	"os"
	"testing"
)

// benchCheck runs what `minervac check` does (the pipeline up to
// legalize) on the shipped gpt-oss.arch with a config.
func benchCheck(b *testing.B, configPath string) { benchUpTo(b, configPath, "legalize") }

// benchUpTo runs the pipeline up to a pass.
func benchUpTo(b *testing.B, configPath, pass string) {
	opts, err := SourceOptions("../models/gpt-oss.arch", configPath, nil)
	if err != nil {
		b.Fatal(err)
	}
	opts.StopAfter = pass
	for i := 0; i < b.N; i++ {
		if _, err := Compile(opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheck20b and BenchmarkCheck120b compare the front end's cost
// on the 24- and 36-layer configurations; docs/benchmarks.md reports the
// ratio.
func BenchmarkCheck20b(b *testing.B)  { benchCheck(b, "") }
func BenchmarkCheck120b(b *testing.B) { benchCheck(b, "../testdata/configs/gpt-oss-120b.json") }

// BenchmarkLower20b is the front end alone (parse, config, lower): the
// baseline of what legalize and the passes before it add to check.
func BenchmarkLower20b(b *testing.B) { benchUpTo(b, "", "lower") }

func TestMain(m *testing.M) { os.Exit(m.Run()) }
