package gpu

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/program"
)

// TestQwen3ThroughMslemu: no dense Qwen3 reference exists (the CPU
// backend checks models/qwen3.arch against layer 0 of qwen3-moe-tiny,
// TestQwen3DenseLayer), so the emitted Metal of qwen3.arch, in the
// qwen3-moe-tiny shapes with random weights and attention biases, is
// compared with the CPU backend kernel by kernel, fused and unfused.
func TestQwen3ThroughMslemu(t *testing.T) {
	needCompiler(t)
	for _, disable := range [][]string{nil, {"fuse"}} {
		opts, err := compiler.SourceOptions("../../models/qwen3.arch", "../../testdata/families/qwen3-moe-tiny", []string{"layers=2", "attention_bias=true"})
		if err != nil {
			t.Fatal(err)
		}
		opts.Plan = compiler.PlanOptions{KV: "f32", Ctx: 48, Batch: 8}
		opts.Verify, opts.Disable = true, disable
		u, err := compiler.Compile(opts)
		if err != nil {
			t.Fatal(err)
		}
		p := program.FromUnit(u)
		ck := openCheckpoint(t, writeRandomCheckpoint(t, p, 5))
		if err := p.Validate(ck, "qwen3.arch"); err != nil {
			t.Fatal(err)
		}
		kinds := map[ir.OpKind]bool{}
		compareOpByOp(t, p, u.Generated, ck, 20, kinds)
		if !kinds[ir.OpRMSNorm] && disable != nil {
			t.Error("no rmsnorm kernel was compared")
		}
	}
}
