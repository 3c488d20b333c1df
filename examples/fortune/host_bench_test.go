package main

import (
	"testing"

	fortunemodel "github.com/minerva-ml/minerva/examples/fortune/artifact/go"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// nullDevice runs nothing, so that a step's time is the generated
// package's host work alone: on a GPU, time before the first kernel.
type nullDevice struct{ launches int }

type nullBuffer []byte

func (b nullBuffer) Bytes() []byte { return b }

func (*nullDevice) NewBuffer(n int) (gpu.Buffer, error) { return nullBuffer(make([]byte, n)), nil }
func (*nullDevice) FileBuffer(f weights.MappedFile) (gpu.Buffer, error) {
	return nullBuffer(f.Data), nil
}
func (d *nullDevice) Run(ls []gpu.Launch) error { d.launches = len(ls); return nil }
func (*nullDevice) Close() error                { return nil }

// BenchmarkGeneratedStepHost is the generated fortune package's host time
// for one decode step (Forward of one token) on a device that runs
// nothing. docs/benchmarks.md gives the command and figures.
func BenchmarkGeneratedStepHost(b *testing.B) {
	ck, err := weights.FromBytes("fortune", models.FortuneFile("model.safetensors"))
	if err != nil {
		b.Fatal(err)
	}
	defer ck.Close()
	dev := &nullDevice{}
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
	b.ReportMetric(float64(dev.launches), "launches/step")
}
