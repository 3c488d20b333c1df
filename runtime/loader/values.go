package loader

import (
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// checkValues refuses a checkpoint whose small tensors hold NaN or an
// infinity: one such norm, bias or sink turns every logit into NaN, and
// the output into garbage. It reads every weight that is not a matrix (the
// weight of linear and expert_linear, the embedding table) or MXFP4: for
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

// checkedTensors lists, in manifest order, the tensors checkValues reads.
func checkedTensors(f *ir.Func) []string {
	matrix := map[*ir.Weight]bool{}
	var visit func(op *ir.Op)
	visit = func(op *ir.Op) {
		role := map[string]int{"linear": 1, "expert_linear": 2, "embedding": 0}
		if i, ok := role[op.Kind]; ok && i < len(op.Args) && op.Args[i].W != nil {
			matrix[op.Args[i].W] = true
		}
		for _, b := range op.Body {
			visit(b)
		}
	}
	for _, op := range f.Ops {
		visit(op)
	}
	var values []string
	for _, w := range f.Weights {
		if w.DType != ir.MXFP4 && !matrix[w] {
			values = append(values, w.Tensors()[0].Name)
		}
	}
	return values
}
