package compiler

import (
	"os"
	"testing"
)

// benchCheck runs the front end (what `minervac check` does) on the
// shipped gpt-oss.arch with a config.
func benchCheck(b *testing.B, configPath string) {
	opts, err := SourceOptions("../models/gpt-oss.arch", configPath, nil)
	if err != nil {
		b.Fatal(err)
	}
	opts.StopAfter = "lower"
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

func TestMain(m *testing.M) { os.Exit(m.Run()) }
