package mslemu

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/minerva-ml/minerva/internal/msl"
)

func buf(name string, index int, typ string) Param {
	return Param{Name: name, Kind: ParamBuffer, Index: index, Type: typ}
}

func tgmem(name string, index int, typ string) Param {
	return Param{Name: name, Kind: ParamThreadgroupMem, Index: index, Type: typ}
}

func attr(name, attribute, typ string) Param {
	return Param{Name: name, Kind: ParamAttr, Attr: attribute, AttrType: typ}
}

// testKernels describes testdata/kernels.metal, as the code generator
// would.
var testKernels = []Kernel{
	{Name: "tg_sum", Params: []Param{
		buf("in", 0, "device const float*"), buf("out", 1, "device float*"), tgmem("shared", 0, "threadgroup float*"),
		attr("tid", "thread_index_in_threadgroup", "uint"), attr("tgid", "threadgroup_position_in_grid", "uint"),
		attr("ntg", "threads_per_threadgroup", "uint"),
	}},
	{Name: "bug_sum_no_barrier", Params: []Param{
		buf("in", 0, "device const float*"), buf("out", 1, "device float*"), tgmem("shared", 0, "threadgroup float*"),
		attr("tid", "thread_index_in_threadgroup", "uint"), attr("tgid", "threadgroup_position_in_grid", "uint"),
		attr("ntg", "threads_per_threadgroup", "uint"),
	}},
	{Name: "bug_divergent_barrier", Params: []Param{
		buf("out", 0, "device float*"), tgmem("shared", 0, "threadgroup float*"), attr("tid", "thread_index_in_threadgroup", "uint"),
	}},
	{Name: "bug_split_barrier", Params: []Param{buf("out", 0, "device float*"), attr("tid", "thread_index_in_threadgroup", "uint")}},
	{Name: "bug_return_before_barrier", Params: []Param{
		buf("out", 0, "device float*"), buf("n", 1, "constant uint&"), attr("tid", "thread_index_in_threadgroup", "uint"),
	}},
	{Name: "bug_uninitialised_tg", Params: []Param{
		buf("out", 0, "device float*"), tgmem("shared", 0, "threadgroup float*"), attr("tid", "thread_index_in_threadgroup", "uint"),
	}},
	{Name: "simd_ops", Params: []Param{
		buf("in", 0, "device const float*"), buf("out", 1, "device float*"),
		attr("gid", "thread_position_in_grid", "uint"), attr("lane", "thread_index_in_simdgroup", "uint"),
	}},
	{Name: "simd_sum_even_lanes", Params: []Param{
		buf("in", 0, "device const int*"), buf("out", 1, "device int*"), attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "bug_simd_divergence", Params: []Param{buf("out", 0, "device float*"), attr("lane", "thread_index_in_simdgroup", "uint")}},
	{Name: "bug_simd_vs_barrier", Params: []Param{buf("out", 0, "device float*"), attr("lane", "thread_index_in_simdgroup", "uint")}},
	{Name: "bug_simd_nonuniform_delta", Params: []Param{buf("out", 0, "device float*"), attr("lane", "thread_index_in_simdgroup", "uint")}},
	{Name: "half_bits_to_float", Params: []Param{
		buf("in", 0, "device const ushort*"), buf("out", 1, "device float*"), buf("roundtrip", 2, "device ushort*"),
		attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "float_to_half_bits", Params: []Param{
		buf("in", 0, "device const float*"), buf("out", 1, "device ushort*"), attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "bfloat_bits_to_float", Params: []Param{
		buf("in", 0, "device const ushort*"), buf("out", 1, "device float*"), buf("roundtrip", 2, "device ushort*"),
		attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "float_to_bfloat_bits", Params: []Param{
		buf("in", 0, "device const float*"), buf("out", 1, "device ushort*"), attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "half_arith", Params: []Param{
		buf("a", 0, "device const half*"), buf("b", 1, "device const half*"), buf("sum", 2, "device half*"),
		buf("prod", 3, "device half*"), buf("mixed", 4, "device float*"), attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "vector_ops", Params: []Param{
		buf("args", 0, "constant VecArgs&"), buf("out", 1, "device float*"), buf("bits", 2, "device uint*"),
	}},
	{Name: "math_ops", Params: []Param{
		buf("in", 0, "device const float*"), buf("out", 1, "device float*"), attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "simd_barrier_exchange", Params: []Param{
		buf("out", 0, "device float*"), tgmem("shared", 0, "threadgroup float*"),
		attr("tid", "thread_index_in_threadgroup", "uint"), attr("lane", "thread_index_in_simdgroup", "uint"),
	}},
	{Name: "atomic_count", Params: []Param{
		buf("counter", 0, "device atomic_uint*"), buf("maxid", 1, "device atomic_int*"), buf("fsum", 2, "device atomic_float*"),
		buf("tidsum", 3, "device atomic_uint*"),
		attr("gid", "thread_position_in_grid", "uint"), attr("tid", "thread_index_in_threadgroup", "uint"),
	}},
	{Name: "atomic_cas_lock", Params: []Param{
		buf("lock", 0, "device atomic_uint*"), buf("value", 1, "device uint*"), attr("tid", "thread_index_in_threadgroup", "uint"),
	}},
	{Name: "matmul_simdgroup", Params: []Param{
		buf("A", 0, "device const float*"), buf("B", 1, "device const float*"), buf("BT", 2, "device const float*"),
		buf("C", 3, "device float*"), buf("CT", 4, "device float*"),
	}},
	{Name: "matmul_half", Params: []Param{
		buf("A", 0, "device const half*"), buf("B", 1, "device const half*"), buf("C", 2, "device float*"),
	}},
	{Name: "bug_matrix_args", Params: []Param{
		buf("A", 0, "device const float*"), buf("C", 1, "device float*"), attr("lane", "thread_index_in_simdgroup", "uint"),
	}},
	{Name: "positions", Params: []Param{
		buf("out", 0, "device uint*"),
		attr("tpig", "thread_position_in_grid", "uint3"), attr("tgpig", "threadgroup_position_in_grid", "uint3"),
		attr("tpitg", "thread_position_in_threadgroup", "uint3"), attr("tptg", "threads_per_threadgroup", "uint3"),
		attr("tgpg", "threadgroups_per_grid", "uint3"), attr("tpg", "threads_per_grid", "uint3"),
		attr("tiitg", "thread_index_in_threadgroup", "uint"), attr("sgitg", "simdgroup_index_in_threadgroup", "ushort"),
		attr("tiisg", "thread_index_in_simdgroup", "ushort"), attr("sgptg", "simdgroups_per_threadgroup", "uint"),
		attr("dtptg", "dispatch_threads_per_threadgroup", "uint3"),
	}},
	{Name: "run_order", Params: []Param{
		buf("next", 0, "device atomic_uint*"), buf("order", 1, "device uint*"), attr("tid", "thread_index_in_threadgroup", "uint"),
	}},
	{Name: "bug_out_of_bounds", Params: []Param{buf("out", 0, "device float*"), attr("gid", "thread_position_in_grid", "uint")}},
	{Name: "bug_stack_overflow", Params: []Param{buf("sink", 0, "device int*")}},
	{Name: "bug_divide_by_zero", Params: []Param{buf("out", 0, "device int*"), buf("d", 1, "constant int&")}},
	{Name: "small_kernel", MaxTotalThreadsPerThreadgroup: 64, Params: []Param{
		buf("out", 0, "device float*"), attr("gid", "thread_position_in_grid", "uint"),
	}},
	{Name: "bug_endless_loop", Params: []Param{buf("out", 0, "device volatile float*")}},
	{Name: "empty", Params: []Param{buf("out", 0, "device float*")}},
	{Name: "barriers", Params: []Param{
		buf("out", 0, "device float*"), tgmem("shared", 0, "threadgroup float*"),
		attr("tid", "thread_index_in_threadgroup", "uint"), attr("ntg", "threads_per_threadgroup", "uint"),
	}},
}

// needCompiler skips the test when no C++ compiler is installed.
func needCompiler(tb testing.TB) {
	tb.Helper()
	if _, err := compilerPath(); err != nil {
		tb.Skipf("skipping: %v", err)
	}
}

var (
	testCacheOnce sync.Once
	testCacheDir  string
	testExeOnce   sync.Once
	testExe       string
	testExeErr    error
)

// testCache is a build cache shared by the tests of one `go test` run, so
// that the driver object is compiled once.
func testCache(tb testing.TB) string {
	testCacheOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mslemu-test-cache-")
		if err != nil {
			panic(err)
		}
		testCacheDir = dir
	})
	return testCacheDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testCacheDir != "" {
		os.RemoveAll(testCacheDir)
	}
	os.Exit(code)
}

// testDriver builds testdata/kernels.metal once per run.
func testDriver(tb testing.TB) string {
	tb.Helper()
	needCompiler(tb)
	testExeOnce.Do(func() {
		src, err := os.ReadFile(filepath.Join("testdata", "kernels.metal"))
		if err != nil {
			testExeErr = err
			return
		}
		if err := msl.Lint(string(src)); err != nil {
			testExeErr = err
			return
		}
		glue, err := Glue(testKernels)
		if err != nil {
			testExeErr = err
			return
		}
		testExe, testExeErr = Build(string(src), glue, testCache(tb))
	})
	if testExeErr != nil {
		tb.Fatal(testExeErr)
	}
	return testExe
}

// testDevice starts a driver for testdata/kernels.metal with two workers
// (so that threadgroups run concurrently even on one core) and closes it
// when the test ends.
func testDevice(tb testing.TB) *Device {
	tb.Helper()
	dev, err := StartWithOptions(testDriver(tb), Options{Workers: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dev.Close() })
	return dev
}

func newBuffer(tb testing.TB, dev *Device, size int) *Buffer {
	tb.Helper()
	b, err := dev.NewBuffer(size)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func putFloats(b *Buffer, v []float32) {
	for i, x := range v {
		binary.LittleEndian.PutUint32(b.Bytes()[4*i:], math.Float32bits(x))
	}
}

func floats(b *Buffer, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b.Bytes()[4*i:]))
	}
	return v
}

func uints(b *Buffer, n int) []uint32 {
	v := make([]uint32, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(b.Bytes()[4*i:])
	}
	return v
}

func u16s(b *Buffer, n int) []uint16 {
	v := make([]uint16, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint16(b.Bytes()[2*i:])
	}
	return v
}

func bytesOf(v ...uint32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], x)
	}
	return out
}

func grid(x, y, z int) [3]int { return [3]int{x, y, z} }
