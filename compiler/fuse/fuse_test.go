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
		"x: rmsnorm($a, $b) => y":                                        "needs a comment",
		"# why\nx rmsnorm($a, $b) => y":                                  "expected `NAME: PATTERN => OP`",
		"# why\nx: nosuchop($a) => y":                                    "not a base op",
		"# why\nx: rmsnorm($a) => y":                                     "has 1 operands; the op takes 2",
		"# why\nx: $a => y":                                              "rooted at an op",
		"# why\nx: rmsnorm($a, $b) => y\n# why\nx: rmsnorm($a, $b) => z": "defined twice",
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
