// Package program is the compiled form of a model that backends execute:
// the IR after every pass, with its KV-cache and arena plans. Backends never
// see the .arch source; they run this.
package program

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/minerva-ml/minerva/compiler"
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
}

// ConfigValue is one configuration entry.
type ConfigValue struct {
	Name  string
	Value any
}

// FromUnit takes the result of a compilation.
func FromUnit(u *compiler.Unit) *Program {
	p := &Program{Model: u.Func.Model, Func: u.Func, KV: u.KV, Arena: u.Arena}
	for _, e := range u.Config.Entries {
		p.Config = append(p.Config, ConfigValue{e.Name, e.Value})
	}
	return p
}

// Compile compiles an .arch source for a model directory's config.json
// (when dir has one).
func Compile(archFile, archSource, modelDir string, po compiler.PlanOptions) (*Program, error) {
	opts := compiler.Options{File: archFile, Source: archSource, Plan: po}
	if modelDir != "" {
		cfg := filepath.Join(modelDir, "config.json")
		if _, err := os.Stat(cfg); err == nil {
			js, err := compiler.ReadConfig(cfg)
			if err != nil {
				return nil, err
			}
			opts.JSON = js
		}
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		return nil, err
	}
	return FromUnit(u), nil
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
