package fuse

import (
	"sort"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/golden"
)

// TestRules applies rules to IR text and compares the result. Each case in
// testdata holds `before` (IR), `rules` (the rule names to apply, in
// order; "all" for the whole file) and the expected `after`. Every rule
// must be the subject of at least one case.
func TestRules(t *testing.T) {
	covered := map[string]bool{}
	golden.Cases(t, "testdata", func(t *testing.T, path string, a *golden.Archive) {
		before, _ := a.Get("before")
		names, _ := a.Get("rules")
		f, err := ir.Parse(before)
		if err != nil {
			t.Fatal(err)
		}
		if err := ir.Verify(f); err != nil {
			t.Fatalf("before: %v", err)
		}
		var rules []*Rule
		for _, n := range strings.Fields(names) {
			if n == "all" {
				rules = Rules
				for _, r := range Rules {
					covered[r.Name] = true
				}
				continue
			}
			r := byName(n)
			if r == nil {
				t.Fatalf("no rule %q", n)
			}
			covered[n] = true
			rules = append(rules, r)
		}
		fired := Apply(f, rules)
		if err := ir.Verify(f); err != nil {
			t.Fatalf("after: %v", err)
		}
		var report []string
		for n, c := range fired {
			report = append(report, n+" "+itoa(c))
		}
		sort.Strings(report)
		golden.Check(t, path, a, []string{"before", "rules"}, map[string]string{
			"after": ir.Print(f),
			"fired": strings.Join(report, "\n") + "\n",
		})
	})
	for _, r := range Rules {
		if !covered[r.Name] {
			t.Errorf("rule %s has no test case", r.Name)
		}
	}
}

func byName(n string) *Rule {
	for _, r := range Rules {
		if r.Name == n {
			return r
		}
	}
	return nil
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"x: rmsnorm($a, $b) => y":       "needs a comment",
		"# why\nx rmsnorm($a, $b) => y": "expected `NAME: PATTERN => OP`",
		"# why\nx: nosuchop($a) => y":   "not a base op",
		"# why\nx: rmsnorm($a) => y":    "has 1 operands; the op takes 2",
		"# why\nx: $a => y":             "rooted at an op",
		"# why\nx: linear(rmsnorm($x, $norm), $w, $b?) => rmsnorm_linear\n# why\nx: linear(rmsnorm($x, $norm), $w, $b?) => rmsnorm_linear": "defined twice",
	}
	for text, want := range cases {
		if _, err := Parse(text); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): want %q, got %v", text, want, err)
		}
	}
}

// FuzzParseRules: the rules parser never panics on any text.
func FuzzParseRules(f *testing.F) {
	f.Add(rulesText)
	f.Add("# why\nx: rmsnorm(add($a, $b)!, $w) => y\n")
	f.Fuzz(func(t *testing.T, text string) {
		_, _ = Parse(text)
	})
}

// TestEveryFusedOpHasARule: each fused kind of the registry is made by a
// rule; one that none makes is dead weight in every backend.
func TestEveryFusedOpHasARule(t *testing.T) {
	made := map[ir.OpKind]bool{}
	for _, r := range Rules {
		made[r.Kind] = true
	}
	for _, k := range ir.AllOps() {
		if ir.MustLookup(k).Fused && !made[k] {
			t.Errorf("fused op %s is made by no rule of rules.fuse", k)
		}
	}
}

// TestRuleOperandsAgreeWithRegistry: a rule binds its fused op's inputs
// by name, so two rules that make one kind cannot give it different
// operands.
func TestRuleOperandsAgreeWithRegistry(t *testing.T) {
	cases := []struct{ rule, want string }{
		{"r: cache_kv(rope(linear($h, $wq, $bq?)), rope(linear($h, $wk, $bk?)), linear($h, $wv, $bv?)) => qkv_rope_store",
			"$h is not an input of qkv_rope_store; its inputs are x, norm, wq, bq, wk, bk, wv, bv"},
		{"r: softmax(topk(linear($x, $w, $b))) => router", ""},
		{"r: softmax(topk(linear($x, $w))) => router", "pattern op linear has 2 operands; the op takes 3"},
		{"r: rmsnorm(add($a, $b)!, $n) => add_rmsnorm", "$n is not an input of add_rmsnorm; its inputs are a, b, norm"},
		{"r: rmsnorm(add($residual, $x)!, $norm) => linear_add", "$norm is not an input of linear_add; its inputs are residual, x, w, b"},
		{"r: linear($x, $norm, $b?) => rmsnorm_linear", "the pattern does not bind $w, a required input of rmsnorm_linear"},
		{"r: linear($x, $w, $b?) => linear", "linear is not a fused op of the registry (compiler/ir: fusedOps)"},
		{"r: add($residual, linear($x, $w?, $b?)) => linear_add", "$w? may be absent but input w of linear_add is required"},
		{"r: add($residual, linear($x, $w, $b?)) => glu", "$residual is not an input of glu; its inputs are h, wg, bg, wu, bu"},
	}
	for _, c := range cases {
		_, err := Parse("# why\n" + c.rule + "\n")
		got := ""
		if err != nil {
			got = strings.TrimPrefix(err.Error(), "line 2: ")
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.rule, got, c.want)
		}
	}
}

// TestFusedInputKinds: add(linear(x, w), @v) adds a weight vector, so
// linear_add's $residual, which commutative matching binds to @v, is a
// weight; the fused op takes an activation there, so the rule must not
// fire (it used to, and a backend then read the weight as an activation).
func TestFusedInputKinds(t *testing.T) {
	f, err := ir.Parse(`model "t"
weight @e f32[8, 4] "e"
weight @w f32[4, 4] "w"
weight @v f32[4] "v"

func forward(%0: i32[seq]) -> f32[seq, 4] {
  %1 = embedding @e, %0 : f32[seq, 4]
  %2 = linear %1, @w, _ : f32[seq, 4]
  %3 = add %2, @v : f32[seq, 4]
  return %3
}
`)
	if err != nil {
		t.Fatal(err)
	}
	fired := Apply(f, []*Rule{byName("linear_add")})
	if err := ir.Verify(f); err != nil {
		t.Fatal(err)
	}
	if fired["linear_add"] != 0 {
		t.Fatalf("linear_add fused an add of a weight vector:\n%s", ir.Print(f))
	}
}
