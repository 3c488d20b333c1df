package mslemu

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// lineOf returns the 1-based line of the first line of
// testdata/kernels.metal that contains text, after the line containing
// after.
func lineOf(t *testing.T, after, text string) int {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "kernels.metal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	n, seen := 0, after == ""
	for s.Scan() {
		n++
		if !seen {
			seen = strings.Contains(s.Text(), after)
			continue
		}
		if strings.Contains(s.Text(), text) {
			return n
		}
	}
	t.Fatalf("no line %q after %q in kernels.metal", text, after)
	return 0
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q\ndoes not contain %q", err, p)
		}
	}
}

func sumInput(dev *Device, t *testing.T, groups, n int) (*Buffer, []float64) {
	in := newBuffer(t, dev, 4*groups*n)
	v := make([]float32, groups*n)
	want := make([]float64, groups)
	for i := range v {
		v[i] = float32((i*7919)%1000) / 8 // exact in float32, sums exact
		want[i/n] += float64(v[i])
	}
	putFloats(in, v)
	return in, want
}

func TestThreadgroupReduction(t *testing.T) {
	dev := testDevice(t)
	const groups, n = 6, 1024
	in, want := sumInput(dev, t, groups, n)
	out := newBuffer(t, dev, 4*groups)
	for _, seed := range []uint64{1, 2, 3} {
		err := dev.Dispatch(Dispatch{
			Kernel: "tg_sum", Threadgroups: grid(groups, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
			Buffers:           []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}},
			ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 4 * n}},
			Seed:              seed,
		})
		if err != nil {
			t.Fatal(err)
		}
		for g, got := range floats(out, groups) {
			if float64(got) != want[g] {
				t.Errorf("seed %d: threadgroup %d sum = %v, want %v", seed, g, got, want[g])
			}
		}
	}
}

// A missing barrier lets a thread read a slot its neighbour has not written
// yet; with threadgroup memory poisoned and threads in shuffled order, that
// read sees NaN.
func TestMissingBarrierIsCaught(t *testing.T) {
	dev := testDevice(t)
	const groups, n = 4, 256
	in, want := sumInput(dev, t, groups, n)
	out := newBuffer(t, dev, 4*groups)
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		err := dev.Dispatch(Dispatch{
			Kernel: "bug_sum_no_barrier", Threadgroups: grid(groups, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
			Buffers:           []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}},
			ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 4 * n}},
			Seed:              seed,
		})
		if err != nil {
			t.Fatal(err)
		}
		for g, got := range floats(out, groups) {
			if !math.IsNaN(float64(got)) {
				t.Errorf("seed %d: threadgroup %d sum = %v (want %v from a correct kernel); the missing barrier went unnoticed", seed, g, got, want[g])
			}
		}
	}
}

func TestUninitialisedThreadgroupMemoryIsNaN(t *testing.T) {
	dev := testDevice(t)
	out := newBuffer(t, dev, 4*64)
	err := dev.Dispatch(Dispatch{
		Kernel: "bug_uninitialised_tg", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(64, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}, ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 256}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range floats(out, 64) {
		if !math.IsNaN(float64(v)) {
			t.Fatalf("thread %d read %v from unwritten threadgroup memory, want NaN", i, v)
		}
	}
}

func TestBarrierDivergence(t *testing.T) {
	dev := testDevice(t)
	out := newBuffer(t, dev, 4*64)
	line := lineOf(t, "if (tid < 16) {", "threadgroup_barrier")
	err := dev.Dispatch(Dispatch{
		Kernel: "bug_divergent_barrier", Threadgroups: grid(2, 1, 1), ThreadsPerThreadgroup: grid(64, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}, ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 256}},
	})
	wantErr(t, err,
		"mslemu: kernel bug_divergent_barrier: threadgroup (0,0,0): barrier divergence: ",
		fmt.Sprintf("threads 0-15 wait at threadgroup_barrier (kernels.metal:%d)", line),
		"threads 16-63 have returned")

	// The device survives a kernel error.
	checkDeviceWorks(t, dev)
}

// checkDeviceWorks checks that dev still computes correctly.
func checkDeviceWorks(t *testing.T, dev *Device) {
	t.Helper()
	if dev == nil {
		return
	}
	in, want := sumInput(dev, t, 1, 64)
	out := newBuffer(t, dev, 4)
	err := dev.Dispatch(Dispatch{
		Kernel: "tg_sum", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(64, 1, 1),
		Buffers:           []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}},
		ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 256}},
	})
	if err != nil {
		t.Fatalf("the device does not work after an error: %v", err)
	}
	if got := floats(out, 1)[0]; float64(got) != want[0] {
		t.Fatalf("after an error, sum = %v, want %v", got, want[0])
	}
}

func TestSplitBarrierIsDivergence(t *testing.T) {
	dev := testDevice(t)
	out := newBuffer(t, dev, 4*32)
	even := lineOf(t, "if (tid % 2 == 0) {", "threadgroup_barrier")
	odd := lineOf(t, "} else {", "threadgroup_barrier")
	err := dev.Dispatch(Dispatch{
		Kernel: "bug_split_barrier", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(8, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}},
	})
	wantErr(t, err, "barrier divergence",
		fmt.Sprintf("threads 0, 2, 4, 6 wait at threadgroup_barrier (kernels.metal:%d)", even),
		fmt.Sprintf("threads 1, 3, 5, 7 wait at threadgroup_barrier (kernels.metal:%d)", odd))
}

func TestReturnBeforeBarrier(t *testing.T) {
	dev := testDevice(t)
	out := newBuffer(t, dev, 4*128)
	bind := []Binding{{Index: 0, Buffer: out}, {Index: 1, Bytes: bytesOf(100)}}
	err := dev.Dispatch(Dispatch{Kernel: "bug_return_before_barrier", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(128, 1, 1), Buffers: bind})
	wantErr(t, err, "barrier divergence", "threads 0-99 wait at threadgroup_barrier", "threads 100-127 have returned")
	// With n covering the threadgroup, the same kernel is correct.
	bind[1].Bytes = bytesOf(128)
	if err := dev.Dispatch(Dispatch{Kernel: "bug_return_before_barrier", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(128, 1, 1), Buffers: bind}); err != nil {
		t.Fatal(err)
	}
}

// A correct kernel gives the same result whatever order its threads run in.
func TestSeedsAgreeOnCorrectKernel(t *testing.T) {
	dev := testDevice(t)
	const n = 96 // three SIMD-groups
	in := newBuffer(t, dev, 4*n)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((i*37)%41) - 20
	}
	putFloats(in, v)
	var first []float32
	for _, seed := range []uint64{7, 8} {
		out := newBuffer(t, dev, 4*12*n)
		err := dev.Dispatch(Dispatch{Kernel: "simd_ops", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
			Buffers: []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}}, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		got := floats(out, 12*n)
		if first == nil {
			first = got
			continue
		}
		for i := range got {
			if got[i] != first[i] && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(first[i]))) {
				t.Fatalf("output %d differs between seeds: %v vs %v", i, first[i], got[i])
			}
		}
	}
}

func TestRunOrderIsShuffledAndSeeded(t *testing.T) {
	dev := testDevice(t)
	const n = 256
	order := func(seed uint64) []uint32 {
		next := newBuffer(t, dev, 4)
		out := newBuffer(t, dev, 4*n)
		err := dev.Dispatch(Dispatch{Kernel: "run_order", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
			Buffers: []Binding{{Index: 0, Buffer: next}, {Index: 1, Buffer: out}}, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return uints(out, n)
	}
	a, a2, b := order(1), order(1), order(2)
	seen := make([]bool, n)
	inOrder := 0
	for i, tid := range a {
		if tid >= n || seen[tid] {
			t.Fatalf("run order %v is not a permutation", a)
		}
		seen[tid] = true
		if tid == uint32(i) {
			inOrder++
		}
		if a2[i] != tid {
			t.Fatalf("the same seed gave different orders at %d: %d vs %d", i, tid, a2[i])
		}
	}
	if inOrder > n/8 {
		t.Errorf("%d of %d threads ran in index order; the order is not shuffled", inOrder, n)
	}
	same := 0
	for i := range a {
		if a[i] == b[i] {
			same++
		}
	}
	if same > n/8 {
		t.Errorf("seeds 1 and 2 agree on %d of %d positions", same, n)
	}
}

// simdRef computes simd_ops' 12 outputs for one SIMD-group of lanes
// (len(x) <= 32; lanes past len(x) do not exist).
func simdRef(x []float32) [][12]float32 {
	w := len(x)
	nan := float32(math.Float32frombits(0xffffffff))
	get := func(l int) float32 {
		if l < 0 || l >= w {
			return nan
		}
		return x[l]
	}
	var sum, maxv, minv float32
	maxv, minv = x[0], x[0]
	var ballot uint32
	all, any := true, false
	for l, v := range x {
		sum += v
		maxv = max(maxv, v)
		minv = min(minv, v)
		if v > 10 {
			ballot |= 1 << l
		}
		all = all && v >= 0
		any = any || v > 30
	}
	out := make([][12]float32, w)
	var prefix float32
	for l := range x {
		o := &out[l]
		o[0], o[1], o[2] = sum, maxv, minv
		if l+3 >= 32 {
			o[3] = x[l]
		} else {
			o[3] = get(l + 3)
		}
		o[4] = prefix
		prefix += x[l]
		o[5] = prefix
		o[6] = get((l * 7) % 32)
		o[7] = get(l ^ 5)
		o[8] = get(9)
		if l < 2 {
			o[9] = x[l]
		} else {
			o[9] = get(l - 2)
		}
		o[10] = float32(ballot & 0xffff)
		if all {
			o[10] += 0.5
		}
		if any {
			o[10] += 0.25
		}
		o[11] = -1
		if l == 0 {
			o[11] = x[0]
		}
	}
	return out
}

func TestSimdFunctions(t *testing.T) {
	dev := testDevice(t)
	// 80 threads: two full SIMD-groups and a partial one of 16 lanes.
	const n = 80
	in := newBuffer(t, dev, 4*n)
	x := make([]float32, n)
	for i := range x {
		x[i] = float32((i*13)%37) - 3
	}
	putFloats(in, x)
	out := newBuffer(t, dev, 4*12*n)
	err := dev.Dispatch(Dispatch{Kernel: "simd_ops", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := floats(out, 12*n)
	names := []string{"simd_sum", "simd_max", "simd_min", "simd_shuffle_down", "simd_prefix_exclusive_sum",
		"simd_prefix_inclusive_sum", "simd_shuffle", "simd_shuffle_xor", "simd_broadcast", "simd_shuffle_up",
		"simd_ballot/all/any", "simd_is_first/broadcast_first"}
	for base := 0; base < n; base += 32 {
		ref := simdRef(x[base:min(base+32, n)])
		for l, want := range ref {
			for k := range want {
				g := got[(base+l)*12+k]
				if g != want[k] && !(math.IsNaN(float64(g)) && math.IsNaN(float64(want[k]))) {
					t.Errorf("thread %d %s = %v, want %v", base+l, names[k], g, want[k])
				}
			}
		}
	}
}

func TestSimdSumSkipsReturnedLanes(t *testing.T) {
	dev := testDevice(t)
	const n = 64
	in := newBuffer(t, dev, 4*n)
	out := newBuffer(t, dev, 4*n)
	vals := make([]uint32, n)
	for i := range vals {
		vals[i] = uint32(i * i)
	}
	copy(in.Bytes(), bytesOf(vals...))
	if err := dev.Dispatch(Dispatch{Kernel: "simd_sum_even_lanes", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}}}); err != nil {
		t.Fatal(err)
	}
	got := uints(out, n)
	for g := 0; g < n; g += 32 {
		var want uint32
		for l := g; l < g+32; l += 2 {
			want += vals[l]
		}
		for l := g; l < g+32; l += 2 {
			if got[l] != want {
				t.Errorf("lane %d: simd_sum over even lanes = %d, want %d", l, got[l], want)
			}
		}
	}
}

func TestSimdDivergence(t *testing.T) {
	dev := testDevice(t)
	out := newBuffer(t, dev, 4*32)
	sum := lineOf(t, "kernel void bug_simd_divergence", "simd_sum")
	mx := lineOf(t, "kernel void bug_simd_divergence", "simd_max")
	err := dev.Dispatch(Dispatch{Kernel: "bug_simd_divergence", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}})
	wantErr(t, err, "kernel bug_simd_divergence", "SIMD-group divergence in simdgroup 0",
		fmt.Sprintf("simd_sum (kernels.metal:%d)", sum), fmt.Sprintf("simd_max (kernels.metal:%d)", mx))

	err = dev.Dispatch(Dispatch{Kernel: "bug_simd_vs_barrier", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}})
	wantErr(t, err, "SIMD-group divergence in simdgroup 0: lanes 0-7 wait at simd_sum",
		"lanes 8-31 wait at threadgroup_barrier")

	err = dev.Dispatch(Dispatch{Kernel: "bug_simd_nonuniform_delta", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}})
	wantErr(t, err, "simd_shuffle_down: delta differs between lanes")
}

func TestThreadPositions(t *testing.T) {
	dev := testDevice(t)
	type dispatch struct {
		name            string
		tgs, tpt, grid  [3]int
		uniformGridSize [3]int
	}
	for _, c := range []dispatch{
		{name: "threadgroups", tgs: grid(2, 3, 2), tpt: grid(4, 2, 5)},
		{name: "threads", grid: grid(10, 5, 3), tpt: grid(4, 4, 2)},
	} {
		t.Run(c.name, func(t *testing.T) {
			gridThreads := c.grid
			tgs := c.tgs
			if c.grid == ([3]int{}) {
				gridThreads = [3]int{c.tgs[0] * c.tpt[0], c.tgs[1] * c.tpt[1], c.tgs[2] * c.tpt[2]}
			} else {
				for d := range tgs {
					tgs[d] = (c.grid[d] + c.tpt[d] - 1) / c.tpt[d]
				}
			}
			total := gridThreads[0] * gridThreads[1] * gridThreads[2]
			out := newBuffer(t, dev, 4*25*total)
			for i := range out.Bytes() {
				out.Bytes()[i] = 0xee
			}
			err := dev.Dispatch(Dispatch{Kernel: "positions", Threadgroups: c.tgs, Threads: c.grid, ThreadsPerThreadgroup: c.tpt,
				Buffers: []Binding{{Index: 0, Buffer: out}}, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			got := uints(out, 25*total)
			for z := 0; z < gridThreads[2]; z++ {
				for y := 0; y < gridThreads[1]; y++ {
					for x := 0; x < gridThreads[0]; x++ {
						p := [3]int{x, y, z}
						var tg, pos, size [3]int
						for d := 0; d < 3; d++ {
							tg[d] = p[d] / c.tpt[d]
							pos[d] = p[d] % c.tpt[d]
							size[d] = min(c.tpt[d], gridThreads[d]-tg[d]*c.tpt[d])
						}
						index := (pos[2]*size[1]+pos[1])*size[0] + pos[0]
						nthreads := size[0] * size[1] * size[2]
						want := []int{}
						for _, v := range [][3]int{p, tg, pos, size, tgs, gridThreads} {
							want = append(want, v[0], v[1], v[2])
						}
						want = append(want, index, index/32, index%32, (nthreads+31)/32, c.tpt[0], c.tpt[1], c.tpt[2])
						linear := (z*gridThreads[1]+y)*gridThreads[0] + x
						for i, w := range want {
							if got[linear*25+i] != uint32(w) {
								t.Fatalf("thread %v: attribute value %d = %d, want %d (all: %v)", p, i, got[linear*25+i], w, want)
							}
						}
					}
				}
			}
		})
	}
}

func TestAtomicsAcrossThreadgroups(t *testing.T) {
	dev := testDevice(t)
	const groups, n = 64, 256
	bufs := make([]*Buffer, 4)
	for i := range bufs {
		bufs[i] = newBuffer(t, dev, 4)
	}
	binds := make([]Binding, 4)
	for i := range binds {
		binds[i] = Binding{Index: i, Buffer: bufs[i]}
	}
	if err := dev.Dispatch(Dispatch{Kernel: "atomic_count", Threadgroups: grid(groups, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1), Buffers: binds}); err != nil {
		t.Fatal(err)
	}
	if got := uints(bufs[0], 1)[0]; got != groups*n {
		t.Errorf("counter = %d, want %d", got, groups*n)
	}
	if got := uints(bufs[1], 1)[0]; got != groups*n-1 {
		t.Errorf("max = %d, want %d", got, groups*n-1)
	}
	if got := floats(bufs[2], 1)[0]; got != float32(groups*n)/2 {
		t.Errorf("float sum = %v, want %v", got, groups*n/2)
	}
	if got := uints(bufs[3], 1)[0]; got != groups*(n*(n-1)/2) {
		t.Errorf("tid sum = %d, want %d", got, groups*(n*(n-1)/2))
	}

	lock, value := newBuffer(t, dev, 4), newBuffer(t, dev, 4)
	if err := dev.Dispatch(Dispatch{Kernel: "atomic_cas_lock", Threadgroups: grid(300, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: lock}, {Index: 1, Buffer: value}}}); err != nil {
		t.Fatal(err)
	}
	if got := uints(value, 1)[0]; got != 300 {
		t.Errorf("value guarded by a compare-exchange lock = %d, want 300", got)
	}
}

func TestSimdgroupMatrix(t *testing.T) {
	dev := testDevice(t)
	const n = 16
	a, b, bt := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			a[i*n+j] = float32((i*5+j*3)%7 - 3)
			b[i*n+j] = float32((i*2+j*7)%9 - 4)
		}
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			bt[j*n+i] = b[i*n+j]
		}
	}
	want := make([]float32, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for k := 0; k < n; k++ {
				s += a[i*n+k] * b[k*n+j]
			}
			want[i*n+j] = s
		}
	}
	bufs := make([]*Buffer, 5)
	binds := make([]Binding, 5)
	for i := range bufs {
		bufs[i] = newBuffer(t, dev, 4*n*n)
		binds[i] = Binding{Index: i, Buffer: bufs[i]}
	}
	putFloats(bufs[0], a)
	putFloats(bufs[1], b)
	putFloats(bufs[2], bt)
	if err := dev.Dispatch(Dispatch{Kernel: "matmul_simdgroup", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1), Buffers: binds}); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]float32{"C": floats(bufs[3], n*n), "C from transposed B": floats(bufs[4], n*n)} {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s[%d][%d] = %v, want %v", name, i/n, i%n, got[i], want[i])
			}
		}
	}

	// half inputs.
	ha, hb := newBuffer(t, dev, 2*64), newBuffer(t, dev, 2*64)
	hc := newBuffer(t, dev, 4*64)
	wantH := make([]float32, 64)
	for i := 0; i < 64; i++ {
		putHalf(ha, i, float64(a[i]))
		putHalf(hb, i, float64(b[i])/2)
	}
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			for k := 0; k < 8; k++ {
				wantH[i*8+j] += a[i*8+k] * b[k*8+j] / 2
			}
		}
	}
	if err := dev.Dispatch(Dispatch{Kernel: "matmul_half", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: ha}, {Index: 1, Buffer: hb}, {Index: 2, Buffer: hc}}}); err != nil {
		t.Fatal(err)
	}
	for i, g := range floats(hc, 64) {
		if g != wantH[i] {
			t.Fatalf("half C[%d][%d] = %v, want %v", i/8, i%8, g, wantH[i])
		}
	}

	err := dev.Dispatch(Dispatch{Kernel: "bug_matrix_args", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: bufs[0]}, {Index: 1, Buffer: bufs[3]}}})
	wantErr(t, err, "kernel bug_matrix_args", "simdgroup_load: lanes", "pass different arguments")
}

// putHalf stores v, which must be exactly representable, as binary16.
func putHalf(b *Buffer, i int, v float64) {
	bits := roundToHalf(v)
	b.Bytes()[2*i] = byte(bits)
	b.Bytes()[2*i+1] = byte(bits >> 8)
}

func TestFaultsAreReported(t *testing.T) {
	dev := testDevice(t)
	out := newBuffer(t, dev, 4*64)
	err := dev.Dispatch(Dispatch{Kernel: "bug_out_of_bounds", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(64, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}})
	wantErr(t, err, "kernel bug_out_of_bounds", "out-of-bounds access", "past the end of the buffer bound at [[buffer(0)]] (256 bytes")

	sink := newBuffer(t, dev, 16)
	err = dev.Dispatch(Dispatch{Kernel: "bug_stack_overflow", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(4, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: sink}}})
	wantErr(t, err, "kernel bug_stack_overflow", "fiber stack overflow in thread", "256 KiB stack")

	if runtime.GOARCH == "amd64" { // arm64 divides by zero without a trap
		err = dev.Dispatch(Dispatch{Kernel: "bug_divide_by_zero", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(1, 1, 1),
			Buffers: []Binding{{Index: 0, Buffer: sink}, {Index: 1, Bytes: bytesOf(0)}}})
		wantErr(t, err, "kernel bug_divide_by_zero", "integer division by zero")
	}

	checkDeviceWorks(t, dev)
}

func TestDispatchValidation(t *testing.T) {
	dev := testDevice(t)
	out := newBuffer(t, dev, 4*1024)
	ok := Dispatch{Kernel: "small_kernel", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(64, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}}
	if err := dev.Dispatch(ok); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(d *Dispatch)
		want string
	}{
		{"unknown kernel", func(d *Dispatch) { d.Kernel = "nope" }, `no kernel "nope"`},
		{"above the kernel's maximum", func(d *Dispatch) { d.ThreadsPerThreadgroup = grid(128, 1, 1) },
			"128 threads per threadgroup exceeds the kernel's max_total_threads_per_threadgroup (64)"},
		{"above Metal's maximum", func(d *Dispatch) { d.Kernel = "tg_sum"; d.ThreadsPerThreadgroup = grid(32, 8, 8) },
			"2048 threads per threadgroup exceeds Metal's limit of 1024"},
		{"zero dimension", func(d *Dispatch) { d.Threadgroups = grid(4, 0, 1) }, "Threadgroups[1] is 0"},
		{"both grids", func(d *Dispatch) { d.Threads = grid(4, 1, 1) }, "exactly one of Threadgroups and Threads"},
		{"unbound buffer", func(d *Dispatch) { d.Buffers = nil }, "kernel small_kernel: parameter out [[buffer(0)]] is not bound"},
		{"missing threadgroup memory", func(d *Dispatch) {
			d.Kernel = "tg_sum"
			d.Buffers = []Binding{{Index: 0, Buffer: out}, {Index: 1, Buffer: out}}
		},
			"parameter shared [[threadgroup(0)]] has no threadgroup memory length set"},
		{"threadgroup memory not a multiple of 16", func(d *Dispatch) { d.ThreadgroupMemory = []ThreadgroupMemory{{0, 100}} }, "multiple of 16"},
		{"too much threadgroup memory", func(d *Dispatch) { d.ThreadgroupMemory = []ThreadgroupMemory{{0, 32768}, {1, 16}} }, "more than Metal's 32768 bytes"},
		{"offset past the end", func(d *Dispatch) { d.Buffers[0].Offset = 4097 }, "offset 4097 is outside its 4096-byte buffer"},
		{"inline bytes too long", func(d *Dispatch) { d.Buffers = []Binding{{Index: 0, Bytes: make([]byte, 5000)}} }, "setBytes allows at most 4096"},
		{"binding twice", func(d *Dispatch) { d.Buffers = append(d.Buffers, d.Buffers[0]) }, "[[buffer(0)]] is bound twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := ok
			d.Buffers = append([]Binding(nil), ok.Buffers...)
			c.edit(&d)
			wantErr(t, dev.Dispatch(d), c.want)
		})
	}
	released := newBuffer(t, dev, 16)
	released.Release()
	d := ok
	d.Buffers = []Binding{{Index: 0, Buffer: released}}
	wantErr(t, dev.Dispatch(d), "released")
}

func TestEndlessLoopTimesOut(t *testing.T) {
	dev, err := StartWithOptions(testDriver(t), Options{DispatchTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	out := newBuffer(t, dev, 16)
	err = dev.Dispatch(Dispatch{Kernel: "bug_endless_loop", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(1, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}})
	wantErr(t, err, "kernel bug_endless_loop did not finish within 500ms (an endless loop?); the driver was stopped")
	wantErr(t, dev.Dispatch(Dispatch{Kernel: "empty"}), "did not finish")
}

func TestDriverExitsWhenClosed(t *testing.T) {
	dev := testDevice(t)
	dev.Close()
	select {
	case <-dev.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the driver is still running after Close")
	}
	if !dev.cmd.ProcessState.Success() {
		t.Errorf("driver exit status %v, want success", dev.cmd.ProcessState)
	}
}

func TestMapFile(t *testing.T) {
	dev := testDevice(t)
	path := filepath.Join(t.TempDir(), "weights.bin")
	const n = 64
	vals := make([]uint32, n)
	for i := range vals {
		vals[i] = math.Float32bits(float32(i))
	}
	if err := os.WriteFile(path, bytesOf(vals...), 0o644); err != nil {
		t.Fatal(err)
	}
	weights, err := dev.MapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := newBuffer(t, dev, 4)
	if err := dev.Dispatch(Dispatch{Kernel: "tg_sum", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
		Buffers:           []Binding{{Index: 0, Buffer: weights}, {Index: 1, Buffer: out}},
		ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 4 * n}}}); err != nil {
		t.Fatal(err)
	}
	if got := floats(out, 1)[0]; got != n*(n-1)/2 {
		t.Errorf("sum of mapped file = %v, want %v", got, n*(n-1)/2)
	}
	// A kernel that writes to the mapped file is stopped.
	err = dev.Dispatch(Dispatch{Kernel: "small_kernel", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(4, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: weights}}})
	wantErr(t, err, "write to the read-only (mapped file) buffer bound at [[buffer(0)]]")
	if err := weights.Release(); err != nil {
		t.Fatal(err)
	}
}
