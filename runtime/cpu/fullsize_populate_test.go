package cpu

import (
	"testing"
	"time"

	"github.com/minerva-ml/minerva/compiler"
)

// BenchmarkFullSizeDecodePopulate is BenchmarkFullSizeDecode with the best
// kernels, run twice on fresh opens of the checkpoint: with the mapping as
// weights.Open leaves it, and after weights.Checkpoint.Populate, whose own
// time (what it would add to time to ready) it reports as populate-ms. It
// answers whether decode pays for first-touch page faults on the mapping
// (docs/benchmarks.md, "page faults").
func BenchmarkFullSizeDecodePopulate(b *testing.B) {
	sets := kernelSets()
	best := sets[len(sets)-1]
	for _, populate := range []bool{false, true} {
		name := "map=plain"
		if populate {
			name = "map=populated"
		}
		b.Run(name, func(b *testing.B) {
			def := kernelSet
			defer useKernels(def)
			useKernels(best)
			b.StopTimer()
			fs := openFullSize(b, compiler.PlanOptions{Ctx: 4096, Batch: 128}, Options{})
			if populate {
				start := time.Now()
				if err := fs.ck.Populate(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/1e3, "populate-ms")
			}
			r := runDecode(b, fs, b.N, b)
			b.ReportMetric(r.tokPerSec, "tok/s")
			b.ReportMetric(r.floor, "floor-tok/s")
			b.ReportMetric(100*r.tokPerSec/r.floor, "%floor")
			b.ReportMetric(r.minorFaults, "minflt/token")
			b.ReportMetric(r.majorFaults, "majflt/token")
		})
	}
}
