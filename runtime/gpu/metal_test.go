package gpu_test

import (
	"testing"

	"github.com/minerva-ml/minerva/internal/backendtest"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/metal"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestMetalConformance runs the backend conformance suite on the Metal
// device. It runs only on a Mac with Apple Silicon; elsewhere it skips and
// says why. (It has never run here: no machine we build on has an Apple
// GPU.)
func TestMetalConformance(t *testing.T) {
	if _, err := metal.Open(); err != nil {
		t.Skipf("no Metal device, so the Metal backend cannot run here: %v", err)
	}
	backendtest.Run(t, func(t testing.TB, p *program.Program, ck *weights.Checkpoint) engine.Backend {
		dev, err := gpu.NewMetal(p.Code)
		if err != nil {
			t.Fatal(err)
		}
		m, err := gpu.Load(p, ck, dev)
		if err != nil {
			dev.Close()
			t.Fatal(err)
		}
		return m
	})
}
