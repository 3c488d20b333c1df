package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/minerva-ml/minerva/runtime/weights"
)

// The one-token kernels (dotBF16, dotMXFP4) at the edges the random tests
// of dot_test.go do not reach: operands that start at any element offset,
// lengths around every unrolled loop, non-finite bf16 values, and MXFP4
// scale bytes at both ends of E8M0. The oracle is a float64 sum of values
// widened by the weights package's decoders.

// decodeLengths cover the 64-, 16- and 8-wide loops, their tails, and
// gpt-oss-20b's rows.
var decodeLengths = []int{1, 3, 15, 16, 17, 47, 63, 64, 65, 79, 80, 81, 127, 129, 191, 193, 2880, 2881}

func TestDotBF16Offsets(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	withKernels(t, func(set string) {
		for _, n := range decodeLengths {
			for off := 0; off < 4; off++ {
				w := randBF16(r, n+off)[off:]
				x := randFloats(r, n+3+off)[3-off%4+off:] // a different misalignment
				var want, mags float64
				for i := range w {
					p := float64(weights.BF16BitsToF32(w[i])) * float64(x[i])
					want += p
					mags += math.Abs(p)
				}
				if got := dotBF16(w, x); !(math.Abs(float64(got)-want) <= dotBound(mags, n)) {
					t.Errorf("%s: dotBF16 n=%d offset %d: %g, want %g", set, n, off, got, want)
				}
			}
		}
	})
}

// TestDotBF16NonFinite: a NaN weight, or an infinity against a zero or an
// infinity of the other sign, makes the product NaN as float arithmetic
// does; an infinity alone stays an infinity of its sign.
func TestDotBF16NonFinite(t *testing.T) {
	const (
		bfNaN    = 0x7fc0
		bfInf    = 0x7f80
		bfNegInf = 0xff80
	)
	r := rand.New(rand.NewPCG(23, 24))
	withKernels(t, func(set string) {
		for _, n := range decodeLengths {
			for _, at := range []int{0, n / 2, n - 1} {
				w, x := randBF16(r, n), randFloats(r, n)
				for i := range x {
					x[i] = float32(math.Abs(float64(x[i]))) + 0.5 // positive: no product cancels an infinity
				}
				w[at] = bfNaN
				if got := dotBF16(w, x); !math.IsNaN(float64(got)) {
					t.Errorf("%s: dotBF16 n=%d, NaN weight at %d: %g, want NaN", set, n, at, got)
				}
				w[at] = bfInf
				if got := dotBF16(w, x); !math.IsInf(float64(got), 1) {
					t.Errorf("%s: dotBF16 n=%d, +Inf weight at %d: %g, want +Inf", set, n, at, got)
				}
				w[at] = bfNegInf
				if got := dotBF16(w, x); !math.IsInf(float64(got), -1) {
					t.Errorf("%s: dotBF16 n=%d, -Inf weight at %d: %g, want -Inf", set, n, at, got)
				}
				x[at] = 0
				if got := dotBF16(w, x); !math.IsNaN(float64(got)) {
					t.Errorf("%s: dotBF16 n=%d, -Inf weight times 0 at %d: %g, want NaN", set, n, at, got)
				}
				if n > 1 {
					x[at] = 1
					other := (at + 1) % n
					w[other] = bfInf
					if got := dotBF16(w, x); !math.IsNaN(float64(got)) {
						t.Errorf("%s: dotBF16 n=%d, +Inf and -Inf products: %g, want NaN", set, n, got)
					}
				}
			}
		}
	})
}

// e2m1 is the OCP MX specification's FP4 (E2M1) value of each code.
var e2m1 = [16]float64{0, 0.5, 1, 1.5, 2, 3, 4, 6, 0, -0.5, -1, -1.5, -2, -3, -4, -6}

// TestDotMXFP4Scales multiplies rows whose E8M0 scale bytes are 0, 255
// and everything between (scale byte s is 2^(s-127), 255 included, as
// transformers' ldexp reads it) against a float64 sum of the rows decoded
// from the specification's E2M1 table, block by block. Each block's x is
// scaled against its scale, as activations meet weights of that size, so
// that no partial sum leaves float32's normal range in any order.
func TestDotMXFP4Scales(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	withKernels(t, func(set string) {
		for _, nb := range []int{1, 2, 3, 4, 5, 7, 8, 9, 90} {
			for _, sc := range []struct{ lo, hi int }{{0, 0}, {255, 255}, {0, 255}, {0, 3}, {250, 255}} {
				blocks, scales := mxfp4Row(r, nb, sc.lo, sc.hi)
				x := randFloats(r, 32*nb)
				var want, mags float64
				for i := range x {
					s := int(scales[i/32])
					x[i] = float32(math.Ldexp(float64(x[i]), min(100, max(-100, 127-s))))
					code := blocks[i/2] & 15
					if i%2 == 1 {
						code = blocks[i/2] >> 4
					}
					p := math.Ldexp(e2m1[code], s-127) * float64(x[i])
					want += p
					mags += math.Abs(p)
				}
				xp := make([]float32, len(x))
				pairOrder(x, xp)
				got := dotMXFP4(blocks, scales, xp)
				if !(math.Abs(float64(got)-want) <= dotBound(mags, 32*nb)) {
					t.Errorf("%s: dotMXFP4 %d blocks, scales %d..%d: %g, want %g", set, nb, sc.lo, sc.hi, got, want)
				}
			}
		}
		// Overflow: every value 6.0 (code 7) at scale 254 (2^127), x = 1:
		// 32*6*2^127 per block, beyond float32's range.
		for _, nb := range []int{1, 4, 5, 90} {
			blocks, scales := make([]byte, 16*nb), make([]byte, nb)
			for i := range blocks {
				blocks[i] = 0x77
			}
			for i := range scales {
				scales[i] = 254
			}
			x := make([]float32, 32*nb)
			for i := range x {
				x[i] = 1
			}
			if got := dotMXFP4(blocks, scales, x); !math.IsInf(float64(got), 1) {
				t.Errorf("%s: dotMXFP4 %d blocks of 6*2^127: %g, want +Inf", set, nb, got)
			}
		}
	})
}
