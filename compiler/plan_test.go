package compiler

import (
	"fmt"
	"testing"

	"github.com/minerva-ml/minerva/compiler/stats"
)

// shipped lists every shipped model and configuration.
var shipped = []struct{ arch, config string }{
	{"../models/gpt-oss.arch", ""},
	{"../models/gpt-oss.arch", "../testdata/configs/gpt-oss-120b.json"},
	{"../models/gpt-oss.arch", "../testdata/gpt-oss/tiny-random/config.json"},
	{"../models/gpt-oss.arch", "../models/fortune/config.json"},
	{"../models/llama.arch", ""},
	{"../models/llama.arch", "../testdata/llama/llama-tiny/config.json"},
	{"../models/qwen3.arch", ""},
	{"../models/mistral.arch", ""},
	{"../models/mistral.arch", "../testdata/families/mistral-tiny/config.json"},
	{"../models/qwen3-moe.arch", ""},
	{"../models/qwen3-moe.arch", "../testdata/families/qwen3-moe-tiny/config.json"},
	{"../models/gemma3.arch", ""},
	{"../models/gemma3.arch", "../testdata/families/gemma3-tiny/config.json"},
	{"../models/phi3.arch", ""},
	{"../models/phi3.arch", "../testdata/families/phi3-tiny/config.json"},
}

// TestArenaPlansAreSafe runs the arena checker on every shipped model and
// configuration, with and without fusion, at several batch sizes: no two
// values live at once may share bytes.
func TestArenaPlansAreSafe(t *testing.T) {
	for _, s := range shipped {
		for _, batch := range []int{1, 7, 128} {
			for _, disable := range [][]string{nil, {"fuse"}, {"fuse", "dce"}} {
				name := fmt.Sprintf("%s %s batch=%d disable=%v", s.arch, s.config, batch, disable)
				opts, err := SourceOptions(s.arch, s.config, nil)
				if err != nil {
					t.Fatal(err)
				}
				opts.Plan = PlanOptions{Batch: batch, Ctx: 512}
				opts.Disable = disable
				u, err := Compile(opts)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if err := u.Arena.Check(u.Func); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		}
	}
}

// TestGptOss20bTargets checks the figures the optimiser issue sets for
// gpt-oss-20b at a 131072-token context.
func TestGptOss20bTargets(t *testing.T) {
	limits := map[string]int64{"f16": 3.3e9, "q8": 1.7e9, "q4": 0.95e9}
	for _, kv := range []string{"f16", "q8", "q4"} {
		opts, err := SourceOptions("../models/gpt-oss.arch", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Plan = PlanOptions{Ctx: 131072, KV: kv}
		u, err := Compile(opts)
		if err != nil {
			t.Fatal(err)
		}
		st := stats.Compute(u.Func, u.KV, u.Arena, u.Layers)
		if st.KVBytes > limits[kv] {
			t.Errorf("kv %s: %d bytes > %d", kv, st.KVBytes, limits[kv])
		}
		if st.DispatchesPerLayer > 7 {
			t.Errorf("kv %s: %d dispatches in a layer > 7", kv, st.DispatchesPerLayer)
		}
		if st.ActivationPeakBytes*3 > st.ActivationNaiveBytes {
			t.Errorf("kv %s: activation peak %d > naive %d / 3", kv, st.ActivationPeakBytes, st.ActivationNaiveBytes)
		}
		t.Logf("kv %s: %+v", kv, st)
	}
}
