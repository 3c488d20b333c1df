// Package lower turns a parsed .arch file, with its evaluated
// configuration, into IR: it resolves names, declares the weights, runs the
// forward pass symbolically (loops unrolled, conditions decided) and checks
// each op's operands, attributes and shapes as it goes.
//
// On return the ir.Func holds every declared weight that is present in
// this configuration and one op per tensor operation of the forward pass,
// in source order; every problem found is in the diagnostic list.
package lower

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/compiler/eval"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/dsl"
	"github.com/minerva-ml/minerva/dsl/diag"
)

// Result is what lowering produces besides the IR.
type Result struct {
	Func *ir.Func
	// Layers is the trip count of the forward pass's outermost loop.
	Layers int
}

// Lower builds the IR of a file under a configuration.
func Lower(file *dsl.File, cfg *config.Config, diags *diag.List) *Result {
	l := &lowerer{
		file:    file,
		diags:   diags,
		cfg:     cfg,
		f:       ir.NewFunc(file.Model.Name),
		weights: map[string]any{},
		ckpt:    map[string]*ir.Weight{},
		layer:   -1,
	}
	l.ev = eval.New(diags, cfg)
	if cfg.Budget != nil {
		l.ev.Budget = cfg.Budget
	}
	l.declareWeights()
	l.forward()
	return &Result{Func: l.f, Layers: l.layers}
}

type lowerer struct {
	file    *dsl.File
	diags   *diag.List
	cfg     *config.Config
	f       *ir.Func
	ev      *eval.Evaluator
	weights map[string]any // *ir.Weight, *family or absent
	ckpt    map[string]*ir.Weight
	layer   int // the outermost loop's iteration, or -1
	layers  int
	depth   int   // loop nesting
	size    int64 // four bytes for every weight element declared so far
	// funcs are the file's user functions; calling lists those being
	// inlined, innermost last (recursion is refused); ret receives the
	// innermost function's return value (nil in the forward pass).
	funcs   map[string]*dsl.FuncDecl
	calling []string
	ret     *any
}

// family is a weight declared once per layer.
type family struct {
	name    string
	from    int64
	weights []any // *ir.Weight or absent
}

func (f *family) Describe() string { return fmt.Sprintf("the per-layer weight %s", f.name) }

// absent is a declared weight that this configuration leaves out.
type absent struct {
	name string
	why  string
}

func (a absent) Describe() string { return fmt.Sprintf("the absent weight %s", a.name) }

func (l *lowerer) pos(p interface{ Span() (diag.Pos, diag.Pos) }) diag.Pos {
	s, _ := p.Span()
	return s
}

// text returns the source text of a node, for messages: at most
// textBytes of it, since a node's text may be most of the file.
func (l *lowerer) text(n dsl.Node) string {
	p, e := n.Span()
	if p.Offset >= 0 && e.Offset <= len(l.file.Source) && p.Offset < e.Offset {
		s := strings.TrimSpace(l.file.Source[p.Offset:e.Offset])
		if len(s) > textBytes {
			s = s[:textBytes] + "..."
		}
		return s
	}
	return "?"
}

const textBytes = 100

func (l *lowerer) declareWeights() {
	for _, b := range l.file.Blocks {
		if b.Weights == nil {
			continue
		}
		for _, item := range b.Weights.Items {
			if item.Weight != nil {
				if l.checkName(item.Weight.Name, dsl.PosOf(l.file.Name, item.Weight.Pos)) {
					l.weights[item.Weight.Name] = l.weight(item.Weight, l.cfg, -1)
				}
				continue
			}
			loop := item.Layers
			from, ok1 := l.ev.Int(loop.From.Tree(l.file.Name), "the start of the layer range")
			to, ok2 := l.ev.Int(loop.To.Tree(l.file.Name), "the end of the layer range")
			if !ok1 || !ok2 {
				continue
			}
			if to < from {
				l.ev.Errorf(loop.To.Tree(l.file.Name), "", "the layer range %d..%d is not sensible", from, to)
				continue
			}
			count := eval.RangeLen(from, to)
			if !l.ev.Spent(loop.To.Tree(l.file.Name), l.ev.Budget.Steps(int64(count)), "the layer range %d..%d has %d iterations", from, to, count) {
				continue
			}
			fams := map[string]*family{}
			for _, w := range loop.Weights {
				if l.checkName(w.Name, dsl.PosOf(l.file.Name, w.Pos)) {
					fam := &family{name: w.Name, from: from}
					fams[w.Name] = fam
					l.weights[w.Name] = fam
				}
			}
			for k := uint64(0); k < count && !l.ev.Budget.Exhausted() && !l.diags.Full(); k++ {
				i := from + int64(k)
				scope := &eval.MapScope{Vars: map[string]any{loop.Var: i}, Parent: l.cfg}
				for _, w := range loop.Weights {
					if fam := fams[w.Name]; fam != nil {
						fam.weights = append(fam.weights, l.weight(w, scope, int(i)))
					}
				}
			}
		}
	}
}

func (l *lowerer) checkName(name string, p diag.Pos) bool {
	end := p
	end.Col += len(name)
	if _, dup := l.weights[name]; dup {
		l.ev.ErrorAt(p, end, "", "weight '%s' is declared twice", name)
		return false
	}
	if _, clash := l.cfg.Lookup(name); clash {
		l.ev.ErrorAt(p, end, "rename the weight", "weight '%s' has the name of a config value", name)
		return false
	}
	return true
}

// weight evaluates one declaration in a scope (the config, plus the layer
// variable inside a loop).
func (l *lowerer) weight(d *dsl.WeightDecl, scope eval.Scope, layer int) any {
	name := d.Name
	if layer >= 0 {
		name = fmt.Sprintf("%s.%d", d.Name, layer)
	}
	saved := l.ev.Scope
	l.ev.Scope = scope
	defer func() { l.ev.Scope = saved }()
	if d.When != nil {
		present, ok := l.ev.Bool(d.When.Tree(l.file.Name), "a weight's when-condition")
		if !ok {
			return eval.Poison{}
		}
		if !present {
			return absent{name: name, why: "when " + l.text(d.When.Tree(l.file.Name)) + " is false"}
		}
	}
	p := dsl.PosOf(l.file.Name, d.Pos)
	dt, ok := ir.ParseDType(d.DType)
	if !ok || (dt != ir.BF16 && dt != ir.F16 && dt != ir.F32 && dt != ir.MXFP4) {
		dp := p
		dp.Col += len(d.Name) + 2
		dp.Offset += len(d.Name) + 2
		end := dp
		end.Col += len(d.DType)
		return l.ev.ErrorAt(dp, end, diag.DidYouMean(d.DType, []string{"bf16", "f16", "f32", "mxfp4"}),
			"unknown weight dtype '%s'; weights are bf16, f16, f32 or mxfp4", d.DType)
	}
	end := p
	end.Col += len(d.Name)
	end.Offset += len(d.Name)
	w := &ir.Weight{Name: name, DType: dt, Layer: layer, Decl: d.Name, Pattern: d.Pattern, Pos: ir.Pos(p), End: ir.Pos(end)}
	// Sizes are products and sums of dimensions from here on (parameter
	// counts, bytes, plans). Four bytes an element bounds every dtype, so
	// a weight whose elements times four fit in an int64, in a manifest
	// whose total does too, cannot make any of them wrap.
	size := int64(4)
	for _, dim := range d.Dims {
		t := dim.Tree(l.file.Name)
		n, ok := l.ev.Int(t, "a weight dimension")
		if !ok {
			return eval.Poison{}
		}
		if n <= 0 {
			return l.ev.Errorf(t, "", "weight %s: dimension %s is %d; dimensions must be positive", name, l.text(t), n)
		}
		if size, ok = eval.CheckedInt("*", size, n); !ok {
			return l.ev.Errorf(t, "", "weight %s: its size overflows a 64-bit int", name)
		}
		w.Shape = append(w.Shape, n)
	}
	total, ok := eval.CheckedInt("+", l.size, size)
	if !ok {
		return l.ev.ErrorAt(p, diag.Pos{}, "", "weight %s: the size of all the weights overflows a 64-bit int", name)
	}
	l.size = total
	if !l.ev.Spent(d.Dims[0].Tree(l.file.Name), l.ev.Budget.Unrolled(1), "unrolling adds weight %s", name) {
		return eval.Poison{}
	}
	if dt == ir.MXFP4 && w.Shape.Last()%32 != 0 {
		t := d.Dims[len(d.Dims)-1].Tree(l.file.Name)
		return l.ev.Errorf(t, "", "weight %s: mxfp4 packs 32 values per block, so its last dimension must be a multiple of 32, not %d", name, w.Shape.Last())
	}
	ck, ok := l.interpolate(d, scope)
	if !ok {
		return eval.Poison{}
	}
	// The names a weight loop makes are strings like any other: a long
	// pattern or name times many layers is charged to the budget.
	if layer >= 0 && !l.ev.SpentAt(p, diag.Pos{}, l.ev.Budget.StringBytes(int64(len(name))+int64(len(ck))), "naming the weights of layer %d", layer) {
		return eval.Poison{}
	}
	w.Checkpoint = ck
	if st, ok := w.Stacked(); ok {
		switch {
		case dt == ir.MXFP4:
			return l.ev.ErrorAt(p, diag.Pos{}, "", "weight %s: mxfp4 weights cannot be stacked from one tensor per index", name)
		case len(w.Shape) < 2 || w.Shape[0] != st.Hi-st.Lo:
			return l.ev.ErrorAt(p, diag.Pos{}, "the first dimension counts the stacked tensors",
				"weight %s stacks %d tensors (%s), so its shape must be [%d, ...], not %s", name, st.Hi-st.Lo, ir.StackRange(st.Lo, st.Hi), st.Hi-st.Lo, w.Shape)
		}
	}
	if prev, dup := l.ckpt[ck]; dup {
		return l.ev.ErrorAt(p, diag.Pos{}, fmt.Sprintf("the other is at %s", diag.Pos(prev.Pos)), "weight %s reads checkpoint tensor %q, which another weight reads too", name, ck)
	}
	// The weight, not its position: a map of 40-byte positions was the
	// largest allocation of lowering.
	l.ckpt[ck] = w
	l.f.Weights = append(l.f.Weights, w)
	return w
}

// interpolate fills `{name}` in a checkpoint name pattern.
//
// `{lo..hi}` (integer literals or names) stacks one tensor per index along
// a new first dimension; the name keeps the range with its bounds
// evaluated (ir.Weight.Stacked).
func (l *lowerer) interpolate(d *dsl.WeightDecl, scope eval.Scope) (string, bool) {
	var b strings.Builder
	stacked := false
	s := d.Pattern
	for {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			b.WriteString(s)
			break
		}
		closing := strings.IndexByte(s[open:], '}')
		if closing < 0 {
			l.weightError(d, "", "the checkpoint name %q has a '{' without '}'", d.Pattern)
			return "", false
		}
		b.WriteString(s[:open])
		name := strings.TrimSpace(s[open+1 : open+closing])
		if lo, hi, isRange := strings.Cut(name, ".."); isRange {
			// One tensor per index, stacked along a new first dimension.
			if stacked {
				l.weightError(d, "", "the checkpoint name %q has two ranges; a weight stacks tensors along one dimension", d.Pattern)
				return "", false
			}
			stacked = true
			var bounds [2]int64
			for k, e := range []string{lo, hi} {
				e = strings.TrimSpace(e)
				if n, err := strconv.ParseInt(e, 10, 64); err == nil {
					bounds[k] = n
					continue
				}
				v, ok := scope.Lookup(e)
				n, isInt := v.(int64)
				if !ok || !isInt {
					l.weightError(d, l.ev.Suggest(dsl.PosOf(l.file.Name, d.Pos), e, scope.Names), "the range '{%s}' in the checkpoint name %q needs integer bounds; '%s' is not an int here", name, d.Pattern, e)
					return "", false
				}
				bounds[k] = n
			}
			if bounds[1] <= bounds[0] {
				l.weightError(d, "", "the range '{%s}' in the checkpoint name %q is empty (%d..%d)", name, d.Pattern, bounds[0], bounds[1])
				return "", false
			}
			b.WriteString(ir.StackRange(bounds[0], bounds[1]))
			s = s[open+closing+1:]
			continue
		}
		v, ok := scope.Lookup(name)
		if !ok {
			l.weightError(d, l.ev.Suggest(dsl.PosOf(l.file.Name, d.Pos), name, scope.Names), "the checkpoint name %q uses '{%s}', which is not defined here", d.Pattern, name)
			return "", false
		}
		switch x := v.(type) {
		case int64, string:
			fmt.Fprint(&b, x)
		default:
			l.weightError(d, "", "'{%s}' in a checkpoint name must be an int or string, not %s", name, eval.Describe(v))
			return "", false
		}
		s = s[open+closing+1:]
	}
	return b.String(), true
}

func (l *lowerer) weightError(d *dsl.WeightDecl, hint, format string, args ...any) {
	p := dsl.PosOf(l.file.Name, d.Pos)
	l.ev.ErrorAt(p, diag.Pos{}, hint, format, args...)
}

// scope is the forward pass's local names over the weights and config.
type scope struct {
	l      *lowerer
	vars   map[string]any
	parent *scope
	// loopVar is the variable a loop scope iterates, which assignments may
	// not change.
	loopVar string
}

func (s *scope) Lookup(name string) (any, bool) {
	for c := s; c != nil; c = c.parent {
		if v, ok := c.vars[name]; ok {
			return v, true
		}
	}
	if v, ok := s.l.weights[name]; ok {
		return v, true
	}
	return s.l.cfg.Lookup(name)
}

func (s *scope) Names() []string {
	var out []string
	for c := s; c != nil; c = c.parent {
		for n := range c.vars {
			out = append(out, n)
		}
	}
	for n := range s.l.weights {
		out = append(out, n)
	}
	return append(out, s.l.cfg.Names()...)
}

func (l *lowerer) forward() {
	var fwd *dsl.ForwardBlock
	for _, b := range l.file.Blocks {
		if b.Forward != nil {
			if fwd != nil {
				l.ev.ErrorAt(dsl.PosOf(l.file.Name, b.Pos), diag.Pos{}, "", "the file has two forward blocks")
				return
			}
			fwd = b.Forward
		}
	}
	if fwd == nil {
		l.diags.Errorf(dsl.PosOf(l.file.Name, l.file.Model.Pos), diag.Pos{}, "add `forward(tokens) { ... return logits }`", "the file has no forward block")
		return
	}
	top := &scope{l: l, vars: map[string]any{fwd.Input: l.f.Input}}
	l.ev.Scope = top
	names := ir.UserOps()
	l.declareFuncs()
	kind := "op"
	for n := range l.funcs {
		names, kind = append(names, n), "op or function"
	}
	sort.Strings(names)
	l.ev.Hooks = eval.Hooks{Call: l.call, Index: l.index, Binary: l.binary, Unary: l.unary, CallNames: names, CallKind: kind}
	returned := l.stmts(fwd.Body, top)
	if !returned {
		l.diags.Errorf(dsl.PosOf(l.file.Name, fwd.Pos), diag.Pos{}, "end the forward block with `return logits`", "the forward pass does not return its output")
	}
}

// stmts runs a statement list; it reports whether a return ran.
func (l *lowerer) stmts(list []*dsl.Stmt, s *scope) bool {
	for i, st := range list {
		if l.stmt(st, s) {
			// Only a return written in this list makes what follows dead:
			// after an `if` whose chosen branch returned, the statements
			// are the other condition's path (an early return).
			if i < len(list)-1 && st.Return != nil {
				l.ev.ErrorAt(dsl.PosOf(l.file.Name, list[i+1].Pos), diag.Pos{}, "", "statement after return")
			}
			return true
		}
	}
	return false
}

func (l *lowerer) stmt(st *dsl.Stmt, s *scope) bool {
	file := l.file.Name
	switch {
	case st.Assign != nil:
		a := st.Assign
		v := l.withScope(s, func() any { return l.ev.Eval(a.Value.Tree(file)) })
		if len(a.Names) > 1 {
			l.ev.ErrorAt(dsl.PosOf(file, a.Pos), diag.Pos{}, "", "no op returns %d values; assign one name", len(a.Names))
			v = eval.Poison{}
		}
		name := a.Names[0]
		p := dsl.PosOf(file, a.Pos)
		end := p
		end.Col += len(name)
		// A refused assignment still binds the name locally, to Poison, so
		// later uses of it do not report again.
		if _, isWeight := l.weights[name]; isWeight {
			l.ev.ErrorAt(p, end, "pick another name", "cannot assign to '%s': it is a weight", name)
			s.vars[name] = eval.Poison{}
			return false
		}
		if _, isCfg := l.cfg.Lookup(name); isCfg {
			l.ev.ErrorAt(p, end, "pick another name", "cannot assign to '%s': it is a config value", name)
			s.vars[name] = eval.Poison{}
			return false
		}
		if tv, ok := v.(*ir.Value); ok && tv.Name == "" {
			tv.Name = name
		}
		// Assignment binds in the innermost scope that has the name, so a
		// loop body updates the residual stream defined before the loop.
		for c := s; c != nil; c = c.parent {
			if _, ok := c.vars[name]; ok {
				if c.isLoopVar(name) {
					l.ev.ErrorAt(p, end, "", "cannot assign to the loop variable '%s'", name)
					return false
				}
				c.vars[name] = v
				return false
			}
		}
		s.vars[name] = v
	case st.For != nil:
		fs := st.For
		from, ok1 := l.withScopeInt(s, fs.From.Tree(file), "the start of a loop range")
		to, ok2 := l.withScopeInt(s, fs.To.Tree(file), "the end of a loop range")
		if !ok1 || !ok2 {
			return false
		}
		count := eval.RangeLen(from, to)
		if !l.ev.Spent(fs.To.Tree(file), l.ev.Budget.Steps(int64(count)), "the loop %d..%d has %d iterations", from, to, count) {
			return false
		}
		outer := l.depth == 0
		if outer {
			l.layers = int(count)
		}
		l.depth++
		defer func() { l.depth-- }()
		for k := uint64(0); k < count && !l.ev.Budget.Exhausted() && !l.diags.Full(); k++ {
			i := from + int64(k)
			if outer {
				l.layer = int(i)
			}
			inner := &scope{l: l, vars: map[string]any{fs.Var: i}, parent: s, loopVar: fs.Var}
			if l.stmts(fs.Body, inner) {
				l.ev.ErrorAt(dsl.PosOf(file, fs.Pos), diag.Pos{}, "", "return inside a loop")
				return true
			}
		}
		if outer {
			l.layer = -1
		}
	case st.If != nil:
		return l.ifStmt(st.If, s)
	case st.Return != nil:
		t := st.Return.Value.Tree(file)
		v := l.withScope(s, func() any { return l.ev.Eval(t) })
		if l.ret != nil {
			// A user function's return: its value replaces the call.
			*l.ret = v
			return true
		}
		if eval.IsPoison(v) {
			return true
		}
		tv, ok := v.(*ir.Value)
		if !ok || tv.Type.DType != ir.F32 || len(tv.Type.Shape) != 2 {
			l.ev.Errorf(t, "return the logits: a [seq, vocab] tensor", "the forward pass must return a [seq, n] tensor, not %s", l.describe(v))
			return true
		}
		l.f.Output = tv
		return true
	}
	return false
}

func (s *scope) isLoopVar(name string) bool { return s.loopVar == name }

func (l *lowerer) ifStmt(st *dsl.IfStmt, s *scope) bool {
	file := l.file.Name
	cond, ok := false, false
	l.withScope(s, func() any {
		cond, ok = l.ev.Bool(st.Cond.Tree(file), "an if condition")
		return nil
	})
	if !ok {
		return false
	}
	switch {
	case cond:
		return l.stmts(st.Then, s)
	case st.ElseIf != nil:
		return l.ifStmt(st.ElseIf, s)
	default:
		return l.stmts(st.Else, s)
	}
}

func (l *lowerer) withScope(s *scope, fn func() any) any {
	saved := l.ev.Scope
	l.ev.Scope = s
	defer func() { l.ev.Scope = saved }()
	return fn()
}

func (l *lowerer) withScopeInt(s *scope, n dsl.Node, what string) (int64, bool) {
	var v int64
	var ok bool
	l.withScope(s, func() any { v, ok = l.ev.Int(n, what); return nil })
	return v, ok
}

// describe names a value in messages.
func (l *lowerer) describe(v any) string {
	switch x := v.(type) {
	case *ir.Value:
		return fmt.Sprintf("the tensor %s", x.Type)
	case *ir.Weight:
		return fmt.Sprintf("the weight %s (%s%s)", x.Name, x.DType, x.Shape)
	}
	return eval.Describe(v)
}

func (l *lowerer) index(e *eval.Evaluator, n *dsl.Index, x, i any) (any, bool) {
	fam, ok := x.(*family)
	if !ok {
		if _, isT := x.(*ir.Value); isT {
			return e.Errorf(n, "", "tensors cannot be indexed; %s is %s", l.text(n.X), l.describe(x)), true
		}
		return nil, false
	}
	k, ok := i.(int64)
	if !ok {
		return e.Errorf(n.Index, "", "a layer index must be an integer, not %s", eval.Describe(i)), true
	}
	j, fits := eval.CheckedInt("-", k, fam.from)
	if !fits || j < 0 || j >= int64(len(fam.weights)) {
		return e.Errorf(n.Index, "", "%s is declared for layers %d..%d; %d is out of range", fam.name, fam.from, fam.from+int64(len(fam.weights)), k), true
	}
	return fam.weights[j], true
}

func (l *lowerer) binary(e *eval.Evaluator, n *dsl.Binary, lv, rv any) (any, bool) {
	lt, lIsT := lv.(*ir.Value)
	rt, rIsT := rv.(*ir.Value)
	_, rIsW := rv.(*ir.Weight)
	kinds := map[string]ir.OpKind{"+": ir.OpAdd, "-": ir.OpSub, "*": ir.OpMul, "/": ir.OpDiv}
	kind, arith := kinds[n.Op]
	if !arith || (!lIsT && !rIsT) {
		return nil, false
	}
	if lIsT && (rIsT || rIsW) {
		args := []ir.Arg{{V: lt}, argOf(rv)}
		return l.emit(e, n, kind, args, nil, []string{l.text(n.L), l.text(n.R)}), true
	}
	// A tensor and a number: an affine op.
	t, c, tensorLeft := lt, rv, true
	if !lIsT {
		t, c, tensorLeft = rt, lv, false
	}
	num, isNum := eval.Number(c)
	if !isNum {
		return nil, false
	}
	mul, add := 1.0, 0.0
	switch {
	case n.Op == "+":
		add = num
	case n.Op == "-" && tensorLeft:
		add = -num
	case n.Op == "-":
		mul, add = -1, num
	case n.Op == "*":
		mul = num
	case n.Op == "/" && tensorLeft:
		if num == 0 {
			return e.Errorf(n, "", "division by zero"), true
		}
		mul = 1 / num
	default:
		return e.Errorf(n, "", "cannot divide a number by a tensor"), true
	}
	attrs := ir.Attrs{{Key: "mul", Value: mul}, {Key: "add", Value: add}}
	return l.emit(e, n, ir.OpAffine, []ir.Arg{{V: t}}, attrs, []string{l.text(n.L)}), true
}

func (l *lowerer) unary(e *eval.Evaluator, n *dsl.UnaryOp, x any) (any, bool) {
	t, ok := x.(*ir.Value)
	if !ok || n.Op != "-" {
		return nil, false
	}
	attrs := ir.Attrs{{Key: "mul", Value: -1.0}, {Key: "add", Value: 0.0}}
	return l.emit(e, n, ir.OpAffine, []ir.Arg{{V: t}}, attrs, []string{l.text(n.X)}), true
}

func argOf(v any) ir.Arg {
	switch x := v.(type) {
	case *ir.Value:
		return ir.Arg{V: x}
	case *ir.Weight:
		return ir.Arg{W: x}
	}
	return ir.Arg{}
}

// call lowers an op call: operands by position or name, attributes by
// name, then the op's type rule.
func (l *lowerer) call(e *eval.Evaluator, c *dsl.Call) (any, bool) {
	if fn, ok := l.funcs[c.Fn]; ok {
		return l.inline(e, c, fn), true
	}
	def, ok := ir.Lookup(ir.OpKind(c.Fn))
	if !ok || def.Internal || def.Fused {
		return nil, false
	}
	args := make([]ir.Arg, len(def.Inputs))
	given := make([]bool, len(def.Inputs))
	texts := make([]string, len(def.Inputs))
	attrVals := map[string]any{}
	attrNodes := map[string]dsl.Node{}
	poisoned := false
	next := 0
	names := func() []string {
		var out []string
		for _, in := range def.Inputs {
			out = append(out, in.Name)
		}
		for _, a := range def.Attrs {
			out = append(out, a.Name)
		}
		for _, a := range def.Stated {
			out = append(out, a.Name)
		}
		return out
	}
	stated, statedNodes := ir.Attrs{}, map[string]dsl.Node{}
	isStated := func(name string) *ir.AttrDef {
		for i := range def.Stated {
			if def.Stated[i].Name == name {
				return &def.Stated[i]
			}
		}
		return nil
	}
	for _, a := range c.Args {
		idx := -1
		switch {
		case a.Name == "":
			if next >= len(def.Inputs) {
				var ins []string
				for _, in := range def.Inputs {
					ins = append(ins, in.Name)
				}
				hint := ""
				if len(def.Attrs) > 0 {
					hint = fmt.Sprintf("pass attributes by name, e.g. %s=...", def.Attrs[0].Name)
				}
				e.Errorf(a.Value, hint, "%s takes %d operands (%s); this is one too many", def.Name, len(def.Inputs), strings.Join(ins, ", "))
				poisoned = true
				continue
			}
			idx = next
			next++
		case def.InputIndex(a.Name) >= 0:
			idx = def.InputIndex(a.Name)
		case def.HasAttr(a.Name):
			if _, dup := attrVals[a.Name]; dup {
				e.Errorf(a, "", "%s is given twice", a.Name)
				poisoned = true
				continue
			}
			v := e.Eval(a.Value)
			attrVals[a.Name] = v
			attrNodes[a.Name] = a.Value
			poisoned = poisoned || eval.IsPoison(v)
			continue
		case isStated(a.Name) != nil:
			if _, dup := statedNodes[a.Name]; dup {
				e.Errorf(a, "", "%s is given twice", a.Name)
				poisoned = true
				continue
			}
			statedNodes[a.Name] = a.Value
			v := e.Eval(a.Value)
			if eval.IsPoison(v) {
				poisoned = true
				continue
			}
			ad := isStated(a.Name)
			conv, ok := conformAttr(*ad, v)
			if !ok {
				e.Errorf(a.Value, "", "%s: %s must be %s, not %s", def.Name, ad.Name, kindPhrase(*ad), eval.Describe(v))
				poisoned = true
				continue
			}
			stated = append(stated, ir.Attr{Key: ad.Name, Value: conv})
			continue
		default:
			p, _ := a.Span()
			end := p
			end.Col += len(a.Name)
			e.ErrorAt(p, end, diag.DidYouMean(a.Name, names()), "%s has no operand or attribute '%s'", def.Name, a.Name)
			poisoned = true
			continue
		}
		if given[idx] {
			e.Errorf(a, "", "operand %s of %s is given twice", def.Inputs[idx].Name, def.Name)
			poisoned = true
			continue
		}
		given[idx] = true
		v := e.Eval(a.Value)
		texts[idx] = l.text(a.Value)
		arg, ok := l.operand(e, def, idx, a.Value, v)
		if !ok {
			poisoned = true
			continue
		}
		args[idx] = arg
	}
	for i, in := range def.Inputs {
		if !given[i] && !in.Optional {
			e.ErrorAt(c.FnSpan.P, c.FnSpan.E, "", "%s needs its %s operand", def.Name, in.Name)
			poisoned = true
		}
	}
	attrs := make(ir.Attrs, 0, len(def.Attrs))
	for _, ad := range def.Attrs {
		v, ok := attrVals[ad.Name]
		if !ok {
			if ad.Default == nil {
				e.ErrorAt(c.FnSpan.P, c.FnSpan.E, fmt.Sprintf("add %s=... to the call", ad.Name), "%s needs the attribute %s", def.Name, ad.Name)
				poisoned = true
				continue
			}
			v = ad.Default
		} else if eval.IsPoison(v) {
			continue
		} else {
			conv, ok := conformAttr(ad, v)
			if !ok {
				hint := ""
				if len(ad.Enum) > 0 {
					hint = "one of " + strings.Join(quoteAll(ad.Enum), ", ")
					if s, isStr := v.(string); isStr {
						if dm := diag.DidYouMean(s, ad.Enum); dm != "" {
							hint = dm
						}
					}
				}
				e.Errorf(attrNodes[ad.Name], hint, "%s: %s must be %s, not %s", def.Name, ad.Name, kindPhrase(ad), eval.Describe(v))
				poisoned = true
				continue
			}
			v = conv
		}
		attrs = append(attrs, ir.Attr{Key: ad.Name, Value: v})
	}
	if poisoned {
		return eval.Poison{}, true
	}
	res := l.emit(e, c, def.Name, args, attrs, texts)
	if v, ok := res.(*ir.Value); ok && def.CheckStated != nil {
		describe := func(i int) string {
			if texts[i] != "" {
				if w := args[i].W; w != nil {
					return fmt.Sprintf("%s (%s)", texts[i], w.Name)
				}
				return texts[i]
			}
			return def.Inputs[i].Name
		}
		if err := def.CheckStated(v.Def, stated, describe); err != nil {
			return e.Errorf(c, "", "%s: %v", def.Name, err), true
		}
	}
	return res, true
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

func kindPhrase(ad ir.AttrDef) string {
	switch ad.Kind {
	case ir.IntAttr:
		return fmt.Sprintf("an int between %d and %d", -maxIntAttr, maxIntAttr)
	case ir.FloatAttr:
		return "a number"
	case ir.BoolAttr:
		return "true or false"
	}
	if len(ad.Enum) > 0 {
		return "one of " + strings.Join(quoteAll(ad.Enum), ", ")
	}
	return "a string"
}

// maxIntAttr bounds int attributes. Type rules multiply them
// (heads * head_dim must equal q's width): within this bound a product of
// two is exact, so a huge attribute cannot wrap around to a width that
// matches.
const maxIntAttr = 1<<31 - 1

func conformAttr(ad ir.AttrDef, v any) (any, bool) {
	switch ad.Kind {
	case ir.IntAttr:
		i, ok := v.(int64)
		return i, ok && -maxIntAttr <= i && i <= maxIntAttr
	case ir.FloatAttr:
		f, ok := eval.Number(v)
		if ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, false
		}
		return f, ok
	case ir.BoolAttr:
		b, ok := v.(bool)
		return b, ok
	case ir.StringAttr:
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		if len(ad.Enum) == 0 {
			return s, true
		}
		for _, e := range ad.Enum {
			if e == s {
				return s, true
			}
		}
	}
	return nil, false
}

// operand checks one operand against the op's input definition.
func (l *lowerer) operand(e *eval.Evaluator, def *ir.OpDef, idx int, n dsl.Node, v any) (ir.Arg, bool) {
	in := def.Inputs[idx]
	if eval.IsPoison(v) {
		return ir.Arg{}, false
	}
	switch x := v.(type) {
	case *ir.Value:
		if in.Kind == ir.WeightIn {
			e.Errorf(n, "declare it in the weights block", "%s: operand %s must be a weight, but %s is an activation", def.Name, in.Name, l.text(n))
			return ir.Arg{}, false
		}
		return ir.Arg{V: x}, true
	case *ir.Weight:
		if in.Kind == ir.TensorIn {
			e.Errorf(n, "", "%s: operand %s must be an activation, but %s is a weight", def.Name, in.Name, l.text(n))
			return ir.Arg{}, false
		}
		return ir.Arg{W: x}, true
	case absent:
		if in.Optional {
			return ir.Arg{}, true
		}
		e.Errorf(n, "", "%s: %s is absent in this configuration (%s), but %s needs its %s operand", def.Name, x.name, x.why, def.Name, in.Name)
		return ir.Arg{}, false
	case nil:
		if in.Optional {
			return ir.Arg{}, true
		}
		e.Errorf(n, "", "%s needs its %s operand; it cannot be none", def.Name, in.Name)
		return ir.Arg{}, false
	case *family:
		e.Errorf(n, fmt.Sprintf("write %s[i]", x.name), "%s is declared per layer: index it with the layer", x.name)
		return ir.Arg{}, false
	}
	e.Errorf(n, "", "%s: operand %s must be a tensor, not %s", def.Name, in.Name, eval.Describe(v))
	return ir.Arg{}, false
}

// emit appends an op after running its type rule.
func (l *lowerer) emit(e *eval.Evaluator, at dsl.Node, kind ir.OpKind, args []ir.Arg, attrs ir.Attrs, texts []string) any {
	def, _ := ir.Lookup(kind)
	pos, end := at.Span()
	op := &ir.Op{Kind: kind, Args: args, Attrs: attrs, Layer: l.layer, Pos: ir.Pos(pos), End: ir.Pos(end)}
	describe := func(i int) string {
		if i < len(texts) && texts[i] != "" {
			if w := args[i].W; w != nil {
				return fmt.Sprintf("%s (%s)", texts[i], w.Name)
			}
			return texts[i]
		}
		return def.Inputs[i].Name
	}
	types, err := def.Infer(op, describe)
	if err != nil {
		return e.Errorf(at, "", "%s: %v", kind, err)
	}
	if !e.Spent(at, e.Budget.Unrolled(1), "unrolling adds this op") {
		return eval.Poison{}
	}
	for _, t := range types {
		r := l.f.NewValue(t, "")
		r.Def = op
		op.Results = append(op.Results, r)
	}
	l.f.Ops = append(l.f.Ops, op)
	return op.Results[0]
}

// declareFuncs collects the file's user functions. A function may not take
// the name of an op, a built-in, a weight or a config value, nor be
// declared twice.
func (l *lowerer) declareFuncs() {
	l.funcs = map[string]*dsl.FuncDecl{}
	for _, b := range l.file.Blocks {
		fn := b.Def
		if fn == nil {
			continue
		}
		p := dsl.PosOf(l.file.Name, fn.Pos)
		p.Col += len("def ")
		p.Offset += len("def ")
		end := p
		end.Col += len(fn.Name)
		end.Offset += len(fn.Name)
		_, isOp := ir.Lookup(ir.OpKind(fn.Name))
		_, isWeight := l.weights[fn.Name]
		_, isCfg := l.cfg.Lookup(fn.Name)
		switch {
		case l.funcs[fn.Name] != nil:
			l.ev.ErrorAt(p, end, "rename one of them", "function '%s' is defined twice", fn.Name)
		case isOp || slices.Contains(eval.Builtins, fn.Name):
			l.ev.ErrorAt(p, end, "rename the function", "function '%s' has the name of a built-in op or function", fn.Name)
		case isWeight || isCfg:
			l.ev.ErrorAt(p, end, "rename the function", "function '%s' has the name of a weight or config value", fn.Name)
		default:
			seen := map[string]bool{}
			for _, prm := range fn.Params {
				if seen[prm] {
					l.ev.ErrorAt(p, end, "", "function '%s' has two parameters named '%s'", fn.Name, prm)
				}
				seen[prm] = true
			}
			l.funcs[fn.Name] = fn
		}
	}
}

// inline runs a user function's body in a scope of its own, over its
// arguments and the file's weights and config (not the caller's names),
// and returns what it returns. The ops it makes belong to the caller's
// layer. A function that calls itself, directly or not, is refused: the
// body is unrolled at compile time, so recursion would never end.
func (l *lowerer) inline(e *eval.Evaluator, c *dsl.Call, fn *dsl.FuncDecl) any {
	if i := slices.Index(l.calling, fn.Name); i >= 0 {
		chain := strings.Join(append(append([]string{}, l.calling[i:]...), fn.Name), " -> ")
		return e.ErrorAt(c.FnSpan.P, c.FnSpan.E, "functions are inlined at compile time; repeat work with a for loop instead",
			"recursive call of '%s' (%s)", fn.Name, chain)
	}
	vars := map[string]any{}
	poisoned := false
	next := 0
	for _, a := range c.Args {
		name := a.Name
		if name == "" {
			if next >= len(fn.Params) {
				e.Errorf(a.Value, "", "%s takes %d arguments (%s); this is one too many", fn.Name, len(fn.Params), strings.Join(fn.Params, ", "))
				poisoned = true
				continue
			}
			name = fn.Params[next]
			next++
		} else if !slices.Contains(fn.Params, name) {
			p, _ := a.Span()
			end := p
			end.Col += len(name)
			e.ErrorAt(p, end, diag.DidYouMean(name, fn.Params), "%s has no parameter '%s'", fn.Name, name)
			poisoned = true
			continue
		}
		if _, dup := vars[name]; dup {
			e.Errorf(a, "", "argument %s of %s is given twice", name, fn.Name)
			poisoned = true
			continue
		}
		v := e.Eval(a.Value)
		poisoned = poisoned || eval.IsPoison(v)
		vars[name] = v
	}
	for _, prm := range fn.Params {
		if _, ok := vars[prm]; !ok && !poisoned {
			e.ErrorAt(c.FnSpan.P, c.FnSpan.E, "", "%s needs its argument %s", fn.Name, prm)
			poisoned = true
		}
	}
	if poisoned {
		return eval.Poison{}
	}
	var result any
	savedRet, savedScope := l.ret, l.ev.Scope
	l.ret, l.calling = &result, append(l.calling, fn.Name)
	returned := l.stmts(fn.Body, &scope{l: l, vars: vars})
	l.ret, l.calling, l.ev.Scope = savedRet, l.calling[:len(l.calling)-1], savedScope
	if !returned {
		p := dsl.PosOf(l.file.Name, fn.Pos)
		return e.ErrorAt(p, diag.Pos{}, "end it with `return expr`", "function '%s' does not return a value", fn.Name)
	}
	if result == nil {
		return eval.Poison{}
	}
	return result
}
