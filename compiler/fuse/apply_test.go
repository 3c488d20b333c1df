package fuse

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// TestApplyMatchesReference checks Apply against the algorithm it
// replaced (below): a scan of every op for each match's legality and a
// compaction of the op list after each replacement. That version was
// quadratic in the ops but simple to trust. On random programs whose
// values are read many times, before and after the ops that could fuse
// them (what legality is about), both must fuse the same ops into the
// same program, and the program must verify. (This test found that both
// fused `y = linear(x, w); y + y` into a linear_add that reads its own
// result; the reference has the same fix, marked.)
func TestApplyMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for n := 0; n < 300; n++ {
		src := randomProgram(rng, 4+rng.Intn(40))
		a, err := ir.Parse(src)
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		b, _ := ir.Parse(src)
		firedA := Apply(a, Rules)
		firedB := applyReference(b, Rules)
		if got, want := ir.Print(a), ir.Print(b); got != want || fmt.Sprint(firedA) != fmt.Sprint(firedB) {
			t.Fatalf("program:\n%s\nApply (%v):\n%s\nreference (%v):\n%s", src, firedA, got, firedB, want)
		}
		if err := ir.Verify(a); err != nil {
			t.Fatalf("%v\n%s", err, ir.Print(a))
		}
	}
}

// randomProgram writes IR text of ops the rules match (rmsnorm, linear,
// add, silu, mul), each reading random earlier values.
func randomProgram(rng *rand.Rand, ops int) string {
	var b strings.Builder
	b.WriteString("model \"t\"\nweight @e f32[16, 64] \"e\"\nweight @n f32[64] \"n\"\nweight @w f32[64, 64] \"w\"\n\n")
	b.WriteString("func forward(%0: i32[seq]) -> f32[seq, 64] {\n  %1 = embedding @e, %0 : f32[seq, 64]\n")
	pick := func(last int) int {
		// Mostly recent values, so that patterns form; sometimes any.
		if rng.Intn(3) > 0 && last > 1 {
			return last - rng.Intn(min(last, 3))
		}
		return 1 + rng.Intn(last)
	}
	for i := 2; i < ops+2; i++ {
		x, y := pick(i-1), pick(i-1)
		switch rng.Intn(5) {
		case 0:
			fmt.Fprintf(&b, "  %%%d = rmsnorm %%%d, @n {eps=1e-05, offset=0.0} : f32[seq, 64]\n", i, x)
		case 1:
			fmt.Fprintf(&b, "  %%%d = linear %%%d, @w, _ : f32[seq, 64]\n", i, x)
		case 2:
			fmt.Fprintf(&b, "  %%%d = add %%%d, %%%d : f32[seq, 64]\n", i, x, y)
		case 3:
			fmt.Fprintf(&b, "  %%%d = silu %%%d : f32[seq, 64]\n", i, x)
		default:
			fmt.Fprintf(&b, "  %%%d = mul %%%d, %%%d : f32[seq, 64]\n", i, x, y)
		}
	}
	// The output is the last value or, sometimes, one inside a pattern.
	fmt.Fprintf(&b, "  return %%%d\n}\n", ops+1-rng.Intn(2))
	return b.String()
}

// applyReference is Apply as it was before it indexed the ops.
func applyReference(f *ir.Func, rules []*Rule) map[string]int {
	fired := map[string]int{}
	for _, r := range rules {
		for i := 0; i < len(f.Ops); i++ {
			op := f.Ops[i]
			if op.Kind != r.Pattern.Op {
				continue
			}
			m := matchOp(r.Pattern, op, &match{vars: map[string]ir.Arg{}, named: map[string]*ir.Op{}, exp: map[*ir.Op]bool{}})
			if m == nil || !fits(r, m) || !legalReference(f, m) {
				continue
			}
			i = replaceReference(f, r, m)
			fired[r.Name]++
		}
	}
	f.Renumber()
	return fired
}

func legalReference(f *ir.Func, m *match) bool {
	root := m.ops[0]
	inside := make(map[*ir.Op]bool, len(m.ops))
	for _, op := range m.ops {
		inside[op] = true
	}
	// The fix: an operand must come from outside the match.
	for _, a := range m.vars {
		if a.V != nil && inside[a.V.Def] {
			return false
		}
	}
	owner := map[*ir.Value]*ir.Op{}
	for _, op := range m.ops[1:] {
		for _, r := range op.Results {
			owner[r] = op
		}
	}
	if o, ok := owner[f.Output]; ok && !m.exp[o] {
		return false
	}
	beforeRoot := true
	for _, op := range f.Ops {
		if op == root {
			beforeRoot = false
		}
		if inside[op] {
			continue
		}
		for _, a := range op.Args {
			o, ok := owner[a.V]
			if !ok || a.V == nil {
				continue
			}
			// A read from outside the match: allowed only for an exported
			// value, and only after the fused op will have produced it.
			if !m.exp[o] || beforeRoot {
				return false
			}
		}
	}
	return true
}

func replaceReference(f *ir.Func, r *Rule, m *match) int {
	root := m.ops[0]
	fused := &ir.Op{Kind: r.Kind, Layer: root.Layer, Pos: root.Pos, End: root.End}
	params := map[*ir.Value]*ir.Value{}
	// The operands in the registry's order; an optional input the rule
	// does not bind stays absent.
	for _, in := range ir.MustLookup(r.Kind).Inputs {
		a := m.vars[in.Name]
		if a.V != nil {
			if _, dup := params[a.V]; !dup {
				params[a.V] = &ir.Value{Type: a.V.Type, Name: a.V.Name, Param: len(fused.Args)}
			}
		}
		fused.Args = append(fused.Args, a)
	}
	// The body: matched ops in program order, over the parameters.
	inside := make(map[*ir.Op]bool, len(m.ops))
	for _, op := range m.ops {
		inside[op] = true
	}
	ordered := make([]*ir.Op, 0, len(m.ops))
	for _, op := range f.Ops {
		if inside[op] {
			ordered = append(ordered, op)
		}
	}
	clones := map[*ir.Value]*ir.Value{}
	for _, op := range ordered {
		c := &ir.Op{Kind: op.Kind, Attrs: append(ir.Attrs(nil), op.Attrs...), Layer: op.Layer, Pos: op.Pos, End: op.End}
		for _, a := range op.Args {
			switch {
			case a.V != nil && clones[a.V] != nil:
				c.Args = append(c.Args, ir.Arg{V: clones[a.V]})
			case a.V != nil:
				p, ok := params[a.V]
				if !ok {
					panic(fmt.Sprintf("BUG: rule %s: an operand of %s is neither a variable nor inside the match", r.Name, op.Kind))
				}
				c.Args = append(c.Args, ir.Arg{V: p})
			default:
				c.Args = append(c.Args, a)
			}
		}
		for _, res := range op.Results {
			v := &ir.Value{Type: res.Type, Name: res.Name, Def: c, Param: -1}
			clones[res] = v
			c.Results = append(c.Results, v)
		}
		fused.Body = append(fused.Body, c)
	}
	// Results: the root's, then exported values in pattern order.
	out := append([]*ir.Op{root}, exported(m)...)
	for _, op := range out {
		for _, res := range op.Results {
			res.Def = fused
			fused.Results = append(fused.Results, res)
			fused.Yield = append(fused.Yield, clones[res])
		}
	}
	// Compact in place: the fused op takes the root's place.
	ops := f.Ops[:0]
	at := 0
	for _, op := range f.Ops {
		switch {
		case op == root:
			at = len(ops)
			ops = append(ops, fused)
		case inside[op]:
		default:
			ops = append(ops, op)
		}
	}
	f.Ops = ops
	return at
}
