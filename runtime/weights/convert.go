package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
)

// The decoders read little-endian bytes, the byte order of SafeTensors, and
// are exact: every bf16 and f16 value is a float32 value.

// BF16BitsToF32 widens a bfloat16 (the top half of a float32).
func BF16BitsToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16Bits rounds f to the nearest bfloat16, ties to even. Overflow
// gives infinity; a NaN stays a (quiet) NaN of the same sign.
func F32ToBF16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16BitsToF32 widens an IEEE 754 binary16 value, subnormals, infinities and
// NaN payloads included. It works on the bits alone: x86 takes a slow path
// for floating-point arithmetic on subnormal operands.
func F16BitsToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	m := uint32(h & 0x7fff)
	switch {
	case m >= 0x0400 && m < 0x7c00: // normal: rebias the exponent by 127-15
		return math.Float32frombits(sign | (m<<13 + 112<<23))
	case m >= 0x7c00: // infinity or NaN: all-ones exponent, payload kept
		return math.Float32frombits(sign | 0x7f800000 | (m&0x3ff)<<13)
	case m == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: m*2^-24 with m < 2^10. With its top bit at k, the value
	// is normal in float32 with exponent k-24; shifting m so that bit k
	// lands on bit 23 (the implicit one) adds 1 to the exponent field,
	// hence k+102 rather than the biased k+103.
	k := uint32(31 - bits.LeadingZeros32(m))
	return math.Float32frombits(sign | (m<<(23-k) + (k+102)<<23))
}

// F32ToF16Bits rounds f to the nearest IEEE 754 binary16, ties to even,
// giving subnormals below 2^-14, infinity from 65520 up, and a quiet NaN
// (with the top of the payload) for NaN.
func F32ToF16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	abs := b & 0x7fffffff
	switch {
	case abs > 0x7f800000: // NaN
		return sign | 0x7e00 | uint16(abs>>13)&0x1ff
	case abs >= 0x477ff000: // 65520 and up round to infinity
		return sign | 0x7c00
	case abs < 0x38800000: // below 2^-14: a subnormal half or zero
		// Adding 0.5 puts the value where a float32 ulp is 2^-24, the
		// unit of a half subnormal, so the FPU rounds it ties-to-even.
		sum := math.Float32frombits(abs) + 0.5
		return sign | uint16(math.Float32bits(sum)-0x3f000000)
	default: // normal: rebias the exponent, round the 13 dropped bits
		abs += 0xc8000fff + (abs>>13)&1 // -(112<<23) + 0xfff, mod 2^32
		return sign | uint16(abs>>13)
	}
}

func checkLens(what string, dst, src, elemSize int) {
	if src != dst*elemSize {
		panic(fmt.Sprintf("BUG: %s: %d source bytes for %d elements of %d bytes", what, src, dst, elemSize))
	}
}

// BF16ToF32 decodes len(dst) little-endian bfloat16 values from src, which
// must hold exactly 2*len(dst) bytes.
func BF16ToF32(dst []float32, src []byte) {
	checkLens("BF16ToF32", len(dst), len(src), 2)
	// Four values per 64-bit load.
	i := 0
	for ; i+4 <= len(dst); i += 4 {
		v := binary.LittleEndian.Uint64(src[2*i:])
		out := dst[i : i+4 : i+4]
		out[0] = math.Float32frombits(uint32(v) << 16)
		out[1] = math.Float32frombits(uint32(v>>16) << 16)
		out[2] = math.Float32frombits(uint32(v>>32) << 16)
		out[3] = math.Float32frombits(uint32(v>>48) << 16)
	}
	for ; i < len(dst); i++ {
		dst[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
	}
}

// F16ToF32 decodes len(dst) little-endian binary16 values from src, which
// must hold exactly 2*len(dst) bytes.
func F16ToF32(dst []float32, src []byte) {
	checkLens("F16ToF32", len(dst), len(src), 2)
	for i := range dst {
		dst[i] = F16BitsToF32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

// F32FromBytes decodes len(dst) little-endian float32 values from src,
// which must hold exactly 4*len(dst) bytes.
func F32FromBytes(dst []float32, src []byte) {
	checkLens("F32FromBytes", len(dst), len(src), 4)
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// F32ToBF16 encodes src as little-endian bfloat16 into dst (2*len(src)
// bytes), rounding to nearest even.
func F32ToBF16(dst []byte, src []float32) {
	checkLens("F32ToBF16", len(src), len(dst), 2)
	for i, f := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16Bits(f))
	}
}

// F32ToF16 encodes src as little-endian binary16 into dst (2*len(src)
// bytes), rounding to nearest even.
func F32ToF16(dst []byte, src []float32) {
	checkLens("F32ToF16", len(src), len(dst), 2)
	for i, f := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16Bits(f))
	}
}

// F32ToBytes encodes src as little-endian float32 into dst (4*len(src) bytes).
func F32ToBytes(dst []byte, src []float32) {
	checkLens("F32ToBytes", len(src), len(dst), 4)
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}

// ToF32 decodes a tensor of a floating-point or integer dtype to float32:
// exact for bf16, f16, f32 and the 8- and 16-bit integers, rounded to
// nearest for f64 and wider integers. src must hold len(dst) elements.
func ToF32(dst []float32, dt DType, src []byte) error {
	if !dt.Valid() || len(src) != len(dst)*dt.Size() {
		return fmt.Errorf("cannot decode %d bytes of %v into %d float32 values", len(src), dt, len(dst))
	}
	le := binary.LittleEndian
	switch dt {
	case BF16:
		BF16ToF32(dst, src)
	case F16:
		F16ToF32(dst, src)
	case F32:
		F32FromBytes(dst, src)
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	case Bool, U8:
		for i := range dst {
			dst[i] = float32(src[i])
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:])))
		}
	case U16:
		for i := range dst {
			dst[i] = float32(le.Uint16(src[2*i:]))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(le.Uint32(src[4*i:])))
		}
	case U32:
		for i := range dst {
			dst[i] = float32(le.Uint32(src[4*i:]))
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(le.Uint64(src[8*i:])))
		}
	case U64:
		for i := range dst {
			dst[i] = float32(le.Uint64(src[8*i:]))
		}
	default:
		panic("BUG: ToF32 misses " + dt.String())
	}
	return nil
}
