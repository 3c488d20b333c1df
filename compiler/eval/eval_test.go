package eval

import (
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/dsl"
	"github.com/minerva-ml/minerva/dsl/budget"
	"github.com/minerva-ml/minerva/dsl/diag"
)

var edges = []int64{math.MinInt64, math.MinInt64 + 1, -1 << 32, -3037000500, -3037000499, -2, -1, 0, 1, 2,
	3037000499, 3037000500, 1 << 32, 1<<62 + 1, math.MaxInt64 - 1, math.MaxInt64}

// TestCheckedIntAgainstBig compares CheckedInt with exact arithmetic
// (math/big) on the values where 64-bit arithmetic wraps.
func TestCheckedIntAgainstBig(t *testing.T) {
	lo, hi := big.NewInt(math.MinInt64), big.NewInt(math.MaxInt64)
	for _, op := range []string{"+", "-", "*"} {
		for _, a := range edges {
			for _, b := range edges {
				x, y := big.NewInt(a), big.NewInt(b)
				exact := new(big.Int)
				switch op {
				case "+":
					exact.Add(x, y)
				case "-":
					exact.Sub(x, y)
				case "*":
					exact.Mul(x, y)
				}
				fits := exact.Cmp(lo) >= 0 && exact.Cmp(hi) <= 0
				v, ok := CheckedInt(op, a, b)
				if ok != fits || (ok && v != exact.Int64()) {
					t.Errorf("%d %s %d: got %d, %t; exact %s", a, op, b, v, ok, exact)
				}
			}
		}
	}
}

func TestRangeLenAgainstBig(t *testing.T) {
	for _, a := range edges {
		for _, b := range edges {
			exact := new(big.Int).Sub(big.NewInt(b), big.NewInt(a))
			if exact.Sign() < 0 {
				exact.SetInt64(0)
			}
			if got := RangeLen(a, b); got != exact.Uint64() {
				t.Errorf("RangeLen(%d, %d) = %d, want %s", a, b, got, exact)
			}
		}
	}
}

// evalConfig evaluates `a = EXPR` under the limits and returns the value
// and the diagnostics.
func evalConfig(t *testing.T, expr string, lim budget.Limits) (any, string) {
	t.Helper()
	src := "model \"m\"\nconfig {\n  a = " + expr + "\n}\n"
	f, err := dsl.Parse("input.arch", src)
	if err != nil {
		t.Fatal(err)
	}
	var d diag.List
	d.AddSource("input.arch", src)
	e := New(&d, &MapScope{Vars: map[string]any{}})
	e.Budget = budget.New(lim)
	v := e.Eval(f.Blocks[0].Config.Items[0].Derived.Value.Tree("input.arch"))
	msgs := ""
	if err := d.Err(); err != nil {
		msgs = err.Error()
	}
	return v, msgs
}

// TestBudgetIsExact: an expression that needs exactly the budget runs;
// one more element, byte or step is refused with the limit's name.
func TestBudgetIsExact(t *testing.T) {
	cases := []struct {
		expr string
		lim  budget.Limits
		over string
	}{
		// 2 literal elements, then 2*3 repeated: 8 elements.
		{"[1, 2] * 3", budget.Limits{Elements: 8}, "past the limit of 7 list elements made"},
		// "ab" + "cd": 4 bytes made.
		{`"ab" + "cd"`, budget.Limits{StringBytes: 4}, "past the limit of 3 string bytes made"},
		// Steps: the range (3 iterations), the comprehension node, its
		// two bounds and one element evaluation per iteration: 9.
		{"[0 for i in 0..3]", budget.Limits{Steps: 9}, "past the limit of 8 evaluation steps"},
	}
	for _, c := range cases {
		if _, msgs := evalConfig(t, c.expr, c.lim); msgs != "" {
			t.Errorf("%s within %+v: %s", c.expr, c.lim, msgs)
		}
		over := c.lim
		switch {
		case over.Elements > 0:
			over.Elements--
		case over.StringBytes > 0:
			over.StringBytes--
		default:
			over.Steps--
		}
		v, msgs := evalConfig(t, c.expr, over)
		if !IsPoison(v) || !strings.Contains(msgs, c.over) {
			t.Errorf("%s within %+v: got %v, %q; want an error with %q", c.expr, over, v, msgs, c.over)
		}
	}
}

func TestFormatIsBounded(t *testing.T) {
	inner := make([]any, 1000)
	for i := range inner {
		inner[i] = int64(i)
	}
	outer := make([]any, 1000)
	for i := range outer {
		outer[i] = inner // shared: a million elements written out
	}
	s := Format(outer)
	if len(s) != FormatLimit+3 || !strings.HasSuffix(s, "...") {
		t.Fatalf("Format of a shared list: %d bytes", len(s))
	}
	if got := Format([]any{int64(1), "a", 2.0, nil}); got != `[1, "a", 2.0, none]` {
		t.Fatalf("Format: %s", got)
	}
}
