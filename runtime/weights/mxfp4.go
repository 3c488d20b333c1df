package weights

import (
	"fmt"
	"math"
)

// FP4Values are the values of the 16 FP4 (E2M1) codes of MXFP4, indexed by
// the 4-bit code: sign bit 3, exponent bits 2..1, mantissa bit 0.
var FP4Values = [16]float32{
	+0, 0.5, 1, 1.5, 2, 3, 4, 6,
	float32(math.Copysign(0, -1)), -0.5, -1, -1.5, -2, -3, -4, -6,
}

// MXFP4 groups 32 FP4 values, packed two to a byte, under one E8M0 scale.
const (
	MXFP4BlockSize  = 32 // values per block
	MXFP4BlockBytes = 16 // bytes per block
)

// fp4Doubled holds 2*FP4Values and scaleHalf[s] is 2^(s-128), so that
// fp4Doubled[c]*scaleHalf[s] = FP4Values[c]*2^(s-127) with both factors
// exact float32 values for every scale byte s, including 255 (2^128 is not
// a float32, 2^127 is) and 0 (2^-128 is a float32 subnormal). The product
// is then the correctly rounded value: exact, or ±Inf where it overflows.
var (
	fp4Doubled [16]float32
	scaleHalf  [256]float32
)

func init() {
	for i, v := range FP4Values {
		fp4Doubled[i] = 2 * v
	}
	for s := range scaleHalf {
		scaleHalf[s] = float32(math.Ldexp(1, s-128))
	}
}

// DequantMXFP4Row decodes one row of MXFP4 weights: blocks holds n/32
// blocks of 16 bytes, scales the n/32 E8M0 scale bytes, and dst receives
// the n values. Byte j of a block holds element 2j in its low nibble and
// element 2j+1 in its high nibble; value = FP4[code] * 2^(scale-127).
func DequantMXFP4Row(dst []float32, blocks []byte, scales []byte) {
	nb := len(scales)
	if len(blocks) != nb*MXFP4BlockBytes || len(dst) != nb*MXFP4BlockSize {
		panic(fmt.Sprintf("BUG: DequantMXFP4Row: %d values from %d block bytes and %d scales; want %d and %d",
			len(dst), len(blocks), nb, nb*MXFP4BlockBytes, nb*MXFP4BlockSize))
	}
	for b, s := range scales {
		scale := scaleHalf[s]
		var lut [16]float32
		for c := range lut {
			lut[c] = fp4Doubled[c] * scale
		}
		in := blocks[b*MXFP4BlockBytes : (b+1)*MXFP4BlockBytes : (b+1)*MXFP4BlockBytes]
		out := dst[b*MXFP4BlockSize : (b+1)*MXFP4BlockSize : (b+1)*MXFP4BlockSize]
		for j, v := range in {
			out[2*j] = lut[v&0x0f]
			out[2*j+1] = lut[v>>4]
		}
	}
}
