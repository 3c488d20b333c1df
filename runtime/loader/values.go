package loader

import (
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// checkValues refuses a checkpoint whose small tensors hold NaN or an
// infinity: one such norm, bias or sink turns every logit into NaN, and
// the output into garbage. It reads every weight except the matrices (the
// weight of linear and expert_linear, the embedding table) and the 4-bit
// codes of MXFP4 weights, whose every value is finite; of MXFP4 weights it
// reads the scales. For gpt-oss-20b that is 14 MB of norms, biases and
// sinks and 597 MB of scales, against 13 GB the matrices and codes take.
// NaN from the matrices still stops a generation: the engine checks the
// logits.
func checkValues(p *program.Program, ck *weights.Checkpoint) error {
	values, scales := checkedTensors(p.Func)
	return ck.CheckValues(values, scales, "the checkpoint's weights are damaged: download, convert or write them again")
}

// checkedTensors lists, in manifest order, the floating-point tensors
// checkValues reads whole and the MXFP4 scale tensors it reads.
func checkedTensors(f *ir.Func) (values, scales []string) {
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
	for _, w := range f.Weights {
		ts := w.Tensors()
		switch {
		case w.DType == ir.MXFP4:
			scales = append(scales, ts[1].Name)
		case !matrix[w]:
			values = append(values, ts[0].Name)
		}
	}
	return values, scales
}
