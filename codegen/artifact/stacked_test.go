package artifact

import (
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
)

// TestGoPackageStacksExperts: a model whose experts are one checkpoint
// tensor each (Qwen3-MoE) binds each stacked weight by the name its
// kernels use, so the generated package assembles it from its parts before
// binding (the loader does the same through program.StackWeights).
func TestGoPackageStacksExperts(t *testing.T) {
	opts, err := compiler.SourceOptions("../../models/qwen3-moe.arch", "../../testdata/families/qwen3-moe-tiny/config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	src, err := GoPackage(Build(u, u.Generated), "qwen3moe")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ck.Stack("model.layers.1.mlp.experts.{0..8}.gate_proj.weight", []string{"model.layers.1.mlp.experts.0.gate_proj.weight", `,
		"\n\t\"model.layers.2.mlp.experts.{0..8}.down_proj.weight\",\n", // in tensorNames, which BindWeights looks up
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("the Go package lacks %s", want)
		}
	}
}
