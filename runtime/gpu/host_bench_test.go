package gpu_test

import (
	"testing"

	"github.com/minerva-ml/minerva/internal/backendtest"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/internal/gputest"
	"github.com/minerva-ml/minerva/runtime/gpu"
)

// BenchmarkStepHost is the executor's host time for one decode step on a
// device that runs nothing: on a GPU, time spent before the step's first
// kernel can start. docs/benchmarks.md gives the command and figures.
func BenchmarkStepHost(b *testing.B) {
	for _, fx := range []fixtures.Model{fixtures.Fortune, fixtures.TinyRandom} {
		b.Run(fx.Name, func(b *testing.B) {
			p := fx.Compile(b, backendtest.Plan("f16"))
			dev := &gputest.NullDevice{}
			m, err := gpu.Load(p, fx.Checkpoint(b, p), dev)
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			ids := []int32{5}
			if _, err := m.Forward(ids, 0); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Forward(ids, 1+i%64); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(dev.Launches), "launches/step")
		})
	}
}
