package main

import (
	"testing"

	fortunemodel "github.com/minerva-ml/minerva/examples/fortune/artifact/go"
	"github.com/minerva-ml/minerva/internal/gputest"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// BenchmarkGeneratedStepHost is the generated fortune package's host time
// for one decode step (Forward of one token) on a device that runs
// nothing. docs/benchmarks.md gives the command and figures.
func BenchmarkGeneratedStepHost(b *testing.B) {
	ck, err := weights.FromBytes("fortune", models.FortuneFile("model.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	defer ck.Close()
	dev := &gputest.NullDevice{}
	m, err := fortunemodel.New(dev, ck)
	if err != nil {
		b.Fatal(err)
	}
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
}
