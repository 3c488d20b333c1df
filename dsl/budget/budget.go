// Package budget bounds what one .arch compilation may spend. An .arch file
// is a program that runs at compile time (loops unroll, lists are built,
// strings are joined), so a few lines can ask for more time or memory than
// any machine has. Every stage that reads or evaluates the file spends from
// one Budget: the parser (file size, tokens, nesting depth), the evaluator
// (steps, list elements, string bytes) and lowering (unrolled ops and
// weights). The defaults are far above what a real architecture needs
// (docs/limits.md gives the figures) and small enough that `minervac check`
// on any input ends within a second and 200 MB.
package budget

import "fmt"

// Limits are the bounds. The zero value of a field means its default.
type Limits struct {
	// SourceBytes is the largest .arch file read or parsed.
	SourceBytes int
	// Tokens is the most tokens a file may hold, comments and runs of
	// whitespace included (the parser elides them but holds them all):
	// the parser's time and memory grow with them.
	Tokens int
	// Depth is the deepest nesting of brackets, prefix operators (-, not)
	// and if-expressions: the parser recurses once per level.
	Depth int
	// Steps bounds evaluation time: every expression evaluated, every loop
	// or comprehension iteration and every list element copied or compared
	// is a step, summed over the whole compilation.
	Steps int64
	// Elements is the most list elements evaluation may create in all.
	Elements int64
	// StringBytes is the most string bytes evaluation may create in all.
	StringBytes int64
	// Unrolled is the most IR ops and weights the weights block and the
	// forward pass may unroll to.
	Unrolled int64
	// Errors is the most diagnostics a compilation reports; evaluation
	// stops when it has that many. Each costs work (a "did you mean"
	// search, quoting its line), and past a screenful more do not help.
	Errors int
}

// Defaults. The shipped models are 3 to 7 KB, at most 1388 tokens, nest
// 6 deep, and evaluate in under 6000 steps to under 1300 ops and weights.
const (
	DefaultSourceBytes = 1 << 20
	DefaultTokens      = 1 << 14
	DefaultDepth       = 256
	DefaultSteps       = 1 << 18
	DefaultElements    = 1 << 18
	DefaultStringBytes = 1 << 24
	DefaultUnrolled    = 1 << 14
	DefaultErrors      = 100
)

// WithDefaults fills the fields left zero.
func (l Limits) WithDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.SourceBytes <= 0 {
		l.SourceBytes = DefaultSourceBytes
	}
	if l.Tokens <= 0 {
		l.Tokens = DefaultTokens
	}
	if l.Depth <= 0 {
		l.Depth = DefaultDepth
	}
	if l.Errors <= 0 {
		l.Errors = DefaultErrors
	}
	def(&l.Steps, DefaultSteps)
	def(&l.Elements, DefaultElements)
	def(&l.StringBytes, DefaultStringBytes)
	def(&l.Unrolled, DefaultUnrolled)
	return l
}

// Budget is what is left of the limits in one compilation. Spending is
// all or nothing: a charge the budget cannot cover spends nothing, marks
// the budget exhausted and returns an error that names the limit; from
// then on every charge fails without a new error, so one runaway
// expression gives one diagnostic and evaluation winds down at once.
type Budget struct {
	Limits
	steps, elements, stringBytes, unrolled int64
	exhausted                              bool
}

// New returns a budget of the given limits (zero fields take defaults).
func New(l Limits) *Budget { return &Budget{Limits: l.WithDefaults()} }

// Exhausted reports whether some charge has already failed.
func (b *Budget) Exhausted() bool { return b.exhausted }

// ErrExhausted is returned by charges after the first failure; its
// diagnostic has been reported already.
var ErrExhausted = fmt.Errorf("the evaluation budget is spent")

// Steps charges n evaluation steps.
func (b *Budget) Steps(n int64) error {
	return b.charge(&b.steps, b.Limits.Steps, n, "evaluation steps")
}

// Elements charges n new list elements.
func (b *Budget) Elements(n int64) error {
	return b.charge(&b.elements, b.Limits.Elements, n, "list elements made")
}

// StringBytes charges n new string bytes.
func (b *Budget) StringBytes(n int64) error {
	return b.charge(&b.stringBytes, b.Limits.StringBytes, n, "string bytes made")
}

// Unrolled charges n unrolled ops or weights.
func (b *Budget) Unrolled(n int64) error {
	return b.charge(&b.unrolled, b.Limits.Unrolled, n, "unrolled ops and weights")
}

// LimitError says which limit a charge went past. Its text completes a
// sentence that names what was asked for: "the range 0..9000000 has
// 9000000 iterations, past the limit of 4194304 evaluation steps in one
// compilation".
type LimitError struct {
	// Limit is the bound, Unit what it counts.
	Limit int64
	Unit  string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("past the limit of %d %s in one compilation", e.Limit, e.Unit)
}

func (b *Budget) charge(used *int64, limit, n int64, unit string) error {
	if b.exhausted {
		return ErrExhausted
	}
	if n < 0 || n > limit-*used {
		b.exhausted = true
		return &LimitError{Limit: limit, Unit: unit}
	}
	*used += n
	return nil
}

// Hint is the hint every budget diagnostic carries.
const Hint = "docs/limits.md lists the bounds on .arch evaluation; a real architecture stays far below them"
