package kernels_test

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/program"
)

// TestAttendSplits: gpt-oss-20b's decode attention (64 heads) is split
// over 8 threadgroups per head on its full layers, each split followed by
// attend_combine, and prefill keeps one threadgroup per (head, token); its
// sliding layers (a window of 128) are too short to split and keep the
// one attend kernel for every call, as do the tiny model's (a window of 8).
func TestAttendSplits(t *testing.T) {
	p := fixtures.CompileArch(t, fixtures.Path(t, "models/gpt-oss.arch"), fixtures.Path(t, "testdata/configs/gpt-oss-20b.json"), compiler.PlanOptions{Ctx: 131072})
	full := 0
	for _, d := range p.Code.Dispatches {
		if d.Kind != "attend" {
			continue
		}
		if p.Func.Ops[d.Op].Attrs.Int("window") > 0 {
			if _, ok := d.Kernels[program.VariantAny]; !ok || len(d.Then) != 0 || d.Scratch != 0 {
				t.Errorf("layer %d: a window of 128 positions was split: %+v", d.Layer, d)
			}
			continue
		}
		full++
		g := d.Grids[program.VariantDecode]
		if len(d.Then) != 1 || d.Then[0].Variant != program.VariantDecode || d.Then[0].Grid.Eval(1) != [3]int{64, 1, 1} {
			t.Fatalf("layer %d: stages %+v, want one attend_combine in decode over 64 heads", d.Layer, d.Then)
		}
		if pg := d.Grids[program.VariantPrefill].Eval(5); pg != [3]int{64, 5, 1} {
			t.Errorf("layer %d: prefill grid %v, want one threadgroup per (head, token)", d.Layer, pg)
		}
		if want := int64(4 * 64 * g[2].Const * (64 + 2)); d.Scratch != want {
			t.Errorf("layer %d: scratch %d bytes, want %d (a partial per head and split)", d.Layer, d.Scratch, want)
		}
		if g[2].Const != 8 {
			t.Errorf("layer %d: %d splits, want 8 (64 heads x 8 = 512 threadgroups)", d.Layer, g[2].Const)
		}
	}
	if full != 12 {
		t.Fatalf("%d full-attention layers, want 12", full)
	}

	tiny := fixtures.TinyRandom.Compile(t, compiler.PlanOptions{})
	for _, d := range tiny.Code.Dispatches {
		if d.Kind == "attend" && tiny.Func.Ops[d.Op].Attrs.Int("window") > 0 {
			if _, ok := d.Kernels[program.VariantAny]; !ok || len(d.Then) != 0 || d.Scratch != 0 {
				t.Errorf("tiny-random layer %d: a window of 8 positions was split: %+v", d.Layer, d)
			}
		}
	}
}
