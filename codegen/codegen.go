// Package codegen turns a planned program into what backends launch: the
// specialised kernels, kernels.metal, and the dispatch of every op (which
// kernel for a call of one or many tokens, what is bound to each
// parameter, the grid).
package codegen

import (
	"github.com/minerva-ml/minerva/codegen/kernels"
	"github.com/minerva-ml/minerva/codegen/metal"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/program"
)

// Generate specialises every op of f: the program's Code.
func Generate(f *ir.Func, kv *plan.KV) (*program.Code, error) {
	ctx := kernels.NewContext(f, kv)
	out := &program.Code{}
	for i := range f.Ops {
		d, err := ctx.Specialize(i)
		if err != nil {
			return nil, err
		}
		out.Dispatches = append(out.Dispatches, d)
	}
	out.Kernels = ctx.Kernels()
	src, err := metal.Source(f.Model, out.Kernels)
	if err != nil {
		return nil, err
	}
	out.Metal = src
	return out, nil
}
