package kernels

import (
	"bytes"
	"strings"
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

// TestTemplateDataIsTyped: a template run with another family's data
// fails instead of rendering "<no value>" where a constant belongs.
func TestTemplateDataIsTyped(t *testing.T) {
	var buf bytes.Buffer
	err := tmpl().ExecuteTemplate(&buf, "norm", &RowsData{N: 8})
	if err == nil || !strings.Contains(err.Error(), "can't evaluate field") {
		t.Fatalf("norm with RowsData: %v", err)
	}
	buf.Reset()
	if err := tmpl().ExecuteTemplate(&buf, "norm", &NormData{N: 8, G: 8, Eps: "1e-05", WLoad: "bf16f", Offset: "0.0"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<no value>") {
		t.Fatalf("rendered <no value>:\n%s", buf.String())
	}
}
