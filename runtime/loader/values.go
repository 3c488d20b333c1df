package loader

import (
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// checkValues refuses a checkpoint whose small tensors hold NaN or an
// infinity: one such norm, bias or sink turns every logit into NaN, and
// the output into garbage. It reads every weight that is not a matrix (the
// weight of a product or the embedding table) or MXFP4: for
// gpt-oss-20b 14 MB of norms, biases and sinks, a few milliseconds.
//
// MXFP4 scales are not read: gpt-oss-20b has 597 MB of them, which would
// add 60 ms or more (far more from a cold disk) to a time to ready of
// about 50 ms, and the check would grow with the checkpoint. Neither are
// the matrices. A NaN or a scale of 0xFF there still cannot print
// garbage: the engine stops the generation when the logits stop being
// finite. weights.Checkpoint.CheckValues can read the scales too.
func checkValues(p *program.Program, ck *weights.Checkpoint) error {
	return ck.CheckValues(checkedTensors(p.Func), nil, "the checkpoint's weights are damaged: download, convert or write them again")
}

// checkedTensors lists, in manifest order, the tensors checkValues reads:
// the weights no op takes as a matrix (ir.RoleMatrix in the op registry),
// other than MXFP4 ones.
func checkedTensors(f *ir.Func) []string {
	matrix := map[*ir.Weight]bool{}
	var visit func(ops []*ir.Op)
	visit = func(ops []*ir.Op) {
		for _, op := range ops {
			inputs := ir.MustLookup(op.Kind).Inputs
			for i, a := range op.Args {
				if a.W != nil && i < len(inputs) && inputs[i].Role == ir.RoleMatrix {
					matrix[a.W] = true
				}
			}
			visit(op.Body)
		}
	}
	visit(f.Ops)
	var values []string
	for _, w := range f.Weights {
		if w.DType != ir.MXFP4 && !matrix[w] {
			values = append(values, w.Tensors()[0].Name)
		}
	}
	return values
}
