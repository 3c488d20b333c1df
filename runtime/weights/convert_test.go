package weights

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// f16Value is the IEEE 754 binary16 definition, evaluated in float64.
func f16Value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, mant := int(h>>10)&0x1f, float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * mant * math.Ldexp(1, -24)
	case 0x1f:
		if mant != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * (1024 + mant) * math.Ldexp(1, exp-25)
}

// roundToFormat rounds x to a binary format with p significand bits,
// minimum normal exponent emin and largest finite value maxFinite, ties to
// even, in float64 where the rounding is exact: the independent oracle of
// F32ToF16Bits and F32ToBF16Bits.
func roundToFormat(x float64, p, emin int, maxFinite float64) float64 {
	if x == 0 || math.IsInf(x, 0) {
		return x
	}
	_, e := math.Frexp(math.Abs(x)) // |x| = m*2^e, m in [0.5, 1)
	e = max(e-1, emin)
	ulp := math.Ldexp(1, e-(p-1))
	r := math.RoundToEven(x/ulp) * ulp
	// Whatever rounds past the largest finite value (from maxFinite +
	// ulp/2 up, ties going to the even 2^(emax+1)) is infinity.
	if math.Abs(r) > maxFinite {
		r = math.Copysign(math.Inf(1), x)
	}
	return r
}

func sameFloat32(a, b float32) bool {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
		return math.IsNaN(float64(a)) && math.IsNaN(float64(b))
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func TestF16KnownValues(t *testing.T) {
	for _, tc := range []struct {
		bits uint16
		want float32
	}{
		{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0400, 0x1p-14}, {0x0001, 0x1p-24},
		{0x03ff, 1023 * 0x1p-24}, {0x3555, 0.333251953125}, {0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))}, {0x8000, float32(math.Copysign(0, -1))}, {0x0000, 0},
	} {
		if got := F16BitsToF32(tc.bits); !sameFloat32(got, tc.want) {
			t.Errorf("F16BitsToF32(%#04x) = %v, want %v", tc.bits, got, tc.want)
		}
		if got := F32ToF16Bits(tc.want); got != tc.bits {
			t.Errorf("F32ToF16Bits(%v) = %#04x, want %#04x", tc.want, got, tc.bits)
		}
	}
	if got := F16BitsToF32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("F16BitsToF32(0x7e00) = %v, want NaN", got)
	}
}

func TestF16Exhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got := F16BitsToF32(h)
		want := f16Value(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) || math.Signbit(float64(got)) != (h&0x8000 != 0) {
				t.Fatalf("F16BitsToF32(%#04x) = %v, want a NaN of the same sign", h, got)
			}
			// Quiet NaNs (payload top bit set) come back bit for bit; a
			// signalling one comes back quiet.
			back := F32ToF16Bits(got)
			if back|0x0200 != h|0x0200 {
				t.Fatalf("NaN %#04x came back as %#04x", h, back)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(want) {
			t.Fatalf("F16BitsToF32(%#04x) = %v, want %v", h, got, want)
		}
		if back := F32ToF16Bits(got); back != h {
			t.Fatalf("F32ToF16Bits(F16BitsToF32(%#04x)) = %#04x", h, back)
		}
	}
}

// TestF16RoundingBoundaries checks, between every two neighbouring finite
// halves, that the midpoint goes to the even one and the float32 values
// either side of it to the nearer one.
func TestF16RoundingBoundaries(t *testing.T) {
	for _, sign := range []uint16{0, 0x8000} {
		for h := uint16(0); h < 0x7bff; h++ {
			lo, hi := sign|h, sign|(h+1)
			mid := (f16Value(lo) + f16Value(hi)) / 2
			m := float32(mid)
			if float64(m) != mid {
				t.Fatalf("midpoint %v of %#04x and %#04x is not a float32", mid, lo, hi)
			}
			even := lo
			if lo&1 != 0 {
				even = hi
			}
			if got := F32ToF16Bits(m); got != even {
				t.Fatalf("F32ToF16Bits(%v), the midpoint of %#04x and %#04x, = %#04x; want %#04x", m, lo, hi, got, even)
			}
			toward0 := math.Nextafter32(m, 0)
			away := math.Nextafter32(m, float32(math.Copysign(math.Inf(1), mid)))
			if got := F32ToF16Bits(toward0); got != lo {
				t.Fatalf("F32ToF16Bits(%v) = %#04x, want %#04x", toward0, got, lo)
			}
			if got := F32ToF16Bits(away); got != hi {
				t.Fatalf("F32ToF16Bits(%v) = %#04x, want %#04x", away, got, hi)
			}
		}
	}
	// Past the largest half: 65504 + ulp/2 = 65520 ties to the even
	// neighbour, which is 65536, infinity.
	for _, tc := range []struct {
		f    float32
		want uint16
	}{
		{65504, 0x7bff}, {math.Nextafter32(65520, 0), 0x7bff}, {65520, 0x7c00}, {-65520, 0xfc00},
		{math.MaxFloat32, 0x7c00}, {0x1p-25, 0}, {math.Nextafter32(0x1p-25, 1), 1}, {-0x1p-26, 0x8000},
		{0x1p-149, 0},
	} {
		if got := F32ToF16Bits(tc.f); got != tc.want {
			t.Errorf("F32ToF16Bits(%v) = %#04x, want %#04x", tc.f, got, tc.want)
		}
	}
}

func TestF16RandomAgainstOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1 << 20 {
		f := math.Float32frombits(rng.Uint32())
		if math.IsNaN(float64(f)) {
			continue
		}
		want := roundToFormat(float64(f), 11, -14, 65504)
		got := F16BitsToF32(F32ToF16Bits(f))
		if float64(got) != want || math.Signbit(float64(got)) != math.Signbit(float64(f)) {
			t.Fatalf("%v (%#08x) rounds to %v, want %v", f, math.Float32bits(f), got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	for _, tc := range []struct {
		bits uint16
		want float32
	}{
		{0x3f80, 1}, {0xc000, -2}, {0x7f80, float32(math.Inf(1))}, {0xff80, float32(math.Inf(-1))},
		{0x0001, 0x1p-133}, {0x7f7f, 0x1.fep127}, {0x3eab, 0.333984375}, {0x8000, float32(math.Copysign(0, -1))},
	} {
		if got := BF16BitsToF32(tc.bits); !sameFloat32(got, tc.want) {
			t.Errorf("BF16BitsToF32(%#04x) = %v, want %v", tc.bits, got, tc.want)
		}
		if got := F32ToBF16Bits(tc.want); got != tc.bits {
			t.Errorf("F32ToBF16Bits(%v) = %#04x, want %#04x", tc.want, got, tc.bits)
		}
	}
	nan := F32ToBF16Bits(math.Float32frombits(0xff800001)) // a signalling NaN with its payload low
	if !math.IsNaN(float64(BF16BitsToF32(nan))) || nan&0x8000 == 0 {
		t.Errorf("a negative NaN became %#04x", nan)
	}
	// Every bf16 comes back; every midpoint between neighbours goes to the
	// even one.
	for i := range 1 << 16 {
		h := uint16(i)
		f := BF16BitsToF32(h)
		if math.IsNaN(float64(f)) {
			continue
		}
		if back := F32ToBF16Bits(f); back != h {
			t.Fatalf("F32ToBF16Bits(BF16BitsToF32(%#04x)) = %#04x", h, back)
		}
		if h&0x7fff >= 0x7f7f {
			continue
		}
		mid := (float64(f) + float64(BF16BitsToF32(h+1))) / 2
		even := h
		if h&1 != 0 {
			even = h + 1
		}
		if got := F32ToBF16Bits(float32(mid)); got != even {
			t.Fatalf("F32ToBF16Bits(%v), the midpoint after %#04x, = %#04x; want %#04x", mid, h, got, even)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1 << 20 {
		f := math.Float32frombits(rng.Uint32())
		if math.IsNaN(float64(f)) {
			continue
		}
		want := roundToFormat(float64(f), 8, -126, 0x1.fep127)
		if got := BF16BitsToF32(F32ToBF16Bits(f)); float64(got) != want {
			t.Fatalf("%v rounds to %v, want %v", f, got, want)
		}
	}
}

func TestSliceDecoders(t *testing.T) {
	src := []byte{0x80, 0x3f, 0x00, 0xc0, 0x80, 0x7f} // little-endian 0x3f80, 0xc000, 0x7f80
	dst := make([]float32, 3)
	BF16ToF32(dst, src)
	if dst[0] != 1 || dst[1] != -2 || !math.IsInf(float64(dst[2]), 1) {
		t.Errorf("BF16ToF32 = %v", dst)
	}
	F16ToF32(dst, []byte{0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00})
	if dst[0] != 1 || dst[1] != -2 || dst[2] != 0x1p-24 {
		t.Errorf("F16ToF32 = %v", dst)
	}
	f32 := binary.LittleEndian.AppendUint32(nil, math.Float32bits(3.25))
	F32FromBytes(dst[:1], f32)
	if dst[0] != 3.25 {
		t.Errorf("F32FromBytes = %v", dst[0])
	}

	values := []float32{1, -2, 0.1, 65504, 1e-7}
	for _, tc := range []struct {
		dt     DType
		encode func([]byte, []float32)
		decode func(uint16) float32
		round  func(float32) uint16
	}{
		{BF16, F32ToBF16, BF16BitsToF32, F32ToBF16Bits},
		{F16, F32ToF16, F16BitsToF32, F32ToF16Bits},
	} {
		buf := make([]byte, 2*len(values))
		tc.encode(buf, values)
		got := make([]float32, len(values))
		if err := ToF32(got, tc.dt, buf); err != nil {
			t.Fatal(err)
		}
		for i, v := range values {
			if want := tc.decode(tc.round(v)); got[i] != want {
				t.Errorf("%v: %v came back as %v, want %v", tc.dt, v, got[i], want)
			}
		}
	}
	buf := make([]byte, 4*len(values))
	F32ToBytes(buf, values)
	got := make([]float32, len(values))
	ToF32(got, F32, buf)
	for i := range values {
		if got[i] != values[i] {
			t.Errorf("f32 %v came back as %v", values[i], got[i])
		}
	}

	ints := []struct {
		dt   DType
		data []byte
		want []float32
	}{
		{U8, []byte{0, 255}, []float32{0, 255}},
		{I8, []byte{0x80, 0x7f}, []float32{-128, 127}},
		{I16, []byte{0x00, 0x80, 0xff, 0x7f}, []float32{-32768, 32767}},
		{U16, []byte{0xff, 0xff, 0x01, 0x00}, []float32{65535, 1}},
		{I32, []byte{0xfe, 0xff, 0xff, 0xff, 7, 0, 0, 0}, []float32{-2, 7}},
		{U32, []byte{0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0}, []float32{4294967296, 7}},
		{I64, binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 1<<24+1), math.MaxUint64), []float32{1 << 24, -1}},
		{F64, binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.1)), math.Float64bits(-3)), []float32{0.1, -3}},
		{Bool, []byte{1, 0}, []float32{1, 0}},
	}
	for _, tc := range ints {
		got := make([]float32, len(tc.want))
		if err := ToF32(got, tc.dt, tc.data); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v: %v, want %v", tc.dt, got, tc.want)
				break
			}
		}
	}
	if err := ToF32(make([]float32, 2), BF16, make([]byte, 3)); err == nil {
		t.Error("ToF32 accepted 3 bytes for 2 bf16 values")
	}
}

// TestSliceDecodersAnyLength checks the slice decoders element by element
// against the scalar ones, for lengths around their unrolling.
func TestSliceDecodersAnyLength(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for n := range 13 {
		src := make([]byte, 2*n)
		for i := range src {
			src[i] = byte(rng.UintN(256))
		}
		bf, f16 := make([]float32, n), make([]float32, n)
		BF16ToF32(bf, src)
		F16ToF32(f16, src)
		for i := range n {
			h := binary.LittleEndian.Uint16(src[2*i:])
			if math.Float32bits(bf[i]) != math.Float32bits(BF16BitsToF32(h)) ||
				math.Float32bits(f16[i]) != math.Float32bits(F16BitsToF32(h)) {
				t.Fatalf("length %d, element %d (%#04x): bf16 %v, f16 %v", n, i, h, bf[i], f16[i])
			}
		}
	}
}
