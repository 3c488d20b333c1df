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
//
// Integer arithmetic is checked: a result that does not fit in 64 bits is
// an error, never a wrapped value; so is a float result that overflows.
// Every evaluation spends from a budget.Budget (steps, list elements,
// string bytes), so no expression can run away with time or memory.
package eval

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/minerva-ml/minerva/dsl"
	"github.com/minerva-ml/minerva/dsl/budget"
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
	// Budget is what evaluation may still spend. New gives each evaluator
	// a budget of the default limits; a compilation shares one budget
	// between its evaluators.
	Budget *budget.Budget
	// reported holds positions that already have a diagnostic: a mistake
	// inside a loop body is evaluated once per iteration but reported once.
	reported map[diag.Pos]bool
}

// New creates an evaluator.
func New(d *diag.List, s Scope) *Evaluator {
	return &Evaluator{Diags: d, Scope: s, Budget: budget.New(budget.Limits{}), reported: map[diag.Pos]bool{}}
}

// Spent reports a failed budget charge at n and returns false; it
// returns true when err is nil. After the first failure the budget fails
// every charge, and those later failures are not reported again.
func (e *Evaluator) Spent(n dsl.Node, err error, format string, args ...any) bool {
	if err == nil {
		return true
	}
	var le *budget.LimitError
	if errors.As(err, &le) {
		e.Errorf(n, budget.Hint, "%s, %v", fmt.Sprintf(format, args...), le)
	}
	return false
}

// SpentAt is Spent for a span that is not a node.
func (e *Evaluator) SpentAt(p, end diag.Pos, err error, format string, args ...any) bool {
	if err == nil {
		return true
	}
	var le *budget.LimitError
	if errors.As(err, &le) {
		e.ErrorAt(p, end, budget.Hint, "%s, %v", fmt.Sprintf(format, args...), le)
	}
	return false
}

// Suggest is diag.DidYouMean for a diagnostic at p, computed only when
// that diagnostic will be reported and charged to the budget (a step per
// candidate): thousands of misspelt names among thousands of declared
// ones must not take quadratic time.
func (e *Evaluator) Suggest(p diag.Pos, name string, candidates func() []string) string {
	if e.reported[p] || e.Diags.Full() {
		return ""
	}
	c := candidates()
	if e.Budget.Steps(int64(len(c))) != nil {
		return ""
	}
	return diag.DidYouMean(name, c)
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
	if e.Budget == nil {
		e.Budget = budget.New(budget.Limits{})
	}
	if !e.Spent(n, e.Budget.Steps(1), "compile-time evaluation goes on here") {
		return Poison{}
	}
	// With the diagnostic list full, more evaluation finds nothing that
	// will be reported.
	if e.Diags.Full() {
		return Poison{}
	}
	switch n := n.(type) {
	case *dsl.Lit:
		return n.Value
	case *dsl.Name:
		v, ok := e.Scope.Lookup(n.Name)
		if !ok {
			p, _ := n.Span()
			return e.Errorf(n, e.Suggest(p, n.Name, e.Scope.Names), "unknown name '%s'", n.Name)
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
		if !e.Spent(n, e.Budget.Elements(int64(len(n.Elems))), "this list has %d elements", len(n.Elems)) {
			return Poison{}
		}
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
	count := RangeLen(from, to)
	if !e.Spent(n, e.Budget.Steps(int64(count)), "the range %d..%d has %d iterations", from, to, count) ||
		!e.Spent(n, e.Budget.Elements(int64(count)), "the range %d..%d makes %d elements", from, to, count) {
		return Poison{}
	}
	saved := e.Scope
	defer func() { e.Scope = saved }()
	out := make([]any, 0, count)
	for k := uint64(0); k < count; k++ {
		e.Scope = &MapScope{Vars: map[string]any{n.Var: from + int64(k)}, Parent: saved}
		v := e.Eval(n.Elem)
		if IsPoison(v) {
			return v
		}
		out = append(out, v)
	}
	return out
}

// RangeLen is the number of iterations of a..b: b-a when b > a, else 0.
// It is exact for any two int64s (the difference is taken in uint64),
// so a range cannot wrap around to look short.
func RangeLen(a, b int64) uint64 {
	if b <= a {
		return 0
	}
	return uint64(b) - uint64(a)
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
			if v == math.MinInt64 {
				return e.Errorf(n, intHint, "-(%d) overflows a 64-bit int", v)
			}
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
		eq, ok := e.equal(n, l, r)
		if e.Budget.Exhausted() {
			return Poison{}, true
		}
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
			// Each element searched is a step, like each one compared.
			if !e.Spent(n, e.Budget.Steps(1), "searching a list of %d elements", len(list)) {
				return Poison{}, true
			}
			eq, ok := e.equal(n, l, x)
			if e.Budget.Exhausted() {
				return Poison{}, true
			}
			if ok && eq {
				return n.Op == "in", true
			}
		}
		return n.Op == "notin", true
	}
	li, lInt := l.(int64)
	ri, rInt := r.(int64)
	if lInt && rInt {
		switch n.Op {
		case "+", "-", "*":
			v, ok := CheckedInt(n.Op, li, ri)
			if !ok {
				return e.Errorf(n, intHint, "%d %s %d overflows a 64-bit int", li, n.Op, ri), true
			}
			return v, true
		case "/", "%":
			if ri == 0 {
				return e.Errorf(n, "", "division by zero (%d %s 0)", li, n.Op), true
			}
			if n.Op == "%" {
				return li % ri, true
			}
			if li == math.MinInt64 && ri == -1 {
				return e.Errorf(n, intHint, "%d / %d overflows a 64-bit int", li, ri), true
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
		var v float64
		switch n.Op {
		case "+":
			v = lf + rf
		case "-":
			v = lf - rf
		case "*":
			v = lf * rf
		case "/":
			if rf == 0 {
				return e.Errorf(n, "", "division by zero"), true
			}
			v = lf / rf
		case "<":
			return lf < rf, true
		case "<=":
			return lf <= rf, true
		case ">":
			return lf > rf, true
		case ">=":
			return lf >= rf, true
		default:
			return nil, false
		}
		// Operands are finite (literals, config.json and --set refuse
		// anything else), so a non-finite result is an overflow.
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return e.Errorf(n, "", "%g %s %g overflows a float", lf, n.Op, rf), true
		}
		return v, true
	}
	if ls, ok := l.(string); ok {
		if rs, ok := r.(string); ok && n.Op == "+" {
			if !e.Spent(n, e.Budget.StringBytes(int64(len(ls))+int64(len(rs))), "joining strings of %d and %d bytes", len(ls), len(rs)) {
				return Poison{}, true
			}
			return ls + rs, true
		}
	}
	if ll, ok := l.([]any); ok {
		switch rr := r.(type) {
		case []any:
			if n.Op == "+" {
				count := int64(len(ll)) + int64(len(rr))
				if !e.Spent(n, e.Budget.Elements(count), "joining lists of %d and %d elements", len(ll), len(rr)) ||
					!e.Spent(n, e.Budget.Steps(count), "joining lists of %d and %d elements", len(ll), len(rr)) {
					return Poison{}, true
				}
				return append(append(make([]any, 0, count), ll...), rr...), true
			}
		case int64:
			if n.Op == "*" {
				if rr < 0 {
					return e.Errorf(n, "", "cannot repeat a list %d times", rr), true
				}
				count, ok := CheckedInt("*", int64(len(ll)), rr)
				what := fmt.Sprintf("repeating a list of %d elements %d times makes %d elements", len(ll), rr, count)
				if !ok {
					what = fmt.Sprintf("repeating a list of %d elements %d times makes more than %d elements", len(ll), rr, int64(math.MaxInt64))
					count = -1 // no budget covers it
				}
				if !e.Spent(n, e.Budget.Elements(count), "%s", what) || !e.Spent(n, e.Budget.Steps(count), "%s", what) {
					return Poison{}, true
				}
				out := make([]any, 0, count)
				for k := int64(0); k < rr; k++ {
					out = append(out, ll...)
				}
				return out, true
			}
		}
	}
	return nil, false
}

// intHint is the hint of an integer overflow.
const intHint = "ints are 64-bit; a value this large is a mistake (or write float(a) for an approximate result)"

// CheckedInt applies +, - or * to two ints; ok is false when the exact
// result does not fit in an int64.
func CheckedInt(op string, a, b int64) (v int64, ok bool) {
	switch op {
	case "+":
		v = a + b
		return v, !((a > 0 && b > 0 && v < 0) || (a < 0 && b < 0 && v >= 0))
	case "-":
		v = a - b
		return v, !((a >= 0 && b < 0 && v < 0) || (a < 0 && b > 0 && v >= 0))
	case "*":
		if a == 0 || b == 0 {
			return 0, true
		}
		v = a * b
		if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) || v/b != a {
			return v, false
		}
		return v, true
	}
	panic("BUG: CheckedInt of " + op)
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
// cannot compare. Each list element compared is a step: lists may share
// their elements, so a short expression can compare a great many.
func (e *Evaluator) equal(at dsl.Node, l, r any) (eq, ok bool) {
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
			if !e.Spent(at, e.Budget.Steps(1), "comparing lists of %d elements", len(x)) {
				return false, true
			}
			eq, ok := e.equal(at, x[i], y[i])
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

// describeBytes is how much of a string Describe quotes.
const describeBytes = 64

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
		if len(x) > describeBytes {
			return fmt.Sprintf("the string %q... (%d bytes)", x[:describeBytes], len(x))
		}
		return fmt.Sprintf("the string %q", x)
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case interface{ Describe() string }:
		return x.Describe()
	}
	return fmt.Sprintf("%T", v)
}

// Format prints a value the way .arch source would write it. Past
// FormatLimit bytes the text ends in "...": lists may share elements, so
// a value can be far larger written out than held in memory.
func Format(v any) string {
	var b strings.Builder
	format(&b, v)
	if b.Len() > FormatLimit {
		return b.String()[:FormatLimit] + "..."
	}
	return b.String()
}

// FormatLimit bounds the text Format returns.
const FormatLimit = 1 << 13

func format(b *strings.Builder, v any) {
	if b.Len() > FormatLimit {
		return
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("none")
	case string:
		if len(x) > FormatLimit {
			x = x[:FormatLimit]
		}
		fmt.Fprintf(b, "%q", x)
	case float64:
		s := fmt.Sprint(x)
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		b.WriteString(s)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			format(b, e)
			if b.Len() > FormatLimit {
				return
			}
		}
		b.WriteByte(']')
	default:
		fmt.Fprint(b, v)
	}
}
