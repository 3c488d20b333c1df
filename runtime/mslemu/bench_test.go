package mslemu

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkDispatchEmpty measures the round trip of one dispatch of a
// kernel that does nothing: one threadgroup of one thread.
func BenchmarkDispatchEmpty(b *testing.B) {
	dev := testDevice(b)
	out := newBuffer(b, dev, 16)
	d := Dispatch{Kernel: "empty", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(1, 1, 1), Buffers: []Binding{{Index: 0, Buffer: out}}}
	for b.Loop() {
		if err := dev.Dispatch(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkThreadsPerSecond runs a trivial kernel over 256 threadgroups of
// 256 threads and reports the cost per thread (fiber start and finish).
func BenchmarkThreadsPerSecond(b *testing.B) {
	dev := testDevice(b)
	const groups, n = 256, 256
	out := newBuffer(b, dev, 4*groups*n)
	d := Dispatch{Kernel: "positions", Threadgroups: grid(groups, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1), Buffers: []Binding{{Index: 0, Buffer: out}}}
	out = newBuffer(b, dev, 4*25*groups*n)
	d.Buffers[0].Buffer = out
	for b.Loop() {
		if err := dev.Dispatch(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(groups*n), "ns/thread")
}

// barrierBench runs 1024 threads through 200 barriers and reports the cost
// of one fiber resumption (a switch in and a switch out, plus scheduling).
func barrierBench(b *testing.B, exe string) {
	dev, err := StartWithOptions(exe, Options{Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	const n = 1024
	out := newBuffer(b, dev, 4*n)
	d := Dispatch{Kernel: "barriers", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}, ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 4 * n}}}
	for b.Loop() {
		if err := dev.Dispatch(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(n*201), "ns/resume")
}

func BenchmarkBarrierResume(b *testing.B) { barrierBench(b, testDriver(b)) }

// BenchmarkBarrierResumeUcontext is BenchmarkBarrierResume with the
// driver's ucontext fallback, whose swapcontext makes a system call.
func BenchmarkBarrierResumeUcontext(b *testing.B) {
	needCompiler(b)
	src, err := os.ReadFile(filepath.Join("testdata", "kernels.metal"))
	if err != nil {
		b.Fatal(err)
	}
	glue, err := Glue(testKernels)
	if err != nil {
		b.Fatal(err)
	}
	driverDefines = []string{"-DMSLEMU_UCONTEXT"}
	exe, err := Build(string(src), glue, testCache(b))
	driverDefines = nil
	if err != nil {
		b.Fatal(err)
	}
	barrierBench(b, exe)
}

// BenchmarkSimdOps runs simd_ops (12 SIMD-group functions per thread) on
// 1024 threads and reports the cost of one SIMD-group function per lane.
func BenchmarkSimdOps(b *testing.B) {
	dev := testDevice(b)
	const n = 1024
	in := newBuffer(b, dev, 4*n)
	out := newBuffer(b, dev, 4*12*n)
	d := Dispatch{Kernel: "simd_ops", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}}}
	for b.Loop() {
		if err := dev.Dispatch(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(n*13), "ns/lane-op")
}
