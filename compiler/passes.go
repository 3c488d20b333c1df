package compiler

import (
	"fmt"
	"strings"

	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/compiler/eval"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/lower"
	"github.com/minerva-ml/minerva/dsl"
)

// Pass is one stage of the pipeline.
type Pass struct {
	Name string
	// Required passes cannot be disabled: later stages depend on them.
	Required bool
	// Why the pass exists, in one line.
	Why string
	Run func(*Unit) error
	// ChangesIR passes are followed by the verifier when Options.Verify is set.
	ChangesIR bool
	// Dump renders the unit after the pass for --dump after:NAME.
	Dump func(*Unit) string
}

// Passes is the whole pipeline, in order.
var Passes = []Pass{
	{Name: "parse", Required: true, Why: "read the .arch text into a syntax tree, reporting every syntax error", Run: parsePass, Dump: dumpSource},
	{Name: "config", Required: true, Why: "fix every parameter from defaults, config.json and --set, then run the checks", Run: configPass, Dump: dumpConfig},
	{Name: "lower", Required: true, Why: "resolve names, declare the weights and unroll the forward pass into typed IR, checking shapes", Run: lowerPass, ChangesIR: true, Dump: dumpIR},
	{Name: "dce", Required: false, Why: "drop ops whose results nothing reads, so later passes and kernels never see them", Run: dcePass, ChangesIR: true, Dump: dumpIR},
}

func parsePass(u *Unit) error {
	f, err := dsl.Parse(u.Opts.File, u.Opts.Source)
	if err != nil {
		return err
	}
	u.File = f
	return nil
}

func configPass(u *Unit) error {
	u.Config = config.Evaluate(u.File, config.Options{JSON: u.Opts.JSON, Sets: u.Opts.Sets}, &u.Diags)
	return nil
}

func lowerPass(u *Unit) error {
	r := lower.Lower(u.File, u.Config, &u.Diags)
	u.Func, u.Layers = r.Func, r.Layers
	if u.Diags.Len() == 0 {
		u.Func.Renumber()
	}
	return nil
}

// dcePass removes ops whose results are unused. On return every remaining
// op has a result that reaches the output or a side effect.
func dcePass(u *Unit) error {
	u.Func.Ops = DeadCode(u.Func)
	u.Func.Renumber()
	return nil
}

// DeadCode returns the ops of f that contribute to its output.
func DeadCode(f *ir.Func) []*ir.Op {
	live := map[*ir.Value]bool{f.Output: true}
	keep := make([]bool, len(f.Ops))
	for i := len(f.Ops) - 1; i >= 0; i-- {
		op := f.Ops[i]
		used := HasSideEffect(op)
		for _, r := range op.Results {
			used = used || live[r]
		}
		if !used {
			continue
		}
		keep[i] = true
		for _, a := range op.Args {
			if a.V != nil {
				live[a.V] = true
			}
		}
	}
	var out []*ir.Op
	for i, op := range f.Ops {
		if keep[i] {
			out = append(out, op)
		}
	}
	return out
}

// HasSideEffect reports whether an op writes state besides its results
// (the KV cache), so that dead-code elimination must keep it.
func HasSideEffect(op *ir.Op) bool {
	if op.Kind == "cache_kv" {
		return true
	}
	for _, b := range op.Body {
		if HasSideEffect(b) {
			return true
		}
	}
	return false
}

func dumpSource(u *Unit) string { return u.Opts.Source }

func dumpConfig(u *Unit) string {
	var b strings.Builder
	for _, e := range u.Config.Entries {
		src := string(e.Source)
		if e.Key != "" {
			src += " " + e.Key
		}
		if e.Type == "" {
			fmt.Fprintf(&b, "%s = %s  # %s\n", e.Name, eval.Format(e.Value), src)
			continue
		}
		fmt.Fprintf(&b, "%s: %s = %s  # %s\n", e.Name, e.Type, eval.Format(e.Value), src)
	}
	return b.String()
}

func dumpIR(u *Unit) string { return ir.Print(u.Func) }

// FinalIR prints the IR as the last pass that ran left it.
func FinalIR(u *Unit) string { return ir.Print(u.Func) }
