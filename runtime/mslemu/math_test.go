package mslemu

import (
	"math"
	"testing"
)

// ulps returns the distance between two float32 values in units in the
// last place (NaN matches only NaN).
func ulps(a, b float32) float64 {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
		if math.IsNaN(float64(a)) && math.IsNaN(float64(b)) {
			return 0
		}
		return math.Inf(1)
	}
	if a == b {
		return 0
	}
	key := func(f float32) int64 {
		u := int64(math.Float32bits(f))
		if u&(1<<31) != 0 {
			return -(u &^ (1 << 31))
		}
		return u
	}
	return math.Abs(float64(key(a) - key(b)))
}

func TestMathFunctions(t *testing.T) {
	dev := testDevice(t)
	xs := []float32{0.5, -0.5, 1.5, -2.5, 0.75, 3.25, -7.125, 10, 0.001, -0.3, 2, 1}
	in := newBuffer(t, dev, 4*len(xs))
	putFloats(in, xs)
	out := newBuffer(t, dev, 4*32*len(xs))
	if err := dev.Dispatch(Dispatch{Kernel: "math_ops", Threads: grid(len(xs), 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}}}); err != nil {
		t.Fatal(err)
	}
	got := floats(out, 32*len(xs))
	f := func(v float64) float32 { return float32(v) }
	half := func(v float64) float32 { return float32(halfValue(roundToHalf(v))) }
	for i, x32 := range xs {
		x := float64(x32)
		ax := math.Abs(x)
		i4 := int(float32(x32 * 4))
		sign := 0.0
		if x > 0 {
			sign = 1
		} else if x < 0 {
			sign = -1
		}
		sel := x
		if x < 0 {
			sel = -x
		}
		v := [4]float64{x, 1, -2, 0.5}
		h := halfValue(roundToHalf(x))
		type want struct {
			v    float32
			ulps float64 // allowed distance: libm and Go's math may differ in the last bits
		}
		w := []want{
			{f(math.Exp(x)), 2}, {f(math.Exp2(x)), 2}, {f(math.Log(ax)), 2}, {f(math.Log2(ax)), 2},
			{f(math.Pow(ax, 1.5)), 2}, {f(math.Pow(ax, 0.5)), 2}, {f(math.Sqrt(ax)), 0}, {f(1 / float64(float32(math.Sqrt(ax)))), 1},
			{f(math.Tanh(x)), 2}, {f(math.Sin(x)), 2}, {f(math.Cos(x)), 2},
			{f(math.Floor(x)), 0}, {f(math.Ceil(x)), 0}, {f(math.Round(x)), 0}, {f(math.Trunc(x)), 0},
			{f(sign), 0}, {f(ax), 0}, {f(math.Min(x, 0.25) + math.Max(x, -0.25)), 0}, {f(2 * x), 0},
			{f(math.Max(-1, math.Min(x, 1))), 0}, {f(x*3 + 0.5), 0}, {f(x + (10-x)*0.25), 1}, {f(sel), 0},
			{2, 0}, {0, 0}, {1, 1},
			{half(math.Exp(h)), 1}, {half(float64(float32(halfValue(roundToHalf(h*2.5)))) + 1), 0},
			{float32(absInt(i4) + min(i4, 3) + max(i4, -3)), 0}, {float32(max(-2, min(i4, 2))), 0},
			{f(v[0]*v[2] + v[1]*v[3]), 1}, {float32(int(float32(x32*8)) % 5), 0},
		}
		for k, e := range w {
			if d := ulps(got[i*32+k], e.v); d > e.ulps {
				t.Errorf("x = %v: output %d = %v, want %v (%v ulps apart, %v allowed)", x32, k, got[i*32+k], e.v, d, e.ulps)
			}
		}
	}
}

func absInt(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

func TestSimdgroupBarrier(t *testing.T) {
	dev := testDevice(t)
	const n = 64
	out := newBuffer(t, dev, 4*n)
	if err := dev.Dispatch(Dispatch{Kernel: "simd_barrier_exchange", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(n, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: out}}, ThreadgroupMemory: []ThreadgroupMemory{{Index: 0, Length: 4 * n}}, Seed: 9}); err != nil {
		t.Fatal(err)
	}
	for tid, v := range floats(out, n) {
		lane := tid % 32
		if want := float32(tid - lane + (lane+1)%32); v != want {
			t.Errorf("thread %d read %v, want %v", tid, v, want)
		}
	}
}
