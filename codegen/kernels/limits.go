package kernels

import (
	"fmt"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// Limit is one thing about an op that the Metal kernels cannot do: what
// and how to change the model so that they can.
type Limit struct {
	Message string
	Hint    string
}

// maxHeadDim is the widest head the KV-cache kernels hold: one head of
// keys or values per threadgroup, in its threadgroup memory.
const maxHeadDim = 256

// limits holds each kind's checks. They live here, next to the kernels
// that have the limits, and run twice: in the compiler's legalize pass,
// which reports each at its place in the .arch source, and before
// specialising, so that a program that skipped legalize fails cleanly.
var limits = map[ir.OpKind]func(op *ir.Op) []Limit{
	ir.OpCacheKV: func(op *ir.Op) []Limit {
		return headLimits(op, op.Input("v").V.Type.Shape.Last())
	},
	ir.OpQKVRopeStore: func(op *ir.Op) []Limit {
		var out []Limit
		if norm := op.Input("norm").W; norm != nil && norm.Shape[0] != op.Input("x").V.Type.Shape.Last() {
			out = append(out, groupedNormLimit)
		}
		wq, wk, wv := op.Input("wq").W, op.Input("wk").W, op.Input("wv").W
		if wq.DType != wk.DType || wq.DType != wv.DType || wq.DType == ir.MXFP4 {
			out = append(out, Limit{
				Message: fmt.Sprintf("the fused q/k/v kernel needs q, k and v weights of one dense dtype, not %s, %s and %s", wq.DType, wk.DType, wv.DType),
				Hint:    "store the q, k and v projections in one of bf16, f16 or f32",
			})
		}
		store := body(op, ir.OpCacheKV, 0)
		return append(out, headLimits(store, wv.Shape[0])...)
	},
	ir.OpRMSNormLinear: func(op *ir.Op) []Limit {
		if op.Input("norm").W.Shape[0] != op.Input("x").V.Type.Shape.Last() {
			return []Limit{groupedNormLimit}
		}
		return nil
	},
	ir.OpGLU: func(op *ir.Op) []Limit {
		if wg, wu := op.Input("wg").W, op.Input("wu").W; wg.DType != wu.DType {
			return []Limit{{
				Message: fmt.Sprintf("the fused gate/up kernel needs gate and up weights of one dtype, not %s and %s", wg.DType, wu.DType),
				Hint:    "store the gate and up projections in the same dtype",
			}}
		}
		return nil
	},
	ir.OpRouter:           routerLimits,
	ir.OpAddRMSNormRouter: routerLimits,
}

var groupedNormLimit = Limit{
	Message: "a grouped norm (a weight shorter than the row) as a matmul's prologue is not supported",
	Hint:    "normalise the whole row, or keep the norm out of the fused matmul",
}

// headLimits checks a cache_kv op's head widths; vFeatures is the width of
// its values (kv_heads * v_head_dim).
func headLimits(store *ir.Op, vFeatures int64) []Limit {
	kvh, hd := store.Attrs.Int("kv_heads"), store.Attrs.Int("head_dim")
	vd := vFeatures / max(kvh, 1)
	if hd <= maxHeadDim && vd <= maxHeadDim {
		return nil
	}
	return []Limit{{
		Message: fmt.Sprintf("heads wider than %d are not supported (head_dim is %d, v_head_dim %d)", maxHeadDim, hd, vd),
		Hint:    fmt.Sprintf("the Metal KV-cache kernels hold one head in threadgroup memory; use a head_dim and v_head_dim of at most %d", maxHeadDim),
	}}
}

// Limits lists what the Metal kernels cannot do for op; none means op can
// be specialised.
func Limits(op *ir.Op) []Limit {
	if f := limits[op.Kind]; f != nil {
		return f(op)
	}
	return nil
}

func routerLimits(op *ir.Op) []Limit {
	if op.Input("w").W.DType == ir.MXFP4 {
		return []Limit{{Message: "the router kernel does not read mxfp4 weights", Hint: "store the router weight in bf16, f16 or f32"}}
	}
	return nil
}
