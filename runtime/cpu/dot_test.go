package cpu

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/minerva-ml/minerva/internal/fixtures"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// The kernel tests check every kernel set this machine runs against an
// oracle outside this package where one exists (the weights package's
// decoders, float64 sums) and against the Go kernels otherwise.

// withKernels runs f under each kernel set, restoring the default after.
func withKernels(t testing.TB, f func(set string)) {
	t.Helper()
	def := kernelSet
	defer useKernels(def)
	for _, set := range kernelSets() {
		if !useKernels(set) {
			t.Fatalf("BUG: kernel set %s listed but not usable", set)
		}
		f(set)
	}
}

// dotBound is the rounding error a float32 sum of these products may
// have in any order: n ulps of the sum of magnitudes, doubled for slack.
func dotBound(mags float64, n int) float64 {
	return 2*float64(n+1)*float64(math.Nextafter32(1, 2)-1)*mags + 1e-30
}

func randFloats(r *rand.Rand, n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(r.NormFloat64())
	}
	return out
}

// lengths covers empty rows, the assembly's tails and unrolled loops, and
// the widths of gpt-oss-20b.
var lengths = []int{0, 1, 7, 8, 9, 15, 16, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 2880, 4096}

func TestDotF32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	withKernels(t, func(set string) {
		for _, n := range lengths {
			a, b := randFloats(r, n), randFloats(r, n+3) // b may be longer
			var want, mags float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				mags += math.Abs(float64(a[i]) * float64(b[i]))
			}
			if got := dotF32(a, b); math.Abs(float64(got)-want) > dotBound(mags, n) {
				t.Errorf("%s: dotF32 n=%d: %g, want %g", set, n, got, want)
			}
			xs := [4][]float32{randFloats(r, n), randFloats(r, n), randFloats(r, n), randFloats(r, n)}
			a2 := randFloats(r, n)
			g0, g1, g2, g3 := dotF32x4(a, xs[0], xs[1], xs[2], xs[3])
			two := make([]float32, 8)
			dotF32x2x4(a, a2, xs[0], xs[1], xs[2], xs[3], two[:4], two[4:])
			got := append([]float32{g0, g1, g2, g3}, two...)
			for j, g := range got {
				row, k := a, j%4
				if j >= 8 {
					row = a2
				}
				var want, mags float64
				for i := range row {
					want += float64(row[i]) * float64(xs[k][i])
					mags += math.Abs(float64(row[i]) * float64(xs[k][i]))
				}
				if math.Abs(float64(g)-want) > dotBound(mags, n) {
					t.Errorf("%s: result %d of dotF32x4 and dotF32x2x4, n=%d: %g, want %g", set, j, n, g, want)
				}
			}
		}
	})
}

// TestDotF32x2x8 checks the two-rows-by-eight-tokens kernel against
// float64 sums, with the tokens at scattered offsets of one buffer (as the
// MoE gathers them) and row lengths that leave every tail.
func TestDotF32x2x8(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	withKernels(t, func(set string) {
		for _, n := range append(lengths, 17, 47, 48, 49, 255, 257) {
			a, b := randFloats(r, n), randFloats(r, n)
			data := randFloats(r, 9*n+40)
			offs := make([]int32, 8)
			for i := range offs {
				offs[i] = int32(i*n + r.IntN(5)) // unaligned, may overlap
			}
			outA, outB := make([]float32, 8), make([]float32, 8)
			for i := range outA {
				outA[i], outB[i] = float32(math.NaN()), float32(math.NaN()) // must be overwritten
			}
			dotF32x2x8(a, b, data, offs, outA, outB)
			for j := 0; j < 16; j++ {
				row, got := a, outA[j%8]
				if j >= 8 {
					row, got = b, outB[j%8]
				}
				x := data[offs[j%8]:]
				var want, mags float64
				for i := range row {
					want += float64(row[i]) * float64(x[i])
					mags += math.Abs(float64(row[i]) * float64(x[i]))
				}
				if !(math.Abs(float64(got)-want) <= dotBound(mags, n)) {
					t.Errorf("%s: result %d of dotF32x2x8, n=%d: %g, want %g", set, j, n, got, want)
				}
			}
		}
	})
}

// TestExpSum checks the softmax exponentials against float64 math.Exp:
// within 4 ulps each, the sum within float32 summation error, and the
// edges (underflow to 0, -Inf to 0, NaN stays NaN).
func TestExpSum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	withKernels(t, func(set string) {
		for _, n := range append(lengths, 17, 33, 200) {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(r.NormFloat64() * 30)
			}
			if n > 3 {
				x[0], x[1], x[2] = -1e30, float32(math.Inf(-1)), -100
			}
			mx := float32(r.NormFloat64() * 10)
			orig := slices.Clone(x)
			sum := expSum(x, mx)
			var want float64
			for i, v := range orig {
				w := math.Exp(float64(v - mx))
				want += float64(float32(w))
				if w > math.MaxFloat32 {
					w = math.Inf(1)
				}
				if d := math.Abs(float64(x[i]) - w); float64(x[i]) != w && !(d <= 4*1.2e-7*w+1.5e-45) {
					t.Errorf("%s: n=%d: e^(%g - %g) = %g, want %g", set, n, v, mx, x[i], w)
				}
			}
			if math.IsInf(want, 0) || want > math.MaxFloat32 {
				continue
			}
			if !(math.Abs(float64(sum)-want) <= 2*float64(n+1)*1.2e-7*want+1e-38) {
				t.Errorf("%s: n=%d: sum %g, want %g", set, n, sum, want)
			}
		}
		x := make([]float32, 32)
		x[5], x[20] = float32(math.NaN()), float32(math.NaN())
		if s := expSum(x, 0); !math.IsNaN(float64(x[5])) || !math.IsNaN(float64(x[20])) || !math.IsNaN(float64(s)) || x[4] != 1 {
			t.Errorf("%s: NaN inputs give %g, %g, sum %g; others %g", set, x[5], x[20], s, x[4])
		}
	})
}

// TestDotBF16x2x8 checks the bf16 2x8 kernel against float64 sums of
// the widened rows.
func TestDotBF16x2x8(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	withKernels(t, func(set string) {
		for _, n := range append(lengths, 17, 47, 48, 49, 255, 257) {
			a, b := randBF16(r, n), randBF16(r, n)
			var x tok8
			for i := range x {
				x[i] = randFloats(r, n+r.IntN(3)) // may be longer
			}
			outA, outB := make([]float32, 8), make([]float32, 8)
			for i := range outA {
				outA[i], outB[i] = float32(math.NaN()), float32(math.NaN())
			}
			dotBF16x2x8(a, b, &x, outA, outB)
			for j := 0; j < 16; j++ {
				row, got := a, outA[j%8]
				if j >= 8 {
					row, got = b, outB[j%8]
				}
				var want, mags float64
				for i, h := range row {
					v := float64(math.Float32frombits(uint32(h)<<16)) * float64(x[j%8][i])
					want += v
					mags += math.Abs(v)
				}
				if !(math.Abs(float64(got)-want) <= dotBound(mags, n)) {
					t.Errorf("%s: result %d of dotBF16x2x8, n=%d: %g, want %g", set, j, n, got, want)
				}
			}
		}
	})
}

func randBF16(r *rand.Rand, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = weights.F32ToBF16Bits(float32(r.NormFloat64()))
	}
	return out
}

func TestDotBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	withKernels(t, func(set string) {
		for _, n := range lengths {
			w, x := randBF16(r, n), randFloats(r, n)
			var want, mags float64
			for i := range w {
				p := float64(weights.BF16BitsToF32(w[i])) * float64(x[i])
				want += p
				mags += math.Abs(p)
			}
			if got := dotBF16(w, x); math.Abs(float64(got)-want) > dotBound(mags, n) {
				t.Errorf("%s: dotBF16 n=%d: %g, want %g", set, n, got, want)
			}
			dst := make([]float32, n+1)
			dst[n] = 42
			decodeBF16(w, dst)
			for i, h := range w {
				if math.Float32bits(dst[i]) != math.Float32bits(weights.BF16BitsToF32(h)) {
					t.Fatalf("%s: decodeBF16 n=%d element %d: %g, want %g", set, n, i, dst[i], weights.BF16BitsToF32(h))
				}
			}
			if dst[n] != 42 {
				t.Fatalf("%s: decodeBF16 n=%d wrote past the row", set, n)
			}
		}
	})
}

// mxfp4Row makes a random row of nb blocks with scale bytes from lo to hi.
func mxfp4Row(r *rand.Rand, nb int, lo, hi int) (blocks, scales []byte) {
	blocks = make([]byte, 16*nb)
	scales = make([]byte, nb)
	for i := range blocks {
		blocks[i] = byte(r.Uint32())
	}
	for i := range scales {
		scales[i] = byte(lo + r.IntN(hi-lo+1))
	}
	return
}

func TestMXFP4Kernels(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	withKernels(t, func(set string) {
		for _, nb := range []int{0, 1, 2, 3, 4, 5, 90, 91} {
			// Decoding is exact for every scale byte, the extremes
			// included: compare bits with the weights package's decoder.
			blocks, scales := mxfp4Row(r, nb, 0, 255)
			want := make([]float32, 32*nb)
			if nb > 0 {
				weights.DequantMXFP4Row(want, blocks, scales)
			}
			got := make([]float32, 32*nb+1)
			got[32*nb] = 42
			decodeMXFP4(blocks, scales, got)
			for i := range want {
				if got[i] != want[i] && !(math.IsNaN(float64(got[i])) && math.IsNaN(float64(want[i]))) {
					t.Fatalf("%s: decodeMXFP4 %d blocks, element %d (scale %d, byte %#02x): %g, want %g",
						set, nb, i, scales[i/32], blocks[i/2], got[i], want[i])
				}
			}
			if got[32*nb] != 42 {
				t.Fatalf("%s: decodeMXFP4 %d blocks wrote past the row", set, nb)
			}

			// Products in a realistic scale range against a float64 sum of
			// the exactly dequantised row.
			blocks, scales = mxfp4Row(r, nb, 110, 130)
			dq := make([]float32, 32*nb)
			decodeMXFP4Go(blocks, scales, dq)
			x := randFloats(r, 32*nb)
			var sum, mags float64
			for i := range x {
				p := float64(dq[i]) * float64(x[i])
				sum += p
				mags += math.Abs(p)
			}
			xp := make([]float32, len(x))
			pairOrder(x, xp)
			if got := dotMXFP4(blocks, scales, xp); math.Abs(float64(got)-sum) > dotBound(mags, 32*nb) {
				t.Errorf("%s: dotMXFP4 %d blocks: %g, want %g", set, nb, got, sum)
			}
		}
	})
}

// FuzzDotKernels compares the kernel sets on rows built from the fuzzer's
// bytes: f32, bf16 and f16 values from pairs of bytes (bounded, so no sum
// overflows in one order and not another), MXFP4 codes as they come.
func FuzzDotKernels(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0xff, 0x00, 0x80, 0x7f, 0x01, 0x02, 0x03})
	seed := make([]byte, 2*2880)
	r := rand.New(rand.NewPCG(7, 8))
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) / 2
		x := make([]float32, n)
		w := make([]uint16, n)
		for i := range x {
			v := int16(binary.LittleEndian.Uint16(data[2*i:]))
			x[i] = float32(v) / 4096
			w[i] = weights.F32ToBF16Bits(float32(v>>4) / 64)
		}
		nb := len(data) / 17
		blocks := data[:16*nb]
		scales := make([]byte, nb)
		for i := range scales {
			scales[i] = 100 + data[16*nb+i]%50
		}
		xm := make([]float32, 32*nb)
		for i := range xm {
			xm[i] = float32(int8(data[i%len(data)])) / 16
		}

		type results struct{ f32, f32x4, f32x2x4, bf16, mx float32 }
		var ref results
		var mags results
		for i := range x {
			mags.f32 += abs32(x[i] * x[i])
			mags.bf16 += abs32(bf16(w[i]) * x[i])
		}
		dq := make([]float32, 32*nb)
		decodeMXFP4Go(blocks, scales, dq)
		for i := range xm {
			mags.mx += abs32(dq[i] * xm[i])
		}
		withKernels(t, func(set string) {
			var got results
			got.f32 = dotF32(x, x)
			got.f32x4, _, _, _ = dotF32x4(x, x, x, x, x)
			two := make([]float32, 8)
			dotF32x2x4(x, x, x, x, x, x, two[:4], two[4:])
			got.f32x2x4 = two[7]
			got.bf16 = dotBF16(w, x)
			got.mx = dotMXFP4(blocks, scales, xm)
			if set == "go" {
				ref = got
				return
			}
			check := func(what string, g, want, mag float32, n int) {
				if math.Abs(float64(g-want)) > 2*dotBound(float64(mag), n) {
					t.Errorf("%s %s (n=%d): %g, the Go kernel gives %g", set, what, n, g, want)
				}
			}
			check("dotF32", got.f32, ref.f32, mags.f32, n)
			check("dotF32x4", got.f32x4, ref.f32x4, mags.f32, n)
			check("dotF32x2x4", got.f32x2x4, ref.f32x2x4, mags.f32, n)
			check("dotBF16", got.bf16, ref.bf16, mags.bf16, n)
			check("dotMXFP4", got.mx, ref.mx, mags.mx, 32*nb)
		})
	})
}

// BenchmarkKernels measures each kernel over one gpt-oss-20b row (2880
// values) held in cache: the arithmetic rate, without memory in the way.
func BenchmarkKernels(b *testing.B) {
	const n = 2880
	r := rand.New(rand.NewPCG(9, 10))
	a, x := randFloats(r, n), randFloats(r, n)
	w := randBF16(r, n)
	blocks, scales := mxfp4Row(r, n/32, 118, 124)
	dst := make([]float32, n)
	def := kernelSet
	defer useKernels(def)
	for _, set := range kernelSets() {
		useKernels(set)
		run := func(name string, bytes int, f func()) {
			b.Run(set+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(bytes))
				for b.Loop() {
					f()
				}
			})
		}
		var sink float32
		run("dotF32", 4*n, func() { sink += dotF32(a, x) })
		run("dotF32x4", 4*n, func() { r0, _, _, _ := dotF32x4(a, x, x, x, x); sink += r0 })
		two := make([]float32, 8)
		run("dotF32x2x4", 8*n, func() { dotF32x2x4(a, x, x, x, x, x, two[:4], two[4:]); sink += two[0] })
		run("dotBF16", 2*n, func() { sink += dotBF16(w, x) })
		run("dotMXFP4", n/2+n/32, func() { sink += dotMXFP4(blocks, scales, x) })
		run("decodeBF16", 2*n, func() { decodeBF16(w, dst) })
		run("decodeMXFP4", n/2+n/32, func() { decodeMXFP4(blocks, scales, dst) })
		// The several-token kernels: bytes are the rows' (each read once
		// for all the tokens), so MB/s over the one-row kernel's is how
		// much a row's work the extra tokens share.
		var toks tok8
		for i := range toks {
			toks[i] = randFloats(r, n)
		}
		w2 := randBF16(r, n)
		run("dotBF16x2x8", 4*n, func() { dotBF16x2x8(w, w2, &toks, dst[:8], dst[8:16]); sink += dst[0] })
		blocks2, scales2 := mxfp4Row(r, n/32, 118, 124)
		ra, rb := mxRow{blocks, scales}, mxRow{blocks2, scales2}
		var quad [4][]float32
		for i := range quad {
			quad[i] = make([]float32, n)
			pairOrder(toks[i], quad[i])
		}
		run("dotMXFP4x2x4", n+n/16, func() { dotMXFP4x2x4(ra, rb, &quad, dst[:4], dst[4:8]); sink += dst[0] })
		run("dotMXFP4x2x2", n+n/16, func() { dotMXFP4x2x2(ra, rb, &quad, dst[:4], dst[4:8]); sink += dst[0] })
		_ = sink
	}
}

// TestKernelSetsOnFixtures runs each fixture's reference sequence under
// every kernel set, half as a prefill (the decoded-row path, four tokens
// at a time) and the rest one token at a time (the packed-row path), and
// compares the logits with transformers'.
func TestKernelSetsOnFixtures(t *testing.T) {
	withKernels(t, func(set string) {
		for _, fx := range fixtures.Models {
			ref := fx.Reference(t)
			m := loadFixture(t, fx, exact, Options{})
			seq := append(append([]int32(nil), ref.IDs...), ref.Generated...)
			V := ref.Vocab
			half := len(ref.IDs) / 2
			all := fixtures.PrefillThenDecode(t, m, seq, half)
			if e := fixtures.RelErr(all[:half*V], ref.LogitsFull[:half*V]); e > 1e-4 {
				t.Errorf("%s, %s kernels: prefill: relative error %.3e", fx.Name, set, e)
			}
			for p := half; p < len(seq); p++ {
				if e := fixtures.RelErr(all[p*V:(p+1)*V], ref.LogitsFull[p*V:(p+1)*V]); e > 1e-4 {
					t.Errorf("%s, %s kernels: decode at position %d: relative error %.3e", fx.Name, set, p, e)
					break
				}
			}
		}
	})
}

// TestPrefillAllocatesNothing: a prefill in steady state allocates no
// memory either, under every kernel set (a kernel behind a function
// variable must not make its operands escape).
func TestPrefillAllocatesNothing(t *testing.T) {
	withKernels(t, func(set string) {
		for _, fx := range fixtures.Models {
			m := loadFixture(t, fx, compiler.PlanOptions{Ctx: 512, Batch: 64}, Options{})
			prompt := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9}
			allocs := testing.AllocsPerRun(5, func() {
				if _, err := m.Forward(prompt, 0); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%s, %s kernels: %.1f allocations per prefill", fx.Name, set, allocs)
			}
		}
	})
}

// TestRowsBF16: the chunked several-token matrix product (rowsBF16) over
// rows longer than a chunk and not a multiple of it, with odd row runs
// short of prefetchAhead and token counts with and without full groups
// and a padded last group, against float64 sums of the bf16 rows.
func TestRowsBF16(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	withKernels(t, func(set string) {
		for _, cols := range []int{16, 250, bf16Chunk, 2*bf16Chunk + 37, 1000} {
			const rows, batch = 40, 24
			w := &weight{dtype: ir.BF16, cols: cols, rows: rows, u16: randBF16(r, rows*cols)}
			x := buf{data: randFloats(r, batch*(cols+3)), row: cols + 3}
			groups := tokenGroups(x, cols, batch)
			offs := tokenOffsets(x, batch)
			for _, seq := range []int{4, 5, 8, 11, 13, 19, 24} {
				groups.setTail(seq)
				for _, run := range [][2]int{{0, 2}, {2, 6}, {6, 22}, {22, 38}, {38, 40}} {
					o0, o1 := run[0], run[1]
					acc := make([]float32, chunkRows*batch)
					for i := range acc {
						acc[i] = float32(math.NaN())
					}
					rowsBF16(w, o0, o1, seq, groups, x.data, offs, acc, make([]float32, 16), &chunkViews{})
					for o := o0; o < o1; o++ {
						for tk := range seq {
							var want, mags float64
							for i, h := range w.row16(o) {
								v := float64(math.Float32frombits(uint32(h)<<16)) * float64(x.data[tk*x.row+i])
								want += v
								mags += math.Abs(v)
							}
							if got := acc[(o-o0)*seq+tk]; !(math.Abs(float64(got)-want) <= dotBound(mags, cols)) {
								t.Errorf("%s: cols %d, %d tokens, rows %d-%d: row %d token %d: %g, want %g", set, cols, seq, o0, o1, o, tk, got, want)
							}
						}
					}
				}
			}
		}
	})
}

// BenchmarkRowsBF16 multiplies a bf16 matrix too large for any cache
// (32768 rows of 2880, 189 MB, gpt-oss-20b's width) with eight tokens,
// on two threads as a step's loops run: by whole row pairs (rowPair, how
// every several-token call ran before rowsBF16) and chunk by chunk
// (rowsBF16). Its rate is in multiply-adds a second.
//
//	go test ./runtime/cpu -run '^$' -bench RowsBF16 -benchtime 10x -count 3
func BenchmarkRowsBF16(b *testing.B) {
	const rows, cols, seq, threads = 32768, 2880, 8, 2
	r := rand.New(rand.NewPCG(1, 2))
	w := &weight{dtype: ir.BF16, cols: cols, rows: rows, u16: randBF16(r, rows*cols)}
	x := buf{data: randFloats(r, seq*cols), row: cols}
	groups, offs := tokenGroups(x, cols, seq), tokenOffsets(x, seq)
	for _, how := range []string{"pairs", "chunked"} {
		b.Run(how, func(b *testing.B) {
			for b.Loop() {
				var wg sync.WaitGroup
				for th := range threads {
					wg.Go(func() {
						lo, hi := th*rows/threads, (th+1)*rows/threads
						acc, tmp := make([]float32, chunkRows*seq), make([]float32, 16)
						dotsA, dotsB, row := make([]float32, seq), make([]float32, seq), make([]float32, 2*cols)
						for o := lo; o < hi; {
							if how == "pairs" {
								rowPair(w, o, seq, groups, x.data, offs, row[:cols], row[cols:], dotsA, dotsB, tmp)
								o += 2
								continue
							}
							rowsBF16(w, o, o+chunkRows, seq, groups, x.data, offs, acc, tmp, &chunkViews{})
							o += chunkRows
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(rows*cols*seq)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
		})
	}
}
