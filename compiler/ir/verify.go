package ir

import (
	"fmt"
	"strings"
)

// Verify checks the invariants every pass must keep:
//   - each value is defined once, before its uses, and the output is defined;
//   - each op is a known kind whose operands and attributes fit its
//     definition, and whose result types are what its type rule infers;
//   - a fused op's body is itself well formed over its parameters and
//     yields values of the op's result types;
//   - every weight an op reads is declared.
//
// Verify returns every problem it finds, one per line.
func Verify(f *Func) error {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	defined := map[*Value]bool{f.Input: true}
	declared := map[*Weight]bool{}
	for _, w := range f.Weights {
		if declared[w] {
			fail("weight %s declared twice", w.Ref())
		}
		declared[w] = true
		if w.DType == MXFP4 && w.Shape.Last()%32 != 0 {
			fail("weight %s: an mxfp4 weight's last dimension must be a multiple of 32, not %d", w.Ref(), w.Shape.Last())
		}
	}
	for i, op := range f.Ops {
		where := fmt.Sprintf("op %d (%s)", i, op.Kind)
		for j, a := range op.Args {
			if a.V != nil && !defined[a.V] {
				fail("%s: operand %d (%s) is used before it is defined", where, j, a.V.Ref())
			}
			if a.W != nil && !declared[a.W] {
				fail("%s: operand %d reads undeclared weight %s", where, j, a.W.Ref())
			}
		}
		for _, msg := range verifyOp(op) {
			fail("%s: %s", where, msg)
		}
		for _, r := range op.Results {
			if defined[r] {
				fail("%s: result %s is defined twice", where, r.Ref())
			}
			if r.Def != op {
				fail("%s: result %s does not point back to its op", where, r.Ref())
			}
			defined[r] = true
		}
	}
	if f.Output == nil || !defined[f.Output] {
		fail("the function's output is not defined")
	}
	if len(errs) > 0 {
		return fmt.Errorf("BUG: invalid IR:\n  %s", strings.Join(errs, "\n  "))
	}
	return nil
}

// verifyOp checks one op against its definition.
func verifyOp(op *Op) []string {
	def, ok := Lookup(op.Kind)
	if !ok {
		return []string{"unknown op kind"}
	}
	if len(op.Args) != len(def.Inputs) {
		return []string{fmt.Sprintf("has %d operands, %s takes %d", len(op.Args), op.Kind, len(def.Inputs))}
	}
	var errs []string
	for i, in := range def.Inputs {
		a := op.Args[i]
		switch {
		case a.IsNone() && !in.Optional:
			errs = append(errs, fmt.Sprintf("operand %s is required", in.Name))
		case a.V != nil && in.Kind == WeightIn:
			errs = append(errs, fmt.Sprintf("operand %s must be a weight", in.Name))
		case a.W != nil && in.Kind == TensorIn:
			errs = append(errs, fmt.Sprintf("operand %s must be an activation", in.Name))
		}
	}
	switch {
	case def.Fused:
		// A fused op's attributes and types are its body's.
	case len(op.Attrs) != len(def.Attrs):
		errs = append(errs, fmt.Sprintf("has %d attributes, %s takes %d", len(op.Attrs), op.Kind, len(def.Attrs)))
	default:
		for i, ad := range def.Attrs {
			a := op.Attrs[i]
			if a.Key != ad.Name {
				errs = append(errs, fmt.Sprintf("attribute %d is %s, expected %s", i, a.Key, ad.Name))
				continue
			}
			if !attrFits(ad, a.Value) {
				errs = append(errs, fmt.Sprintf("attribute %s=%v is not a valid %s", a.Key, a.Value, ad.Kind))
			}
		}
	}
	if def.Fused {
		return append(errs, verifyFused(op)...)
	}
	if len(errs) > 0 {
		return errs
	}
	types, err := def.Infer(op, func(i int) string { return op.Args[i].Ref() })
	if err != nil {
		return []string{err.Error()}
	}
	if len(types) != len(op.Results) {
		return []string{fmt.Sprintf("has %d results, its type rule gives %d", len(op.Results), len(types))}
	}
	for i, t := range types {
		if !op.Results[i].Type.Equal(t) {
			errs = append(errs, fmt.Sprintf("result %d is %s, its type rule gives %s", i, op.Results[i].Type, t))
		}
	}
	return errs
}

func attrFits(d AttrDef, v any) bool {
	switch d.Kind {
	case IntAttr:
		_, ok := v.(int64)
		return ok
	case FloatAttr:
		_, ok := v.(float64)
		return ok
	case BoolAttr:
		_, ok := v.(bool)
		return ok
	case StringAttr:
		s, ok := v.(string)
		if !ok {
			return false
		}
		if len(d.Enum) == 0 {
			return true
		}
		for _, e := range d.Enum {
			if e == s {
				return true
			}
		}
	}
	return false
}

// verifyFused checks a fused op's body.
func verifyFused(op *Op) []string {
	var errs []string
	if len(op.Body) == 0 {
		return []string{"a fused op needs a body"}
	}
	defined := map[*Value]bool{}
	for _, bop := range op.Body {
		for j, a := range bop.Args {
			if a.V == nil {
				continue
			}
			if a.V.Param >= 0 {
				if a.V.Param >= len(op.Args) || op.Args[a.V.Param].V == nil || !op.Args[a.V.Param].V.Type.Equal(a.V.Type) {
					errs = append(errs, fmt.Sprintf("body %s: operand %d is parameter $%d, which does not match the op's operands", bop.Kind, j, a.V.Param))
				}
				continue
			}
			if !defined[a.V] {
				errs = append(errs, fmt.Sprintf("body %s: operand %d is used before it is defined", bop.Kind, j))
			}
		}
		if d, ok := Lookup(bop.Kind); ok && d.Fused {
			errs = append(errs, fmt.Sprintf("body op %s is itself fused: bodies hold base ops", bop.Kind))
		}
		for _, msg := range verifyOp(bop) {
			errs = append(errs, "body "+string(bop.Kind)+": "+msg)
		}
		for _, r := range bop.Results {
			defined[r] = true
		}
	}
	if len(op.Yield) != len(op.Results) {
		return append(errs, fmt.Sprintf("yields %d values for %d results", len(op.Yield), len(op.Results)))
	}
	for i, y := range op.Yield {
		if !defined[y] {
			errs = append(errs, fmt.Sprintf("yield %d is not a body value", i))
		} else if !y.Type.Equal(op.Results[i].Type) {
			errs = append(errs, fmt.Sprintf("result %d is %s but the body yields %s", i, op.Results[i].Type, y.Type))
		}
	}
	return errs
}
