package cpu

import (
	"testing"

	"github.com/minerva-ml/minerva/internal/fixtures"
)

// TestFamiliesKVFormats runs every fixture (prefill of half the reference
// sequence, then one token at a time) with each KV-cache format against
// transformers' logits_full and logs the relative error: the figures of
// docs/arch-language.md's table. f32 and f16 are held to their bounds on
// every family; the quantised formats only on the trained fortune model
// (TestQuantizedKV), because random weights put MoE routers and the
// output at decision boundaries that any rounding flips.
func TestFamiliesKVFormats(t *testing.T) {
	bounds := map[string]float64{"f32": 1e-4, "f16": 1e-3}
	for _, fx := range testModels {
		ref := fixtures.Load(t, fx.refDir)
		seq := append(append([]int32(nil), ref.IDs...), ref.Generated...)
		for _, kv := range []string{"f32", "f16", "q8", "q4"} {
			po := exact
			po.KV = kv
			if kv == "q4" && headDim(t, fx) < 32 {
				t.Logf("%-24s q4  (head_dim %d: q4 needs heads of at least one group of 32)", fx.name, headDim(t, fx))
				continue
			}
			m, _ := loadFixture(t, fx, po, Options{})
			e := fixtures.RelErr(prefillThenDecode(t, m, seq, len(seq)/2), ref.LogitsFull)
			t.Logf("%-24s %-3s relative error %.2e", fx.name, kv, e)
			if b, ok := bounds[kv]; ok && e > b {
				t.Errorf("%s, kv %s: relative error %.3e > %g", fx.name, kv, e, b)
			}
		}
	}
}

func headDim(t *testing.T, fx fixture) int64 {
	p := compileFixture(t, fx, exact)
	for _, c := range p.Config {
		if c.Name == "head_dim" {
			return c.Value.(int64)
		}
	}
	return 0
}
