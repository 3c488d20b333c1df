package gpu

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/metal"
)

// TestMetalMatchesCPU runs each fixture on the Metal device against the
// CPU backend and transformers' references. It runs only on a Mac with
// Apple Silicon; elsewhere it skips and says why. (It has never run here:
// no machine we build on has an Apple GPU.)
func TestMetalMatchesCPU(t *testing.T) {
	if _, err := metal.Open(); err != nil {
		t.Skipf("no Metal device, so the Metal backend cannot run here: %v", err)
	}
	for _, fx := range testModels {
		t.Run(fx.name, func(t *testing.T) {
			ref := fixtures.Load(t, fx.ref)
			p := compileFixture(t, fx, compiler.PlanOptions{KV: "f32", Ctx: 128, Batch: 32})
			ck := openCheckpoint(t, fx.dir)
			dev, err := NewMetal(p.Code)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Load(p, ck, dev)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			cm, err := cpu.Load(p, ck, cpu.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer cm.Close()
			seq := append(append([]int32(nil), ref.IDs...), ref.Generated...)
			got := forwardAll(t, m, seq)
			want := forwardAll(t, cm, seq)
			if e := fixtures.RelErr(got, want); e > 1e-3 {
				t.Errorf("Metal against the CPU backend: relative error %.3e", e)
			}
			if e := fixtures.RelErr(got, ref.LogitsFull); e > 1e-3 {
				t.Errorf("Metal against transformers: relative error %.3e", e)
			}
		})
	}
}
