//go:build darwin && arm64

package metal

// These tests need a Mac with an Apple Silicon GPU. They compile everywhere
// (GOOS=darwin GOARCH=arm64 go test -c) but have not been run by us. Where
// Open finds no usable device (a CI virtual machine's paravirtual GPU) they
// skip, unless MINERVA_REQUIRE_METAL=1 makes that a failure.
//
// Every result is checked against the same computation in Go. Inputs are
// small integers stored as float32, so sums are exact whatever order the GPU
// adds in, and results are compared for equality.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

func openTestDevice(t testing.TB) *Device {
	t.Helper()
	d, err := Open()
	if err != nil {
		if errors.Is(err, ErrUnsupported) && os.Getenv("MINERVA_REQUIRE_METAL") == "" {
			t.Skipf("no usable Metal device (set MINERVA_REQUIRE_METAL=1 to fail instead): %v", err)
		}
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(d.Close)
	return d
}

func compileTest(t testing.TB, d *Device, label, src string) *Library {
	t.Helper()
	lib, err := d.CompileLibrary(src, CompileOptions{Label: label})
	if err != nil {
		t.Fatalf("CompileLibrary: %v", err)
	}
	if log := lib.CompileLog(); log != "" {
		t.Logf("compiler warnings for %s:\n%s", label, log)
	}
	t.Cleanup(lib.Release)
	return lib
}

func newTestBuffer(t testing.TB, d *Device, n int) *Buffer {
	t.Helper()
	b, err := d.NewBuffer(n)
	if err != nil {
		t.Fatalf("NewBuffer(%d): %v", n, err)
	}
	t.Cleanup(b.Release)
	return b
}

// floats views a buffer's contents as float32s; Metal buffers are page-aligned.
func floats(b []byte) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(b))), len(b)/4)
}

func u32(v uint32) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(&v)), 4) }

// smallInt is the i-th test input: an integer in [-6, 6].
func smallInt(i int) float32 { return float32((i*7)%13 - 6) }

// run encodes with fill, commits, waits and fails the test on any error.
func run(t testing.TB, d *Device, label string, concurrent bool, fill func(e *Encoder)) *CommandBuffer {
	t.Helper()
	cb, err := d.NewCommandBuffer()
	if err != nil {
		t.Fatalf("NewCommandBuffer: %v", err)
	}
	t.Cleanup(cb.Release)
	cb.SetLabel(label)
	e := cb.ComputeEncoder(concurrent)
	e.SetLabel(label + ".compute")
	fill(e)
	if err := e.End(); err != nil {
		t.Fatalf("encoding: %v", err)
	}
	cb.Commit()
	cb.WaitUntilCompleted()
	if err := cb.Error(); err != nil {
		t.Fatalf("%s: %v", label, err)
	}
	return cb
}

func TestOpenAndInfo(t *testing.T) {
	d := openTestDevice(t)
	info := d.Info()
	t.Logf("\n%s", info)
	if info.Name == "" {
		t.Error("empty device name")
	}
	if !info.HasUnifiedMemory {
		t.Error("an Apple Silicon GPU reports hasUnifiedMemory = NO")
	}
	if info.AppleFamily < MinAppleFamily {
		t.Errorf("Open accepted GPU family %s", info.GPUFamily())
	}
	if info.MaxBufferLength == 0 || info.RecommendedMaxWorkingSetSize == 0 {
		t.Errorf("maxBufferLength %d, recommendedMaxWorkingSetSize %d", info.MaxBufferLength, info.RecommendedMaxWorkingSetSize)
	}
	// Apple's feature-set tables: 32 KiB of threadgroup memory from Apple4 on.
	if info.MaxThreadgroupMemoryLength < 32768 {
		t.Errorf("maxThreadgroupMemoryLength %d", info.MaxThreadgroupMemoryLength)
	}
	if info.OS.Major < 12 || info.MaxLanguageVersion == 0 {
		t.Errorf("macOS %s, newest MSL %s", info.OS, info.MaxLanguageVersion)
	}
}

const vectorAddSource = `
#include <metal_stdlib>
using namespace metal;

kernel void vadd(device const float *a [[buffer(0)]],
                 device const float *b [[buffer(1)]],
                 device float *c       [[buffer(2)]],
                 constant uint &n      [[buffer(3)]],
                 uint i [[thread_position_in_grid]]) {
    if (i < n) c[i] = a[i] + b[i];
}
`

func TestVectorAdd(t *testing.T) {
	d := openTestDevice(t)
	lib := compileTest(t, d, "vadd", vectorAddSource)
	p, err := lib.Pipeline("vadd")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := lib.Pipeline("vadd"); again != p {
		t.Error("Pipeline did not return the cached pipeline")
	}
	t.Logf("vadd: maxTotalThreadsPerThreadgroup %d, threadExecutionWidth %d", p.MaxTotalThreadsPerThreadgroup(), p.ThreadExecutionWidth())

	const n = 1000 // not a multiple of the threadgroup size
	a, b := newTestBuffer(t, d, 4*n), newTestBuffer(t, d, 4*n)
	c1, c2 := newTestBuffer(t, d, 4*n), newTestBuffer(t, d, 4*n)
	for i := range n {
		floats(a.Contents())[i] = float32(i) * 0.25
		floats(b.Contents())[i] = 1 / float32(i+1)
	}
	cb := run(t, d, "vadd", false, func(e *Encoder) {
		e.SetPipeline(p)
		e.SetBuffer(a, 0, 0)
		e.SetBuffer(b, 0, 1)
		e.SetBuffer(c1, 0, 2)
		e.SetBytes(u32(n), 3)
		e.Dispatch([3]int{(n + 255) / 256, 1, 1}, [3]int{256, 1, 1})
		e.SetBuffer(c2, 0, 2)
		e.DispatchThreads([3]int{n, 1, 1}, [3]int{64, 1, 1})
	})
	t.Logf("GPU time %v", cb.GPUDuration())
	for i := range n {
		want := floats(a.Contents())[i] + floats(b.Contents())[i] // one IEEE add, exact on both sides
		if got := floats(c1.Contents())[i]; got != want {
			t.Fatalf("Dispatch: c[%d] = %v, want %v", i, got, want)
		}
		if got := floats(c2.Contents())[i]; got != want {
			t.Fatalf("DispatchThreads: c[%d] = %v, want %v", i, got, want)
		}
	}
}

// blockSumSource sums each threadgroup's slice of x: simd_sum within each
// SIMD-group, the partial sums through threadgroup memory, then simd_sum of
// those in the first SIMD-group.
const blockSumSource = `
#include <metal_stdlib>
using namespace metal;

kernel void block_sum(device const float *x   [[buffer(0)]],
                      device float *out       [[buffer(1)]],
                      threadgroup float *part [[threadgroup(0)]],
                      uint tid   [[thread_index_in_threadgroup]],
                      uint group [[threadgroup_position_in_grid]],
                      uint size  [[threads_per_threadgroup]],
                      uint lane  [[thread_index_in_simdgroup]],
                      uint sg    [[simdgroup_index_in_threadgroup]],
                      uint nsg   [[simdgroups_per_threadgroup]]) {
    float s = simd_sum(x[group * size + tid]);
    if (lane == 0) part[sg] = s;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    if (sg == 0) {
        float t = simd_sum(lane < nsg ? part[lane] : 0.0f);
        if (lane == 0) out[group] = t;
    }
}
`

func TestSimdSumReduction(t *testing.T) {
	d := openTestDevice(t)
	p, err := compileTest(t, d, "block_sum", blockSumSource).Pipeline("block_sum")
	if err != nil {
		t.Fatal(err)
	}
	if w := p.ThreadExecutionWidth(); w != 32 {
		t.Logf("threadExecutionWidth is %d, not the 32 of every Apple GPU so far", w)
	}
	const groups, size = 64, 256
	x := newTestBuffer(t, d, 4*groups*size)
	partial := newTestBuffer(t, d, 4*groups)
	total := newTestBuffer(t, d, 16)
	var want float32
	wantPartial := make([]float32, groups)
	for i := range groups * size {
		v := smallInt(i)
		floats(x.Contents())[i] = v
		wantPartial[i/size] += v
		want += v
	}
	// Two dependent dispatches in one concurrent encoder: the barrier is what
	// makes the second see the first's writes.
	run(t, d, "block_sum", true, func(e *Encoder) {
		e.SetPipeline(p)
		e.SetThreadgroupMemoryLength(4*size/32, 0) // one float per SIMD-group: 32 bytes
		e.SetBuffer(x, 0, 0)
		e.SetBuffer(partial, 0, 1)
		e.Dispatch([3]int{groups, 1, 1}, [3]int{size, 1, 1})
		e.MemoryBarrier()
		e.SetBuffer(partial, 0, 0)
		e.SetBuffer(total, 0, 1)
		e.SetThreadgroupMemoryLength(16, 0) // 64 threads = 2 SIMD-groups: 8 bytes, rounded to 16
		e.Dispatch([3]int{1, 1, 1}, [3]int{groups, 1, 1})
	})
	for g := range groups {
		if got := floats(partial.Contents())[g]; got != wantPartial[g] {
			t.Fatalf("block %d: sum %v, want %v", g, got, wantPartial[g])
		}
	}
	if got := floats(total.Contents())[0]; got != want {
		t.Errorf("total %v, want %v", got, want)
	}
}

const scaleSource = `
#include <metal_stdlib>
using namespace metal;

kernel void scale2(device const float *x [[buffer(0)]],
                   device float *y       [[buffer(1)]],
                   uint i [[thread_position_in_grid]]) {
    y[i] = 2.0f * x[i];
}
`

func TestNoCopyBufferOverMmappedFile(t *testing.T) {
	d := openTestDevice(t)
	p, err := compileTest(t, d, "scale2", scaleSource).Pipeline("scale2")
	if err != nil {
		t.Fatal(err)
	}

	// A file whose length is not a multiple of the page size, like a
	// checkpoint: 3000 float32s = 12000 bytes.
	const n = 3000
	raw := make([]byte, 4*n)
	vals := floats(raw)
	for i := range vals {
		vals[i] = smallInt(i)
	}
	path := filepath.Join(t.TempDir(), "weights.bin")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, len(raw), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem) // after the buffer's Release below

	if _, err := d.NewBufferNoCopy(mem[4:]); err == nil || !strings.Contains(err.Error(), "page boundary") {
		t.Errorf("NewBufferNoCopy of an unaligned slice: %v", err)
	}

	in, err := d.NewBufferNoCopy(mem)
	if err != nil {
		t.Fatalf("NewBufferNoCopy: %v", err)
	}
	defer in.Release()
	if &in.Contents()[0] != &mem[0] {
		t.Error("the no-copy buffer's contents are not the mapped memory")
	}

	// Read a "tensor" that starts 4096 bytes into the file, as the dispatch
	// program will, through a buffer offset.
	const offset, m = 4096, (4*n - 4096) / 4
	out := newTestBuffer(t, d, 4*m)
	cb := run(t, d, "scale2", false, func(e *Encoder) {
		e.SetPipeline(p)
		e.SetBuffer(in, offset, 0)
		e.SetBuffer(out, 0, 1)
		e.DispatchThreads([3]int{m, 1, 1}, [3]int{128, 1, 1})
	})
	for i := range m {
		want := 2 * vals[offset/4+i]
		if got := floats(out.Contents())[i]; got != want {
			t.Fatalf("y[%d] = %v, want %v", i, got, want)
		}
	}
	// The command buffer holds the no-copy buffer; both go before the unmap.
	cb.Release()
}

func TestCompileErrorCarriesCompilerMessage(t *testing.T) {
	d := openTestDevice(t)
	src := strings.Replace(scaleSource, "2.0f * x[i]", "2.0f * undefined_name", 1)
	_, err := d.CompileLibrary(src, CompileOptions{Label: "broken"})
	if err == nil {
		t.Fatal("a kernel using an undeclared name compiled")
	}
	msg := err.Error()
	t.Logf("compile error: %s", msg)
	if !strings.HasPrefix(msg, `metal: compiling library "broken" (MSL 3.1): `) || !strings.Contains(msg, "undefined_name") {
		t.Errorf("the error does not carry the compiler's message: %s", msg)
	}
}

func TestMissingKernelListsTheLibrary(t *testing.T) {
	d := openTestDevice(t)
	lib := compileTest(t, d, "vadd", vectorAddSource)
	_, err := lib.Pipeline("vsub")
	want := `metal: library "vadd" has no kernel "vsub"; it has: vadd`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestCompileOptionsVariants(t *testing.T) {
	d := openTestDevice(t)
	versions := []LanguageVersion{MSL3_0, DefaultLanguageVersion}
	if v := d.Info().MaxLanguageVersion; v > DefaultLanguageVersion {
		versions = append(versions, v)
	}
	for _, v := range versions {
		for _, m := range []MathMode{MathSafe, MathRelaxed, MathFast} {
			lib, err := d.CompileLibrary(scaleSource, CompileOptions{LanguageVersion: v, Math: m})
			if err != nil {
				t.Errorf("MSL %s, math %s: %v", v, m, err)
				continue
			}
			if _, err := lib.Pipeline("scale2"); err != nil {
				t.Errorf("MSL %s, math %s: %v", v, m, err)
			}
			lib.Release()
		}
	}
	// A version newer than this macOS: a clear error, not an Objective-C exception.
	if _, err := d.CompileLibrary(scaleSource, CompileOptions{LanguageVersion: 9 << 16}); err == nil {
		t.Error("MSL 9.0 was accepted")
	}
}

func TestMisuseIsReportedNotCrashed(t *testing.T) {
	d := openTestDevice(t)
	cb, err := d.NewCommandBuffer()
	if err != nil {
		t.Fatal(err)
	}
	cb.SetLabel("misuse")
	e := cb.ComputeEncoder(false)
	e.SetLabel("left open")
	second := cb.ComputeEncoder(false) // Metal allows one open encoder
	if second.Err() == nil {
		t.Error("a second open encoder was allowed")
	}
	cb.Commit() // with the first still open: refused
	cb.WaitUntilCompleted()
	if err := cb.Error(); err == nil || !strings.Contains(err.Error(), "is open") {
		t.Errorf("Error() = %v", err)
	}
	cb.Release() // ends the open encoder first; Metal would abort otherwise
	if e.Err() != nil {
		t.Errorf("the open encoder reports %v", e.Err())
	}
}

func TestLoadLibraryMissingFile(t *testing.T) {
	d := openTestDevice(t)
	_, err := d.LoadLibrary(filepath.Join(t.TempDir(), "none.metallib"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("LoadLibrary of a missing file: %v", err)
	}
}

// BenchmarkEncodeDispatch measures the host cost of encoding one dispatch
// (pipeline, three buffers, small bytes, dispatch), the per-kernel overhead
// of a decode step. The GPU work is trivial.
func BenchmarkEncodeDispatch(b *testing.B) {
	d := openTestDevice(b)
	p, err := compileTest(b, d, "vadd", vectorAddSource).Pipeline("vadd")
	if err != nil {
		b.Fatal(err)
	}
	x, y, z := newTestBuffer(b, d, 4096), newTestBuffer(b, d, 4096), newTestBuffer(b, d, 4096)
	const perCommandBuffer = 1000
	b.ResetTimer()
	for done := 0; done < b.N; {
		cb, err := d.NewCommandBuffer()
		if err != nil {
			b.Fatal(err)
		}
		e := cb.ComputeEncoder(true)
		for i := 0; i < perCommandBuffer && done < b.N; i, done = i+1, done+1 {
			e.SetPipeline(p)
			e.SetBuffer(x, 0, 0)
			e.SetBuffer(y, 0, 1)
			e.SetBuffer(z, 0, 2)
			e.SetBytes(u32(1024), 3)
			e.Dispatch([3]int{4, 1, 1}, [3]int{256, 1, 1})
		}
		if err := e.End(); err != nil {
			b.Fatal(err)
		}
		cb.Commit()
		cb.WaitUntilCompleted()
		if err := cb.Error(); err != nil {
			b.Fatal(err)
		}
		cb.Release()
	}
}
