package kernels

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler/fuse"
	"github.com/minerva-ml/minerva/compiler/ir"
)

// TestEveryOpHasATemplate: every op the front end, the passes or a fusion
// rule can produce has a Metal template. The attention op itself is
// always rewritten by the kv_cache pass before code generation.
func TestEveryOpHasATemplate(t *testing.T) {
	_ = fuse.Rules // registers the fused kinds
	for _, k := range ir.AllOps() {
		if k == "attention" {
			continue
		}
		if !Supported(k) {
			t.Errorf("op %s has no Metal template", k)
		}
	}
}

func TestGridEval(t *testing.T) {
	g := Grid{{Const: 3}, {PerTile: 2, Tile: 8}, {Const: 1, PerTile: 1, Tile: 1}}
	if got := g.Eval(9); got != [3]int{3, 4, 10} {
		t.Fatalf("grid for 9 tokens: %v", got)
	}
}
