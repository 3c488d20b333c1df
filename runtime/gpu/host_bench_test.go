package gpu_test

import (
	"testing"

	"github.com/minerva-ml/minerva/internal/backendtest"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// hostDevice runs nothing, so that a step's time is the executor's host
// work alone: resolving the launches and handing them to the device.
type hostDevice struct{ launches int }

type hostBuffer []byte

func (b hostBuffer) Bytes() []byte { return b }

func (*hostDevice) NewBuffer(n int) (gpu.Buffer, error) { return hostBuffer(make([]byte, n)), nil }
func (*hostDevice) FileBuffer(f weights.MappedFile) (gpu.Buffer, error) {
	return hostBuffer(f.Data), nil
}
func (d *hostDevice) Run(ls []gpu.Launch) error { d.launches = len(ls); return nil }
func (*hostDevice) Close() error                { return nil }

// BenchmarkStepHost is the executor's host time for one decode step on a
// device that runs nothing: on a GPU, time spent before the step's first
// kernel can start. docs/benchmarks.md gives the command and figures.
func BenchmarkStepHost(b *testing.B) {
	for _, fx := range []fixtures.Model{fixtures.Fortune, fixtures.TinyRandom} {
		b.Run(fx.Name, func(b *testing.B) {
			p := fx.Compile(b, backendtest.Plan("f16"))
			dev := &hostDevice{}
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
			b.ReportMetric(float64(dev.launches), "launches/step")
		})
	}
}
