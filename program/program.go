// Package program is the compiled form of a model that backends execute:
// the IR after every pass, its KV-cache and arena plans, and (once codegen
// has run) the kernel table and every op's dispatch. It is the one package
// both halves share: the compiler and codegen produce it, every backend
// consumes it, and it imports nothing of either: only the IR and plan
// types and the checkpoint format, which are leaves too (internal/layers
// checks this). Backends never see the .arch source.
package program

import (
	"fmt"
	"strings"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// Program is a compiled model.
type Program struct {
	Model string
	Func  *ir.Func
	KV    *plan.KV
	Arena *plan.Arena
	// Config holds the evaluated configuration, for reports.
	Config []ConfigValue
	// Code is what a Metal-like device launches: nil when codegen did not
	// run (the CPU backend needs only the IR and the plans).
	Code *Code
}

// ConfigValue is one configuration entry.
type ConfigValue struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
}

// Code is the back half's output: the distinct kernels, the dispatch of
// every op (in op order) and kernels.metal.
type Code struct {
	Kernels    []*Kernel
	Dispatches []*Dispatch
	Metal      string
}

// TensorSpecs is the weight manifest: every checkpoint tensor the model reads.
func (p *Program) TensorSpecs() []weights.TensorSpec {
	var out []weights.TensorSpec
	for _, w := range p.Func.Weights {
		for _, t := range w.Tensors() {
			dt, err := weights.ParseDType(t.DType.String())
			if err != nil {
				panic("BUG: weight dtype " + t.DType.String() + " has no checkpoint dtype")
			}
			out = append(out, weights.TensorSpec{Name: t.Name, DType: dt, Shape: []int64(t.Shape)})
		}
	}
	return out
}

// Vocab is the width of the logits.
func (p *Program) Vocab() int { return int(p.Func.Output.Type.Shape.Last()) }

// Describe names the model's shape in messages: "gpt-oss (vocab=201088,
// hidden=2880, layers=24, heads=64, experts=32)". The figures are read
// from the program itself (the IR's values and weights, the attention
// ops' attributes), not from config entries, whose names each .arch file
// chooses; one that a model lacks (experts) is left out.
func (p *Program) Describe() string {
	var parts []string
	add := func(name string, v int64) {
		if v > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", name, v))
		}
	}
	f := p.Func
	add("vocab", int64(p.Vocab()))
	// hidden: the width of what the tokens become (the embedding).
	var hidden, layers, heads, experts int64
	for _, op := range f.Ops {
		for _, a := range op.Args {
			if a.V == f.Input && hidden == 0 && len(op.Results) > 0 {
				hidden = op.Results[0].Type.Shape.Last()
			}
		}
		layers = max(layers, int64(op.Layer)+1)
		if v, ok := op.Attrs.Get("heads"); ok && heads == 0 {
			heads, _ = v.(int64)
		}
		experts = max(experts, ExpertsChosen(op))
	}
	add("hidden", hidden)
	add("layers", layers)
	add("heads", heads)
	add("experts", experts)
	return p.Model + " (" + strings.Join(parts, ", ") + ")"
}

// ExpertsChosen is the number of experts an op chooses among: the first
// dimension of the stacked expert weights it reads beside a route, or 0
// for an op that reads no route.
func ExpertsChosen(op *ir.Op) int64 {
	routed := false
	var n int64
	for _, a := range op.Args {
		switch {
		case a.V != nil && a.V.Type.DType == ir.Route:
			routed = true
		case a.W != nil && len(a.W.Shape) == 3:
			n = a.W.Shape[0]
		}
	}
	if !routed {
		return 0
	}
	return n
}

// Validate checks a checkpoint against the weight manifest before anything
// runs. The error names every problem and says what to recompile.
func (p *Program) Validate(ck *weights.Checkpoint, archHint string) error {
	hint := fmt.Sprintf("the checkpoint does not fit the compiled %s; recompile for its config: minervac compile %s --config %s", p.Describe(), archHint, ck.Path())
	return ck.Validate(p.TensorSpecs(), hint)
}

// StackWeights assembles, once, each weight stored as one checkpoint tensor
// per index of its first dimension (one per expert) into the one tensor the
// Metal kernels bind: a copy in memory. runtime/gpu calls it when it
// loads; the CPU backend reads the parts in place instead.
func (p *Program) StackWeights(ck *weights.Checkpoint) error {
	for _, w := range p.Func.Weights {
		st, ok := w.Stacked()
		if !ok {
			continue
		}
		var parts []string
		for j := int64(0); j < st.Hi-st.Lo; j++ {
			parts = append(parts, st.Part(j))
		}
		if err := ck.Stack(w.Checkpoint, parts); err != nil {
			return err
		}
	}
	return nil
}

// CheckCall refuses a call a backend cannot run: no tokens, more tokens
// than the plan's batch, positions past the context, or ids outside the
// vocabulary. Every backend calls it first, so all give the same errors.
func (p *Program) CheckCall(tokens []int32, pos int) error {
	n, batch, ctx, vocab := len(tokens), int(p.Arena.Batch), int(p.KV.Ctx), p.Vocab()
	switch {
	case n == 0:
		return fmt.Errorf("no tokens to run")
	case n > batch:
		return fmt.Errorf("BUG: %d tokens in one call; the program was planned for at most %d", n, batch)
	case pos < 0 || pos+n > ctx:
		return fmt.Errorf("positions %d..%d exceed the context of %d tokens; compile with a larger --ctx", pos, pos+n-1, ctx)
	}
	for _, t := range tokens {
		if t < 0 || int(t) >= vocab {
			return fmt.Errorf("token id %d is outside the vocabulary (0..%d)", t, vocab-1)
		}
	}
	return nil
}
