package weights

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestFP4Values checks the table against the E2M1 encoding: sign bit 3,
// exponent bits 2..1 with bias 1, mantissa bit 0, code 0b?00x subnormal.
func TestFP4Values(t *testing.T) {
	for c := range 16 {
		sign := 1.0
		if c&8 != 0 {
			sign = -1
		}
		exp, mant := (c>>1)&3, float64(c&1)
		want := sign * mant * 0.5
		if exp > 0 {
			want = sign * (1 + mant/2) * math.Ldexp(1, exp-1)
		}
		got := FP4Values[c]
		if float64(got) != want || math.Signbit(float64(got)) != (c&8 != 0) {
			t.Errorf("FP4Values[%d] = %v, want %v", c, got, want)
		}
	}
}

// mxfp4Oracle is the README's formula, value = FP4[code] * 2^(scale-127),
// in float64 (exact) rounded once to float32.
func mxfp4Oracle(blocks, scales []byte) []float32 {
	out := make([]float32, 0, 32*len(scales))
	for b, s := range scales {
		for j := range 32 {
			code := blocks[16*b+j/2] >> (4 * (j % 2)) & 0xf
			out = append(out, float32(float64(FP4Values[code])*math.Ldexp(1, int(s)-127)))
		}
	}
	return out
}

func TestDequantMXFP4Row(t *testing.T) {
	// A hand-built row of two blocks. Block 0, scale 128 (×2): byte 0x21
	// holds code 1 (0.5) for element 0 and code 2 (1) for element 1; byte
	// 0xf8 holds -0 then -6. Block 1, scale 125 (×1/4): byte 0x7f holds
	// code 15 (-6) then code 7 (6).
	blocks := make([]byte, 32)
	blocks[0], blocks[1], blocks[16] = 0x21, 0xf8, 0x7f
	scales := []byte{128, 125}
	got := make([]float32, 64)
	DequantMXFP4Row(got, blocks, scales)
	want := map[int]float32{0: 1, 1: 2, 2: float32(math.Copysign(0, -1)), 3: -12, 32: -1.5, 33: 1.5}
	for i, v := range got {
		if !sameFloat32(v, want[i]) || math.Signbit(float64(v)) != math.Signbit(float64(want[i])) {
			t.Errorf("element %d = %v, want %v", i, v, want[i])
		}
	}

	// Random rows over every scale byte, the extremes included: 2^-127 is
	// a float32 subnormal and 2^128 overflows unless the code is 0 or ±0.5.
	rng := rand.New(rand.NewPCG(5, 6))
	for s := range 256 {
		const nb = 4
		blocks := make([]byte, 16*nb)
		for i := range blocks {
			blocks[i] = byte(rng.UintN(256))
		}
		scales := []byte{byte(s), byte(rng.UintN(256)), 127, byte(s)}
		got := make([]float32, 32*nb)
		DequantMXFP4Row(got, blocks, scales)
		want := mxfp4Oracle(blocks, scales)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("scales %v: element %d = %v, want %v", scales, i, got[i], want[i])
			}
		}
	}
}

func TestDequantMXFP4RowPanicsOnBadLengths(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.HasPrefix(fmt.Sprint(r), "BUG: ") {
			t.Errorf("recovered %v, want a BUG panic", r)
		}
	}()
	DequantMXFP4Row(make([]float32, 32), make([]byte, 15), []byte{127})
}

// TestDequantTinyRandomExperts decodes every expert row of tiny-random and
// checks the values look like weights: finite, not all zero, and within
// what the scales present (2^-4 to 2^-2) allow.
func TestDequantTinyRandomExperts(t *testing.T) {
	c, err := Open(tinyDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for l := range 4 {
		for _, proj := range []string{"gate_up_proj", "down_proj"} {
			prefix := fmt.Sprintf("model.layers.%d.mlp.experts.%s", l, proj)
			blocks, _ := c.Tensor(prefix + "_blocks")
			scales, _ := c.Tensor(prefix + "_scales")
			nb := int(scales.Shape[len(scales.Shape)-1])
			rows := len(scales.Data) / nb
			row := make([]float32, 32*nb)
			var sumSq float64
			var maxAbs float32
			for r := range rows {
				DequantMXFP4Row(row, blocks.Data[16*nb*r:16*nb*(r+1)], scales.Data[nb*r:nb*(r+1)])
				for _, v := range row {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s row %d: %v", prefix, r, v)
					}
					maxAbs = max(maxAbs, float32(math.Abs(float64(v))))
					sumSq += float64(v) * float64(v)
				}
			}
			rms := math.Sqrt(sumSq / float64(rows*len(row)))
			if maxAbs > 1.5 || rms < 0.01 || rms > 1 {
				t.Errorf("%s: max |w| %v, rms %v; not weights of sensible magnitude", prefix, maxAbs, rms)
			}
		}
	}
}
