package cpu

import (
	"encoding/binary"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/runtime/engine"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestAttnKernels checks the grouped-query attention kernels of every
// kernel set against float64 sums, at head widths that are and are not
// multiples of the vector width, row counts around the blocks of 4 and 8,
// and rows spaced by an odd stride from an odd start (a cache's rows of
// one KV head among others).
func TestAttnKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	withKernels(t, func(set string) {
		for _, d := range []int{1, 7, 8, 16, 24, 32, 33, 48, 64, 80, 128} {
			for _, n := range []int{0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 65, 130} {
				stride := 2*d + 3
				start := 5
				data := randFloats(r, start+n*stride)
				rows := data[start:]
				qa, qb := randFloats(r, d), randFloats(r, d)
				outA, outB := make([]float32, n+1), make([]float32, n+1)
				outA[n], outB[n] = 42, 43 // past the end: untouched
				attnScores2(rows, stride, qa, qb, outA[:n], outB[:n])
				for j := 0; j < n; j++ {
					for h, q := range [][]float32{qa, qb} {
						var want, mags float64
						for i := 0; i < d; i++ {
							p := float64(rows[j*stride+i]) * float64(q[i])
							want += p
							mags += math.Abs(p)
						}
						got := [][]float32{outA, outB}[h][j]
						if math.Abs(float64(got)-want) > dotBound(mags, d) {
							t.Errorf("%s: attnScores2 d=%d n=%d row %d head %d: %g, want %g", set, d, n, j, h, got, want)
						}
					}
				}
				if outA[n] != 42 || outB[n] != 43 {
					t.Errorf("%s: attnScores2 d=%d n=%d wrote past its rows", set, d, n)
				}

				pa, pb := randFloats(r, n), randFloats(r, n)
				accA, accB := randFloats(r, d+1), randFloats(r, d+1)
				initA, initB := append([]float32(nil), accA...), append([]float32(nil), accB...)
				attnValues2(rows, stride, pa, pb, accA[:d], accB[:d])
				for i := 0; i < d; i++ {
					for h, p := range [][]float32{pa, pb} {
						init := []float32{initA[i], initB[i]}[h]
						want, mags := float64(init), math.Abs(float64(init))
						for j := 0; j < n; j++ {
							v := float64(p[j]) * float64(rows[j*stride+i])
							want += v
							mags += math.Abs(v)
						}
						got := [][]float32{accA, accB}[h][i]
						if math.Abs(float64(got)-want) > dotBound(mags, n+1) {
							t.Errorf("%s: attnValues2 d=%d n=%d column %d head %d: %g, want %g", set, d, n, i, h, got, want)
						}
					}
				}
				if accA[d] != initA[d] || accB[d] != initB[d] {
					t.Errorf("%s: attnValues2 d=%d n=%d wrote past its columns", set, d, n)
				}
			}
		}
	})
}

// TestDecodeF16 checks the f16 row decoder against the weights package's
// converter, on every half (NaNs, infinities and subnormals included),
// from an odd byte offset.
func TestDecodeF16(t *testing.T) {
	withKernels(t, func(set string) {
		const n = 1 << 16
		b := make([]byte, 1+2*n+2)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(b[1+2*i:], uint16(i))
		}
		for _, count := range []int{0, 1, 7, 8, 9, 31, n} {
			dst := make([]float32, count+1)
			dst[count] = 42
			decodeF16(b[1:], dst[:count])
			for i := 0; i < count; i++ {
				want := weights.F16BitsToF32(uint16(i))
				if math.Float32bits(dst[i]) != math.Float32bits(want) && !(math.IsNaN(float64(want)) && math.IsNaN(float64(dst[i]))) {
					t.Fatalf("%s: decodeF16 of %#04x = %g, want %g", set, i, dst[i], want)
				}
			}
			if dst[count] != 42 {
				t.Errorf("%s: decodeF16 of %d wrote past the row", set, count)
			}
		}
	})
}

// TestSwiGLUExp checks the SwiGLU's exponentials against math.Exp,
// overflow to +Inf and underflow to 0 included.
func TestSwiGLUExp(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	withKernels(t, func(set string) {
		for _, n := range append(lengths, 17, 200) {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 40)
			}
			if n > 4 {
				x[0], x[1], x[2], x[3] = 89, -104, float32(math.Inf(-1)), 0
			}
			orig := append([]float32(nil), x...)
			swigluExp(x)
			for i, v := range orig {
				w := math.Exp(float64(v))
				if w > math.MaxFloat32 {
					w = math.Inf(1)
				}
				if d := math.Abs(float64(x[i]) - w); float64(x[i]) != w && !(d <= 4*1.2e-7*w+1.5e-45) {
					t.Errorf("%s: n=%d: e^%g = %g, want %g", set, n, v, x[i], w)
				}
			}
		}
	})
}

// TestDotMXFP4x2x4 checks the two-row, four-input MXFP4 kernel against
// float64 sums of the rows dequantised by the weights package, with the
// inputs in pair order as the kernel reads them.
func TestDotMXFP4x2x4(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	withKernels(t, func(set string) {
		for _, nb := range []int{0, 1, 2, 3, 8, 90, 91} {
			var rows [2]mxRow
			var dq [2][]float32
			for i := range rows {
				rows[i].blocks, rows[i].scales = mxfp4Row(r, nb, 110, 130)
				dq[i] = make([]float32, 32*nb)
				if nb > 0 {
					weights.DequantMXFP4Row(dq[i], rows[i].blocks, rows[i].scales)
				}
			}
			var xs, paired [4][]float32
			for i := range xs {
				xs[i] = randFloats(r, 32*nb)
				paired[i] = make([]float32, 32*nb+i) // longer than the row is fine
				pairOrder(xs[i], paired[i])
			}
			out := make([]float32, 10)
			out[4], out[9] = 42, 43
			dotMXFP4x2x4(rows[0], rows[1], &paired, out[:4], out[5:9])
			out2 := make([]float32, 10)
			out2[4], out2[9] = 42, 43
			dotMXFP4x2x2(rows[0], rows[1], &paired, out2[:4], out2[5:9])
			for row := range rows {
				for i := range xs {
					if i < 2 && out2[row*5+i] != out[row*5+i] {
						// The two-input kernel is the four-input one with
						// fewer inputs: same order of additions.
						t.Errorf("%s: dotMXFP4x2x2 %d blocks, row %d input %d: %g, dotMXFP4x2x4 gives %g", set, nb, row, i, out2[row*5+i], out[row*5+i])
					}
					var want, mags float64
					for c := range xs[i] {
						p := float64(dq[row][c]) * float64(xs[i][c])
						want += p
						mags += math.Abs(p)
					}
					got := out[row*5+i]
					if math.Abs(float64(got)-want) > dotBound(mags, 32*nb) {
						t.Errorf("%s: dotMXFP4x2x4 %d blocks, row %d input %d: %g, want %g", set, nb, row, i, got, want)
					}
				}
			}
			if out[4] != 42 || out[9] != 43 || out2[4] != 42 || out2[9] != 43 {
				t.Errorf("%s: dotMXFP4x2x4 %d blocks wrote past its outputs", set, nb)
			}
		}
	})
}

// TestWideStepAllocatesNothing: a step of 16 sequences' decode tokens on
// fortune (8 experts, 2 routed per token, so several pairs share an
// expert) allocates nothing under any kernel set.
func TestWideStepAllocatesNothing(t *testing.T) {
	m := loadFixture(t, fixtures.Fortune, compiler.PlanOptions{Ctx: 64, Batch: 16}, Options{Sequences: 16})
	step := make([]engine.Token, 16)
	for s := range step {
		step[s] = engine.Token{ID: int32(10 + 37*s), Seq: s, Pos: 0}
	}
	if _, err := m.Step(step); err != nil {
		t.Fatal(err)
	}
	for s := range step {
		step[s].Pos = 1
	}
	withKernels(t, func(set string) {
		allocs := testing.AllocsPerRun(5, func() {
			if _, err := m.Step(step); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per step of 16 tokens", set, allocs)
		}
	})
}

// TestAttentionAcrossTheRing decodes fortune (sliding window 64) one token
// at a time to well past its ring's capacity, and compares the logits
// with a plan whose batch is so large that the same layers keep the whole
// context. The ring's wrap splits the window's rows into two blocks, and
// the attention kernels sum each score and each value column in an order
// that does not depend on the blocks, so the logits must be the same
// bits, in every cache format and under every kernel set.
func TestAttentionAcrossTheRing(t *testing.T) {
	for _, kv := range []string{"f32", "f16", "q8", "q4"} {
		ring := loadFixture(t, fixtures.Fortune, compiler.PlanOptions{KV: kv, Ctx: 192, Batch: 8}, Options{})
		flat := loadFixture(t, fixtures.Fortune, compiler.PlanOptions{KV: kv, Ctx: 192, Batch: 192}, Options{})
		if rings := ring.Rings(); len(rings) == 0 || len(flat.Rings()) != 0 {
			t.Fatalf("%s: rings %v and %v: the test needs one plan with a ring and one without", kv, rings, flat.Rings())
		}
		withKernels(t, func(set string) {
			for pos := 0; pos < 150; pos++ {
				tok := []int32{int32(7 + 31*pos%4000)}
				a, err := ring.Forward(tok, pos)
				if err != nil {
					t.Fatal(err)
				}
				b, err := flat.Forward(tok, pos)
				if err != nil {
					t.Fatal(err)
				}
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("%s, %s: position %d, logit %d: %g with the ring, %g without", set, kv, pos, i, a[i], b[i])
					}
				}
			}
		})
	}
}
