package kernels

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// TestEveryOpHasATemplate: every op of the registry that reaches code
// generation (all but those a pass rewrites, ir.OpDef.Rewritten) has a
// Metal specialiser, and so a template.
func TestEveryOpHasATemplate(t *testing.T) {
	for _, k := range ir.AllOps() {
		if ir.MustLookup(k).Rewritten != "" {
			continue
		}
		if !Supported(k) {
			t.Errorf("op %s has no Metal specialiser: add it to specialisers (codegen/kernels/specialise.go)", k)
		}
	}
}

func TestGridEval(t *testing.T) {
	g := Grid{{Const: 3}, {PerTile: 2, Tile: 8}, {Const: 1, PerTile: 1, Tile: 1}}
	if got := g.Eval(9); got != [3]int{3, 4, 10} {
		t.Fatalf("grid for 9 tokens: %v", got)
	}
}
