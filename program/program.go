// Package program is the compiled form of a model that backends execute:
// the IR after every pass, its KV-cache and arena plans, and (once codegen
// has run) the kernel table and every op's dispatch. It is the one package
// both halves share: the compiler and codegen produce it, every backend
// consumes it, and it imports nothing of either (only the IR and plan
// types, which are leaves). Backends never see the .arch source.
package program

import (
	"fmt"

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

// Describe names the configuration in messages: "gpt-oss (hidden=2880, layers=24)".
func (p *Program) Describe() string {
	s := p.Model + " ("
	n := 0
	for _, c := range p.Config {
		switch c.Name {
		case "hidden", "layers", "vocab_size", "experts", "heads":
			if n > 0 {
				s += ", "
			}
			s += fmt.Sprintf("%s=%v", c.Name, c.Value)
			n++
		}
	}
	return s + ")"
}

// Validate checks a checkpoint against the weight manifest before anything
// runs. The error names every problem and says what to recompile.
func (p *Program) Validate(ck *weights.Checkpoint, archHint string) error {
	hint := fmt.Sprintf("the checkpoint does not fit the compiled %s; recompile for its config: minervac compile %s --config %s", p.Describe(), archHint, ck.Path())
	return ck.Validate(p.TensorSpecs(), hint)
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
