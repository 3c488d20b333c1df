// Package eval evaluates .arch expressions at compile time: arithmetic on
// integers and floats, comparisons, booleans, strings, lists and list
// comprehensions, conditionals, and a few built-in functions. The config,
// the weight declarations and the forward pass all use it; the forward pass
// adds tensor-valued calls through a hook.
//
// Values are int64, float64, bool, string, []any, nil (none), or whatever a
// hook returns. An expression that fails reports one diagnostic and
// evaluates to Poison, which every later operation passes through silently,
// so one mistake gives one message.
package eval

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/minerva-ml/minerva/dsl"
	"github.com/minerva-ml/minerva/dsl/diag"
)

// Poison is the value of an expression that already produced an error.
type Poison struct{}

// IsPoison reports whether v is Poison.
func IsPoison(v any) bool { _, ok := v.(Poison); return ok }

// Scope resolves names. Lookup returns the value and whether it exists.
type Scope interface {
	Lookup(name string) (any, bool)
	// Names lists every visible name, for "did you mean" hints.
	Names() []string
}

// MapScope is a scope over a map with an optional parent.
type MapScope struct {
	Vars   map[string]any
	Parent Scope
}

// Lookup implements Scope.
func (s *MapScope) Lookup(name string) (any, bool) {
	if v, ok := s.Vars[name]; ok {
		return v, true
	}
	if s.Parent != nil {
		return s.Parent.Lookup(name)
	}
	return nil, false
}

// Names implements Scope.
func (s *MapScope) Names() []string {
	var out []string
	for n := range s.Vars {
		out = append(out, n)
	}
	if s.Parent != nil {
		out = append(out, s.Parent.Names()...)
	}
	sort.Strings(out)
	return out
}

// Hooks extend the evaluator for the forward pass.
type Hooks struct {
	// Call evaluates a call that is not a built-in function. handled is
	// false when the name is not known to the hook.
	Call func(e *Evaluator, c *dsl.Call) (v any, handled bool)
	// Index evaluates x[i] for values the evaluator does not know.
	Index func(e *Evaluator, n *dsl.Index, x, i any) (v any, handled bool)
	// Binary evaluates operators on values the evaluator does not know.
	Binary func(e *Evaluator, n *dsl.Binary, l, r any) (v any, handled bool)
	// Unary evaluates prefix operators on values the evaluator does not know.
	Unary func(e *Evaluator, n *dsl.UnaryOp, x any) (v any, handled bool)
	// CallNames lists the names Call handles, for hints.
	CallNames []string
	// CallKind is what the hook's callees are called in messages ("op").
	CallKind string
}

// Evaluator evaluates expressions in a scope and reports to Diags.
type Evaluator struct {
	Diags *diag.List
	Scope Scope
	Hooks Hooks
	// reported holds positions that already have a diagnostic: a mistake
	// inside a loop body is evaluated once per iteration but reported once.
	reported map[diag.Pos]bool
}

// New creates an evaluator.
func New(d *diag.List, s Scope) *Evaluator {
	return &Evaluator{Diags: d, Scope: s, reported: map[diag.Pos]bool{}}
}

// Errorf reports a diagnostic spanning n (once per position) and returns Poison.
func (e *Evaluator) Errorf(n dsl.Node, hint, format string, args ...any) Poison {
	p, end := n.Span()
	return e.ErrorAt(p, end, hint, format, args...)
}

// ErrorAt reports a diagnostic at a span (once per position) and returns Poison.
func (e *Evaluator) ErrorAt(p, end diag.Pos, hint, format string, args ...any) Poison {
	if e.reported == nil {
		e.reported = map[diag.Pos]bool{}
	}
	if !e.reported[p] {
		e.reported[p] = true
		e.Diags.Errorf(p, end, hint, format, args...)
	}
	return Poison{}
}

// Builtins are the functions every expression may call.
var Builtins = []string{"len", "min", "max", "int", "float", "sqrt"}

// Eval evaluates a node.
func (e *Evaluator) Eval(n dsl.Node) any {
	switch n := n.(type) {
	case *dsl.Lit:
		return n.Value
	case *dsl.Name:
		v, ok := e.Scope.Lookup(n.Name)
		if !ok {
			return e.Errorf(n, diag.DidYouMean(n.Name, e.Scope.Names()), "unknown name '%s'", n.Name)
		}
		return v
	case *dsl.UnaryOp:
		return e.unary(n)
	case *dsl.Binary:
		return e.binary(n)
	case *dsl.Cond:
		c := e.Eval(n.C)
		if IsPoison(c) {
			return c
		}
		b, ok := c.(bool)
		if !ok {
			return e.Errorf(n.C, "", "the condition of if-then-else must be true or false, not %s", Describe(c))
		}
		if b {
			return e.Eval(n.Then)
		}
		return e.Eval(n.Else)
	case *dsl.List:
		out := make([]any, 0, len(n.Elems))
		for _, x := range n.Elems {
			v := e.Eval(x)
			if IsPoison(v) {
				return v
			}
			out = append(out, v)
		}
		return out
	case *dsl.Comprehension:
		return e.comprehension(n)
	case *dsl.Index:
		return e.index(n)
	case *dsl.Field:
		return e.Errorf(n, "", "values have no fields ('.%s')", n.Name)
	case *dsl.Call:
		return e.call(n)
	}
	panic(fmt.Sprintf("BUG: unknown node %T", n))
}

// Int evaluates n and requires an integer.
func (e *Evaluator) Int(n dsl.Node, what string) (int64, bool) {
	v := e.Eval(n)
	if IsPoison(v) {
		return 0, false
	}
	i, ok := v.(int64)
	if !ok {
		e.Errorf(n, "", "%s must be an integer, not %s", what, Describe(v))
		return 0, false
	}
	return i, true
}

// Bool evaluates n and requires a boolean.
func (e *Evaluator) Bool(n dsl.Node, what string) (bool, bool) {
	v := e.Eval(n)
	if IsPoison(v) {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		e.Errorf(n, "", "%s must be true or false, not %s", what, Describe(v))
		return false, false
	}
	return b, true
}

func (e *Evaluator) comprehension(n *dsl.Comprehension) any {
	from, ok1 := e.Int(n.From, "the start of a range")
	to, ok2 := e.Int(n.To, "the end of a range")
	if !ok1 || !ok2 {
		return Poison{}
	}
	if to-from > 1<<20 {
		return e.Errorf(n, "", "the range %d..%d is too long", from, to)
	}
	saved := e.Scope
	defer func() { e.Scope = saved }()
	out := []any{}
	for i := from; i < to; i++ {
		e.Scope = &MapScope{Vars: map[string]any{n.Var: i}, Parent: saved}
		v := e.Eval(n.Elem)
		if IsPoison(v) {
			return v
		}
		out = append(out, v)
	}
	return out
}

func (e *Evaluator) index(n *dsl.Index) any {
	x := e.Eval(n.X)
	i := e.Eval(n.Index)
	if IsPoison(x) || IsPoison(i) {
		return Poison{}
	}
	if e.Hooks.Index != nil {
		if v, ok := e.Hooks.Index(e, n, x, i); ok {
			return v
		}
	}
	list, ok := x.([]any)
	if !ok {
		return e.Errorf(n, "", "cannot index %s", Describe(x))
	}
	k, ok := i.(int64)
	if !ok {
		return e.Errorf(n.Index, "", "an index must be an integer, not %s", Describe(i))
	}
	if k < 0 || k >= int64(len(list)) {
		return e.Errorf(n.Index, "", "index %d is out of range: the list has %d elements", k, len(list))
	}
	return list[k]
}

func (e *Evaluator) unary(n *dsl.UnaryOp) any {
	x := e.Eval(n.X)
	if IsPoison(x) {
		return x
	}
	switch n.Op {
	case "-":
		switch v := x.(type) {
		case int64:
			return -v
		case float64:
			return -v
		}
	case "not":
		if b, ok := x.(bool); ok {
			return !b
		}
	}
	if e.Hooks.Unary != nil {
		if v, ok := e.Hooks.Unary(e, n, x); ok {
			return v
		}
	}
	return e.Errorf(n, "", "cannot apply '%s' to %s", n.Op, Describe(x))
}

func (e *Evaluator) binary(n *dsl.Binary) any {
	// and/or short-circuit, so `a and b` can guard b.
	if n.Op == "and" || n.Op == "or" {
		l, ok := e.Bool(n.L, fmt.Sprintf("the left side of '%s'", n.Op))
		if !ok {
			return Poison{}
		}
		if (n.Op == "and" && !l) || (n.Op == "or" && l) {
			return l
		}
		r, ok := e.Bool(n.R, fmt.Sprintf("the right side of '%s'", n.Op))
		if !ok {
			return Poison{}
		}
		return r
	}
	l, r := e.Eval(n.L), e.Eval(n.R)
	if IsPoison(l) || IsPoison(r) {
		return Poison{}
	}
	if v, ok := e.arith(n, l, r); ok {
		return v
	}
	if e.Hooks.Binary != nil {
		if v, ok := e.Hooks.Binary(e, n, l, r); ok {
			return v
		}
	}
	return e.Errorf(n, "", "cannot apply '%s' to %s and %s", n.Op, Describe(l), Describe(r))
}

// arith evaluates operators on scalars, strings and lists.
func (e *Evaluator) arith(n *dsl.Binary, l, r any) (any, bool) {
	switch n.Op {
	case "==", "!=":
		eq, ok := equal(l, r)
		if !ok {
			return nil, false
		}
		return eq == (n.Op == "=="), true
	case "in", "notin": // `not in` is captured as one word
		list, ok := r.([]any)
		if !ok {
			return e.Errorf(n.R, "write `x in [a, b]` or `x in some_list`", "'in' needs a list on its right, not %s", Describe(r)), true
		}
		for _, x := range list {
			if eq, ok := equal(l, x); ok && eq {
				return n.Op == "in", true
			}
		}
		return n.Op == "notin", true
	}
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	if lInt && rInt {
		switch n.Op {
		case "+":
			return li + ri, true
		case "-":
			return li - ri, true
		case "*":
			return li * ri, true
		case "/", "%":
			if ri == 0 {
				return e.Errorf(n, "", "division by zero (%d %s 0)", li, n.Op), true
			}
			if n.Op == "%" {
				return li % ri, true
			}
			if li%ri != 0 {
				return e.Errorf(n, "write float(a) / b for a fractional result", "%d / %d is not a whole number", li, ri), true
			}
			return li / ri, true
		case "<":
			return li < ri, true
		case "<=":
			return li <= ri, true
		case ">":
			return li > ri, true
		case ">=":
			return li >= ri, true
		}
		return nil, false
	}
	lf, lNum := Number(l)
	rf, rNum := Number(r)
	if lNum && rNum {
		switch n.Op {
		case "+":
			return lf + rf, true
		case "-":
			return lf - rf, true
		case "*":
			return lf * rf, true
		case "/":
			if rf == 0 {
				return e.Errorf(n, "", "division by zero"), true
			}
			return lf / rf, true
		case "<":
			return lf < rf, true
		case "<=":
			return lf <= rf, true
		case ">":
			return lf > rf, true
		case ">=":
			return lf >= rf, true
		}
		return nil, false
	}
	if ls, ok := l.(string); ok {
		if rs, ok := r.(string); ok && n.Op == "+" {
			return ls + rs, true
		}
	}
	if ll, ok := l.([]any); ok {
		switch rr := r.(type) {
		case []any:
			if n.Op == "+" {
				return append(append([]any{}, ll...), rr...), true
			}
		case int64:
			if n.Op == "*" {
				if rr < 0 || rr*int64(len(ll)) > 1<<20 {
					return e.Errorf(n, "", "cannot repeat a list %d times", rr), true
				}
				out := []any{}
				for k := int64(0); k < rr; k++ {
					out = append(out, ll...)
				}
				return out, true
			}
		}
	}
	return nil, false
}

// Number returns a compile-time value as a float when it is numeric
// (int64 or float64), so that callers can mix the two as the language does.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// equal compares scalars, strings and lists; ok is false for values it
// cannot compare.
func equal(l, r any) (eq, ok bool) {
	if lf, ok1 := Number(l); ok1 {
		if rf, ok2 := Number(r); ok2 {
			return lf == rf, true
		}
	}
	switch x := l.(type) {
	case string:
		if y, ok := r.(string); ok {
			return x == y, true
		}
	case bool:
		if y, ok := r.(bool); ok {
			return x == y, true
		}
	case nil:
		return r == nil, true
	case []any:
		y, ok := r.([]any)
		if !ok {
			return false, false
		}
		if len(x) != len(y) {
			return false, true
		}
		for i := range x {
			eq, ok := equal(x[i], y[i])
			if !ok || !eq {
				return false, ok
			}
		}
		return true, true
	}
	if r == nil {
		return false, true
	}
	return false, false
}

func (e *Evaluator) call(n *dsl.Call) any {
	switch n.Fn {
	case "len", "int", "float", "sqrt":
		if len(n.Args) != 1 || n.Args[0].Name != "" {
			return e.Errorf(n, "", "%s takes one argument", n.Fn)
		}
		v := e.Eval(n.Args[0].Value)
		if IsPoison(v) {
			return v
		}
		switch n.Fn {
		case "len":
			switch x := v.(type) {
			case []any:
				return int64(len(x))
			case string:
				return int64(len(x))
			}
		case "int":
			switch x := v.(type) {
			case int64:
				return x
			case float64:
				if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
					return e.Errorf(n, "", "int(%g) is not a whole number", x)
				}
				return int64(x)
			}
		case "float":
			if f, ok := Number(v); ok {
				return f
			}
		case "sqrt":
			if f, ok := Number(v); ok && f >= 0 {
				return math.Sqrt(f)
			}
		}
		return e.Errorf(n, "", "%s cannot take %s", n.Fn, Describe(v))
	case "min", "max":
		if len(n.Args) < 2 {
			return e.Errorf(n, "", "%s takes two or more arguments", n.Fn)
		}
		var best any
		for _, a := range n.Args {
			v := e.Eval(a.Value)
			if IsPoison(v) {
				return v
			}
			if _, ok := Number(v); !ok {
				return e.Errorf(a.Value, "", "%s takes numbers, not %s", n.Fn, Describe(v))
			}
			if best == nil {
				best = v
				continue
			}
			bf, _ := Number(best)
			vf, _ := Number(v)
			if (n.Fn == "min" && vf < bf) || (n.Fn == "max" && vf > bf) {
				best = v
			}
		}
		return best
	}
	if e.Hooks.Call != nil {
		if v, ok := e.Hooks.Call(e, n); ok {
			return v
		}
	}
	if n.Fn == "" {
		return e.Errorf(n, "", "only functions and ops can be called")
	}
	p, end := n.FnSpan.Span()
	kind := "function"
	if e.Hooks.CallKind != "" {
		kind = e.Hooks.CallKind
	}
	return e.ErrorAt(p, end, diag.DidYouMean(n.Fn, append(append([]string{}, Builtins...), e.Hooks.CallNames...)), "unknown %s '%s'", kind, n.Fn)
}

// Describe names a value's kind for messages: "the int 3", "a list of 4".
func Describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case int64:
		return fmt.Sprintf("the int %d", x)
	case float64:
		return fmt.Sprintf("the float %g", x)
	case bool:
		return fmt.Sprintf("%t", x)
	case string:
		return fmt.Sprintf("the string %q", x)
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case interface{ Describe() string }:
		return x.Describe()
	}
	return fmt.Sprintf("%T", v)
}

// Format prints a value the way .arch source would write it.
func Format(v any) string {
	switch x := v.(type) {
	case nil:
		return "none"
	case string:
		return fmt.Sprintf("%q", x)
	case float64:
		s := fmt.Sprint(x)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Format(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}
