package mslemu

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// The reference formats below are written from the IEEE 754 definitions,
// independently of the C++ layer: decode from sign, exponent and
// significand; round by finding the two neighbouring representable values
// and comparing distances exactly.

// halfValue decodes binary16 (1 sign, 5 exponent bits with bias 15, 10
// fraction bits).
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	f := float64(h & 0x3ff)
	switch e {
	case 0:
		return sign * f / 1024 * math.Ldexp(1, -14)
	case 31:
		if f == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + f/1024) * math.Ldexp(1, e-15)
}

// bfloatValue decodes bfloat16 (1 sign, 8 exponent bits with bias 127, 7
// fraction bits).
func bfloatValue(b uint16) float64 {
	sign := 1.0
	if b&0x8000 != 0 {
		sign = -1
	}
	e := int(b>>7) & 0xff
	f := float64(b & 0x7f)
	switch e {
	case 0:
		return sign * f / 128 * math.Ldexp(1, -126)
	case 255:
		if f == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * (1 + f/128) * math.Ldexp(1, e-127)
}

// format16 is a 16-bit binary format: its non-negative finite values in
// increasing order with their encodings, and the magnitude from which
// rounding overflows to infinity (the largest finite value plus half an
// ulp).
type format16 struct {
	values   []float64
	bits     []uint16
	overflow float64
	inf      uint16
}

func newFormat16(decode func(uint16) float64, maxFinite uint16, inf uint16, ulpAtMax float64) *format16 {
	f := &format16{inf: inf}
	for b := uint16(0); b <= maxFinite; b++ {
		f.values = append(f.values, decode(b))
		f.bits = append(f.bits, b)
	}
	if !sort.Float64sAreSorted(f.values) {
		panic("BUG: format values are not increasing")
	}
	f.overflow = decode(maxFinite) + ulpAtMax/2
	return f
}

var (
	halfFormat   = newFormat16(halfValue, 0x7bff, 0x7c00, math.Ldexp(1, 5))
	bfloatFormat = newFormat16(bfloatValue, 0x7f7f, 0x7f80, math.Ldexp(1, 120))
)

// round rounds x to nearest, ties to even. x must not be NaN. The
// comparison 2|x| vs lo+hi is exact in float64 for every float32 x and
// every pair of neighbouring 16-bit values.
func (f *format16) round(x float64) uint16 {
	var sign uint16
	if math.Signbit(x) {
		sign = 0x8000
	}
	a := math.Abs(x)
	if a >= f.overflow {
		return sign | f.inf
	}
	i := sort.SearchFloat64s(f.values, a)
	if i == len(f.values) {
		return sign | f.bits[i-1]
	}
	if f.values[i] == a {
		return sign | f.bits[i]
	}
	lo, hi := f.values[i-1], f.values[i]
	switch twice, mid := 2*a, lo+hi; {
	case twice < mid:
		return sign | f.bits[i-1]
	case twice > mid:
		return sign | f.bits[i]
	}
	if f.bits[i-1]&1 == 0 {
		return sign | f.bits[i-1]
	}
	return sign | f.bits[i]
}

func roundToHalf(x float64) uint16 { return halfFormat.round(x) }

// conversionInputs returns float32 values that probe rounding to the
// format: every midpoint between neighbouring values and the floats on
// either side of it, both signs, specials, and random bit patterns.
func conversionInputs(f *format16, rng *rand.Rand) []float32 {
	var in []float32
	for i := 0; i+1 < len(f.values); i++ {
		mid := float32((f.values[i] + f.values[i+1]) / 2)
		if float64(mid) != (f.values[i]+f.values[i+1])/2 {
			panic("BUG: a midpoint is not a float32")
		}
		for _, v := range []float32{mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, math.MaxFloat32), float32(f.values[i])} {
			in = append(in, v, -v)
		}
	}
	over := float32(f.overflow)
	in = append(in, over, math.Nextafter32(over, 0), math.Nextafter32(over, math.MaxFloat32), -over,
		0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32, math.Float32frombits(0x00800000))
	for i := 0; i < 100000; i++ {
		in = append(in, math.Float32frombits(rng.Uint32()))
	}
	return in
}

func runConversion(t *testing.T, dev *Device, kernel string, in []float32) []uint16 {
	t.Helper()
	inBuf := newBuffer(t, dev, 4*len(in))
	putFloats(inBuf, in)
	out := newBuffer(t, dev, 2*len(in))
	if err := dev.Dispatch(Dispatch{Kernel: kernel, Threads: grid(len(in), 1, 1), ThreadsPerThreadgroup: grid(256, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: inBuf}, {Index: 1, Buffer: out}}}); err != nil {
		t.Fatal(err)
	}
	return u16s(out, len(in))
}

func allPatterns() []uint16 {
	v := make([]uint16, 65536)
	for i := range v {
		v[i] = uint16(i)
	}
	return v
}

func checkDecode(t *testing.T, dev *Device, kernel string, decode func(uint16) float64, isNaN func(uint16) bool) {
	in := newBuffer(t, dev, 2*65536)
	for i, b := range allPatterns() {
		binary.LittleEndian.PutUint16(in.Bytes()[2*i:], b)
	}
	out := newBuffer(t, dev, 4*65536)
	rt := newBuffer(t, dev, 2*65536)
	if err := dev.Dispatch(Dispatch{Kernel: kernel, Threadgroups: grid(256, 1, 1), ThreadsPerThreadgroup: grid(256, 1, 1),
		Buffers: []Binding{{Index: 0, Buffer: in}, {Index: 1, Buffer: out}, {Index: 2, Buffer: rt}}}); err != nil {
		t.Fatal(err)
	}
	got, back := floats(out, 65536), u16s(rt, 65536)
	bad := 0
	for i := 0; i < 65536 && bad < 10; i++ {
		b := uint16(i)
		if isNaN(b) {
			if !math.IsNaN(float64(got[i])) || !isNaN(back[i]) {
				t.Errorf("%#04x (NaN) decodes to %v and round-trips to %#04x", b, got[i], back[i])
				bad++
			}
			continue
		}
		want := decode(b)
		if float64(got[i]) != want || math.Signbit(float64(got[i])) != math.Signbit(want) {
			t.Errorf("%#04x decodes to %v, want %v", b, got[i], want)
			bad++
		}
		if back[i] != b {
			t.Errorf("%#04x round-trips through float to %#04x", b, back[i])
			bad++
		}
	}
}

func checkEncode(t *testing.T, dev *Device, kernel string, f *format16, isNaN func(uint16) bool) {
	in := conversionInputs(f, rand.New(rand.NewPCG(1, 2)))
	got := runConversion(t, dev, kernel, in)
	bad := 0
	for i, x := range in {
		if math.IsNaN(float64(x)) {
			if !isNaN(got[i]) {
				t.Errorf("NaN %#08x converts to %#04x, not a NaN", math.Float32bits(x), got[i])
				bad++
			}
		} else if want := f.round(float64(x)); got[i] != want {
			t.Errorf("%v (%#08x) converts to %#04x, want %#04x", x, math.Float32bits(x), got[i], want)
			bad++
		}
		if bad >= 10 {
			t.Fatal("too many mismatches")
		}
	}
}

func halfIsNaN(b uint16) bool   { return b&0x7c00 == 0x7c00 && b&0x3ff != 0 }
func bfloatIsNaN(b uint16) bool { return b&0x7f80 == 0x7f80 && b&0x7f != 0 }

func TestHalfConversions(t *testing.T) {
	dev := testDevice(t)
	checkDecode(t, dev, "half_bits_to_float", halfValue, halfIsNaN)
	checkEncode(t, dev, "float_to_half_bits", halfFormat, halfIsNaN)
}

func TestBfloatConversions(t *testing.T) {
	dev := testDevice(t)
	checkDecode(t, dev, "bfloat_bits_to_float", bfloatValue, bfloatIsNaN)
	checkEncode(t, dev, "float_to_bfloat_bits", bfloatFormat, bfloatIsNaN)
}

// half op half rounds the exact result once to half; half op float is float.
func TestHalfArithmetic(t *testing.T) {
	dev := testDevice(t)
	const n = 4096
	rng := rand.New(rand.NewPCG(3, 4))
	a, b := make([]uint16, n), make([]uint16, n)
	for i := range a {
		// Finite halves of moderate magnitude, so products stay finite.
		a[i] = uint16(rng.IntN(0x5800)) | uint16(rng.IntN(2))<<15
		b[i] = uint16(rng.IntN(0x5800)) | uint16(rng.IntN(2))<<15
	}
	bufs := []*Buffer{newBuffer(t, dev, 2*n), newBuffer(t, dev, 2*n), newBuffer(t, dev, 2*n), newBuffer(t, dev, 2*n), newBuffer(t, dev, 4*n)}
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(bufs[0].Bytes()[2*i:], a[i])
		binary.LittleEndian.PutUint16(bufs[1].Bytes()[2*i:], b[i])
	}
	binds := make([]Binding, len(bufs))
	for i := range bufs {
		binds[i] = Binding{Index: i, Buffer: bufs[i]}
	}
	if err := dev.Dispatch(Dispatch{Kernel: "half_arith", Threads: grid(n, 1, 1), ThreadsPerThreadgroup: grid(128, 1, 1), Buffers: binds}); err != nil {
		t.Fatal(err)
	}
	sum, prod, mixed := u16s(bufs[2], n), u16s(bufs[3], n), floats(bufs[4], n)
	for i := 0; i < n; i++ {
		x, y := halfValue(a[i]), halfValue(b[i])
		// Sums and products of two halves are exact in float64.
		if want := roundToHalf(x + y); sum[i] != want && !(x+y == 0 && sum[i]&0x7fff == 0) {
			t.Fatalf("%v + %v = half %#04x, want %#04x", x, y, sum[i], want)
		}
		if want := roundToHalf(x * y); prod[i] != want {
			t.Fatalf("%v * %v = half %#04x, want %#04x", x, y, prod[i], want)
		}
		if want := float32(float32(x)*3) + float32(y); mixed[i] != want {
			t.Fatalf("%v * 3.0f + %v = %v, want float %v", x, y, mixed[i], want)
		}
	}
}

func TestVectorsSwizzlesAsType(t *testing.T) {
	dev := testDevice(t)
	a := [4]float32{1.5, -2, 3.25, 4}
	b := [4]float32{0.5, 5, -1, 2}
	iv := [4]int32{7, -8, 9, -10}
	const s = float32(2.5)
	// struct VecArgs { float4 a; float4 b; int4 i; float s; } is 64 bytes.
	args := make([]byte, 64)
	for j := 0; j < 4; j++ {
		binary.LittleEndian.PutUint32(args[4*j:], math.Float32bits(a[j]))
		binary.LittleEndian.PutUint32(args[16+4*j:], math.Float32bits(b[j]))
		binary.LittleEndian.PutUint32(args[32+4*j:], uint32(iv[j]))
	}
	binary.LittleEndian.PutUint32(args[48:], math.Float32bits(s))
	out := newBuffer(t, dev, 4*64)
	bits := newBuffer(t, dev, 4*8)
	if err := dev.Dispatch(Dispatch{Kernel: "vector_ops", Threadgroups: grid(1, 1, 1), ThreadsPerThreadgroup: grid(1, 1, 1),
		Buffers: []Binding{{Index: 0, Bytes: args}, {Index: 1, Buffer: out}, {Index: 2, Buffer: bits}}}); err != nil {
		t.Fatal(err)
	}
	var iq [4]float32
	for j, v := range iv {
		iq[j] = float32(v/3 + v%3*10 + (v << 2) - (v >> 1))
	}
	want := []float32{
		4, 3.25, -2, 1.5, // a.wzyx
		0.5, 0, // a.xy + b.zw
		-0.25, -2, 0.625, // a.xyz * b.x - 1
		5, 0.5, 4.25, 5, // v.yx = b.xy; v.zw += 1
		1.5, -2, -1, 7, // float4(a.xy, b.z, 7)
		1.5, -2, -2, 1.5, // col.ba = col.gr
		4.5, 8, 9, 10.5, // max(a, b) * 2 + min(a, s)
		13, 1, 1, // a > b as bits, any, all
		0.5, -2, -1, 2, // select(a, b, a > b)
		iq[0], iq[1], iq[2], iq[3],
		-4.5,               // dot
		2.5,                // length(a.xy)
		-14.25, 3.125, 8.5, // cross
		0.5, 2, 0, 2, // clamp(b, 0, 2)
		3.25, 4, // as_type round trip of a.zw
		1.25, -0.25, // mix
		1.5, -4, 6, 1216, // |a.x|, -a.w, packed_float3 sum, sizeof(float3) + 100 * sizeof(packed_float3)
	}
	got := floats(out, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("vector_ops output %d = %v, want %v", i, got[i], want[i])
		}
	}
	wantBits := []uint32{
		math.Float32bits(a[0]), math.Float32bits(a[1]), math.Float32bits(a[2]), math.Float32bits(a[3]),
		math.Float32bits(s), uint32(roundToHalf(1.5)) | uint32(roundToHalf(-2))<<16,
	}
	for i, w := range uints(bits, len(wantBits)) {
		if w != wantBits[i] {
			t.Errorf("as_type output %d = %#x, want %#x", i, w, wantBits[i])
		}
	}
}
