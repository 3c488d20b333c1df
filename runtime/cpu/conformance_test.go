package cpu_test

import (
	"testing"

	"github.com/minerva-ml/minerva/internal/backendtest"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestConformance runs the backend conformance suite on the CPU backend,
// the reference the other backends are compared with op by op.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t testing.TB, p *program.Program, ck *weights.Checkpoint) engine.Backend {
		m, err := cpu.Load(p, ck, cpu.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}
