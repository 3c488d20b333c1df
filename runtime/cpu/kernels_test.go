package cpu

import (
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// TestEveryOpHasAKernel: every op of the registry that reaches a backend
// (all but those a pass rewrites, ir.OpDef.Rewritten) has a CPU kernel: a
// base op in baseKernels, a fused op in fusedKernels. The CPU backend is
// the reference every other backend is compared with, so it must cover
// them all.
func TestEveryOpHasAKernel(t *testing.T) {
	for _, k := range ir.AllOps() {
		d := ir.MustLookup(k)
		switch {
		case d.Rewritten != "":
		case d.Fused && fusedKernels[k] == nil:
			t.Errorf("fused op %s has no CPU kernel: add it to fusedKernels (runtime/cpu/fused.go)", k)
		case !d.Fused && baseKernels[k] == nil:
			t.Errorf("op %s has no CPU kernel: add it to baseKernels (runtime/cpu/ops.go)", k)
		}
	}
	for k := range baseKernels {
		if d, ok := ir.Lookup(k); !ok || d.Fused {
			t.Errorf("baseKernels has %s, which is not a base op of the registry", k)
		}
	}
	for k := range fusedKernels {
		if d, ok := ir.Lookup(k); !ok || !d.Fused {
			t.Errorf("fusedKernels has %s, which is not a fused op of the registry", k)
		}
	}
}
