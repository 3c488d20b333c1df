// Package gputest holds a runtime/gpu.Device for benchmarks of host work:
// one that runs nothing.
package gputest

import (
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// NullDevice runs nothing, so that a step's time is the host's work alone
// (resolving launches and handing them over): on a GPU, time spent before
// the step's first kernel can start. Launches is the last step's count.
type NullDevice struct{ Launches int }

type hostBuffer []byte

func (b hostBuffer) Bytes() []byte { return b }

func (*NullDevice) NewBuffer(n int) (gpu.Buffer, error) { return hostBuffer(make([]byte, n)), nil }
func (*NullDevice) FileBuffer(f weights.MappedFile) (gpu.Buffer, error) {
	return hostBuffer(f.Data), nil
}
func (d *NullDevice) Run(ls []gpu.Launch) error { d.Launches = len(ls); return nil }
func (*NullDevice) Close() error                { return nil }
