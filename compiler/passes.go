package compiler

import (
	"fmt"
	"math"
	"strings"

	"github.com/minerva-ml/minerva/codegen"
	"github.com/minerva-ml/minerva/codegen/kernels"
	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/compiler/eval"
	"github.com/minerva-ml/minerva/compiler/fuse"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/lower"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/compiler/wcheck"
	"github.com/minerva-ml/minerva/dsl"
	"github.com/minerva-ml/minerva/dsl/diag"
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
	{Name: "kv_cache", Required: true, Why: "split each attention into a KV-cache write and a read over the cache, so prefill and decode share one program", Run: kvCachePass, ChangesIR: true, Dump: dumpIR},
	{Name: "fuse", Required: false, Why: "apply the rules of compiler/fuse/rules.fuse: fewer dispatches, fewer round trips through memory", Run: fusePass, ChangesIR: true, Dump: dumpIR},
	{Name: "legalize", Required: true, Why: "report every op the kernels cannot run (a head too wide, a weight dtype they do not read) where the .arch source wrote it, before anything is planned", Run: legalizePass, Dump: dumpIR},
	{Name: "plan_kv", Required: true, Why: "size each layer's KV cache: the whole context for full attention, a ring for sliding windows", Run: planKVPass, Dump: dumpKV},
	{Name: "plan_arena", Required: true, Why: "place every activation in one arena by liveness, so memory is the peak, not the sum", Run: planArenaPass, Dump: dumpArena},
	{Name: "codegen", Required: true, Why: "specialise a Metal kernel template for every op and record each op's dispatch: kernel, bindings, grid", Run: codegenPass, Dump: dumpMetal},
}

// codegenPass specialises the kernels. On return every op has a dispatch
// and kernels.metal holds every distinct kernel.
func codegenPass(u *Unit) error {
	out, err := codegen.Generate(u.Func, u.KV)
	u.Generated = out
	return err
}

func dumpMetal(u *Unit) string { return u.Generated.Metal }

func parsePass(u *Unit) error {
	f, err := dsl.ParseWithin(u.Opts.File, u.Opts.Source, u.Budget.Limits)
	if err != nil {
		return err
	}
	u.File = f
	return nil
}

func configPass(u *Unit) error {
	u.Config = config.Evaluate(u.File, config.Options{JSON: u.Opts.JSON, Sets: u.Opts.Sets, Budget: u.Budget}, &u.Diags)
	return nil
}

// weightsPos is where the weights block starts, for checkpoint tensors
// that no declaration reads.
func weightsPos(f *dsl.File) diag.Pos {
	for _, b := range f.Blocks {
		if b.Weights != nil {
			return dsl.PosOf(f.Name, b.Weights.Pos)
		}
	}
	return diag.Pos{File: f.Name}
}

func lowerPass(u *Unit) error {
	r := lower.Lower(u.File, u.Config, &u.Diags)
	u.Func, u.Layers = r.Func, r.Layers
	if u.Diags.Len() == 0 && u.Opts.Checkpoint != nil {
		wcheck.Check(u.Func, u.Opts.Checkpoint, weightsPos(u.File), &u.Diags)
	}
	if u.Diags.Len() == 0 {
		u.Func.Renumber()
		u.LoweredOps = len(u.Func.Ops)
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
		used := ir.HasSideEffects(op)
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

// kvCachePass rewrites attention(q, k, v, sinks) as
// attend(cache_kv(q, k, v), sinks). On return no attention op remains; each
// cache_kv/attend pair shares a cache slot, numbered in program order, and
// attend's defaults (v_head_dim, scale) are explicit.
func kvCachePass(u *Unit) error {
	f := u.Func
	var out []*ir.Op
	slot := int64(0)
	for _, op := range f.Ops {
		if op.Kind != ir.OpAttention {
			out = append(out, op)
			continue
		}
		a := op.Attrs
		hd := a.Int("head_dim")
		vhd := a.Int("v_head_dim")
		if vhd == 0 {
			vhd = hd
		}
		scale := a.Float("scale")
		if scale == 0 {
			scale = 1 / math.Sqrt(float64(hd))
		}
		q := op.Args[0].V
		store := &ir.Op{Kind: ir.OpCacheKV, Args: op.Args[:3:3], Layer: op.Layer, Pos: op.Pos, End: op.End, Attrs: ir.Attrs{
			{Key: "cache", Value: slot}, {Key: "kv_heads", Value: a.Int("kv_heads")},
			{Key: "head_dim", Value: hd}, {Key: "window", Value: a.Int("window")},
		}}
		qc := f.NewValue(q.Type, q.Name)
		qc.Def = store
		store.Results = []*ir.Value{qc}
		attend := &ir.Op{Kind: ir.OpAttend, Args: []ir.Arg{{V: qc}, op.Args[3]}, Layer: op.Layer, Pos: op.Pos, End: op.End, Results: op.Results, Attrs: ir.Attrs{
			{Key: "cache", Value: slot}, {Key: "heads", Value: a.Int("heads")}, {Key: "kv_heads", Value: a.Int("kv_heads")},
			{Key: "head_dim", Value: hd}, {Key: "v_head_dim", Value: vhd}, {Key: "window", Value: a.Int("window")},
			{Key: "scale", Value: scale}, {Key: "softcap", Value: a.Float("softcap")},
		}}
		for _, r := range op.Results {
			r.Def = attend
		}
		out = append(out, store, attend)
		slot++
	}
	f.Ops = out
	f.Renumber()
	return nil
}

// legalizePass checks every op against the kernels' limits
// (kernels.Limits) and reports each problem as a diagnostic at the source
// the op was lowered from. On return without diagnostics every op can be
// specialised. `minervac check` runs up to here.
func legalizePass(u *Unit) error {
	for _, op := range u.Func.Ops {
		for _, l := range kernels.Limits(op) {
			pos, end := diag.Pos(op.Pos), diag.Pos(op.End)
			if !pos.IsValid() {
				pos, end = diag.Pos{File: u.Opts.File}, diag.Pos{}
			}
			u.Diags.Errorf(pos, end, l.Hint, "%s", l.Message)
		}
	}
	return nil
}

// fusePass applies the fusion rules in order. On return every match of
// every rule has been replaced by its fused op.
func fusePass(u *Unit) error {
	u.Fused = fuse.Apply(u.Func, fuse.Rules)
	return nil
}

func planKVPass(u *Unit) error {
	p := u.Opts.Plan.withDefaults()
	format, err := plan.ParseKVFormat(p.KV)
	if err != nil {
		return err
	}
	if err := p.Check(); err != nil {
		return err
	}
	if err := checkModelCtx(u.Config, p.Ctx); err != nil {
		return err
	}
	u.KV, err = plan.PlanKV(u.Func, format, int64(p.Ctx), int64(p.Batch))
	return err
}

func planArenaPass(u *Unit) error {
	var err error
	u.Arena, err = plan.PlanArena(u.Func, int64(u.Opts.Plan.withDefaults().Batch))
	if err != nil {
		return err
	}
	if u.Opts.Verify {
		return u.Arena.Check(u.Func)
	}
	return nil
}

func dumpKV(u *Unit) string {
	var b strings.Builder
	fmt.Fprintf(&b, "kv format=%s ctx=%d batch=%d bytes=%d\n", u.KV.Format, u.KV.Ctx, u.KV.Batch, u.KV.Bytes)
	for _, l := range u.KV.Layers {
		kind := "full"
		if l.Ring {
			kind = "ring"
		}
		fmt.Fprintf(&b, "  cache %d (layer %d): %s capacity=%d window=%d kv_heads=%d head_dim=%d k@%d+%d v@%d+%d\n",
			l.Cache, l.Layer, kind, l.Capacity, l.Window, l.KVHeads, l.HeadDim, l.KOffset, l.KBytes, l.VOffset, l.VBytes)
	}
	return b.String()
}

func dumpArena(u *Unit) string {
	var b strings.Builder
	fmt.Fprintf(&b, "arena batch=%d bytes=%d naive=%d scratch=%d\n", u.Arena.Batch, u.Arena.Bytes, u.Arena.Naive, u.Arena.Scratch)
	vals := []*ir.Value{u.Func.Input}
	for _, op := range u.Func.Ops {
		vals = append(vals, op.Results...)
	}
	for _, v := range vals {
		s := u.Arena.Slots[v.ID]
		extra := ""
		if s.InPlace >= 0 {
			extra = fmt.Sprintf(" in place of %%%d", s.InPlace)
		}
		fmt.Fprintf(&b, "  %%%d %s @%d+%d live %d..%d%s\n", v.ID, v.Type, s.Offset, s.Bytes, s.Start, s.End, extra)
	}
	return b.String()
}

func dumpSource(u *Unit) string { return u.Opts.Source }

func dumpConfig(u *Unit) string {
	var b strings.Builder
	for _, e := range u.Config.Entries {
		src := string(e.Source)
		if e.Key != "" {
			src += " " + e.Key
		}
		if len(e.Missing) > 0 {
			src += ": config.json has no " + strings.Join(e.Missing, ", ")
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
