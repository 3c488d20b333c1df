package cpu

import "math"

// The inner loops of every matrix product. Each kernel has a pure-Go
// version (the *Go functions below), which is the definition and runs
// everywhere; on amd64 with AVX2 and FMA, dot_amd64.go replaces the
// variables with assembly at start-up. The assembly is tested against the
// Go versions on random inputs (dot_test.go): the results agree to float
// rounding, since only the order of the additions differs.
var (
	// dotF32 is a · b[:len(a)].
	dotF32 = dotF32Go
	// dotBF16 is the bf16 row w times x[:len(w)].
	dotBF16 = dotBF16Go
	// dotMXFP4 is an MXFP4 row (len(scales) blocks of 32 values) times
	// x in pair order (see pairOrder).
	dotMXFP4 = dotMXFP4Go
	// decodeBF16 widens a bf16 row into dst[:len(src)].
	decodeBF16 = decodeBF16Go
	// decodeMXFP4 writes the 32*len(scales) values of an MXFP4 row to dst.
	decodeMXFP4 = decodeMXFP4Go
	// dotF32x4 is a · x0, a · x1, a · x2, a · x3: a row of the weights
	// against four tokens, read once for all four.
	dotF32x4 = dotF32x4Go
	// dotF32x2x4 is rows a and b against four tokens: outA[0:4] gets
	// a · x0..x3, outB[0:4] b · x0..x3.
	dotF32x2x4 = dotF32x2x4Go
	// dotF32x2x8 is rows a and b against the eight tokens that start at
	// data[offs[0..7]]: outA[0:8] gets a · x0..x7, outB[0:8] b · x0..x7.
	// A step of several tokens spends most of its matrix time here; the
	// AVX-512 version reads each chunk of the rows once for all eight.
	dotF32x2x8 = dotF32x2x8Halves
	// dotBF16x2x8 is bf16 rows a and b against eight tokens x[0..7]
	// (each at least len(a) long): outA[0:8] gets a · x0..x7, outB[0:8]
	// b · x0..x7. The AVX-512 version widens the rows in registers, so
	// a step of several tokens never decodes them to memory; the AVX2
	// one does the same four tokens at a time (two calls of a 2x4
	// kernel, for the register count).
	dotBF16x2x8 = dotBF16x2x8Each
	// expSum replaces each x[i] by e^(x[i]-mx) and returns their sum:
	// the exponentials of a softmax. Attention spends most of its
	// arithmetic here once the dot products are vectorised.
	expSum = expSumGo
	// decodeF16 widens an f16 row (little-endian bytes) into dst.
	decodeF16 = decodeF16Go
	// attnScores2 computes attention scores for two query heads that
	// share a KV head: for the rows j < len(outA) of k (row j at
	// k[j*stride:], len(qa) wide), outA[j] = k_j · qa, outB[j] = k_j · qb.
	// Each key row is read once for both heads, and the AVX-512 version
	// does eight rows a call, so no call is made per position.
	attnScores2 = attnScores2Go
	// attnValues2 is the other half of attention for two query heads:
	// for the rows j < len(pa) of v (row j at v[j*stride:], len(accA)
	// wide), accA += pa[j] * v_j and accB += pb[j] * v_j, each column
	// summed over the rows in order, so that splitting the rows into
	// blocks does not change the result.
	attnValues2 = attnValues2Go
	// dotMXFP4x2x4 is MXFP4 rows a and b (blocks and scales, as
	// dotMXFP4 reads them) against four inputs in pair order: outA[0:4]
	// gets a · x0..x3, outB[0:4] b · x0..x3. An expert that several
	// tokens of a step are routed to reads each row once for four of
	// them; the AVX-512 version looks each block's codes up once for
	// the four.
	dotMXFP4x2x4 = dotMXFP4x2x4Each
	// dotMXFP4x2x2 is dotMXFP4x2x4 for the inputs x0 and x1 only:
	// outA[0:2] and outB[0:2] get their products, outA[2:4] and
	// outB[2:4] are scratch.
	dotMXFP4x2x2 = dotMXFP4x2x2Each
	// swigluExp replaces each x[i] by e^x[i]: the sigmoids of the MoE's
	// SwiGLU, a whole row of them at a time.
	swigluExp = expAllGo
)

// kernelSet names the kernels in use, for benchmarks and reports.
var kernelSet = "go"

// mxfp4Quads says that dotMXFP4x2x4 has a kernel of its own (AVX2 and
// AVX-512), which multiplies an expert's packed rows with four of its
// inputs at once: the MoE then never decodes an expert's rows. The Go
// set runs the one-row kernel for each input, and experts with many
// inputs decode their rows instead.
var mxfp4Quads = false

// fp4x2 holds twice the E2M1 values and mxfp4Half[s] is 2^(s-128), so
// that fp4x2[c]*mxfp4Half[s] = FP4[c]*2^(s-127) with both factors exact
// float32 values for every scale byte, 255 and 0 included (2^128 is not a
// float32). The doubled codes are small integers, which the assembly
// looks up as bytes.
var (
	fp4x2     = [16]float32{0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12}
	mxfp4Half = func() (t [256]float32) {
		for s := range t {
			t[s] = float32(math.Ldexp(1, s-128))
		}
		return
	}()
)

func dotF32Go(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func dotF32x4Go(a, x0, x1, x2, x3 []float32) (float32, float32, float32, float32) {
	return dotF32Go(a, x0), dotF32Go(a, x1), dotF32Go(a, x2), dotF32Go(a, x3)
}

func dotF32x2x4Go(a, b, x0, x1, x2, x3, outA, outB []float32) {
	outA[0], outA[1], outA[2], outA[3] = dotF32x4Go(a, x0, x1, x2, x3)
	outB[0], outB[1], outB[2], outB[3] = dotF32x4Go(b, x0, x1, x2, x3)
}

// dotF32x2x8Halves is two calls of the 2x4 kernel in use: the Go set's
// definition, and AVX2's kernel (16 vector registers are too few for 16
// accumulators and the operands).
func dotF32x2x8Halves(a, b, data []float32, offs []int32, outA, outB []float32) {
	n := len(a)
	b = b[:n]
	var x [8][]float32
	for i, o := range offs[:8] {
		x[i] = data[o : int(o)+n]
	}
	dotF32x2x4(a, b, x[0], x[1], x[2], x[3], outA[0:4], outB[0:4])
	dotF32x2x4(a, b, x[4], x[5], x[6], x[7], outA[4:8], outB[4:8])
}

// tok8 is eight tokens' rows, as the 2x8 kernels read them.
type tok8 [8][]float32

// dotBF16x2x8Each runs the one-row kernel in use for each output.
func dotBF16x2x8Each(a, b []uint16, x *tok8, outA, outB []float32) {
	b = b[:len(a)]
	outA, outB = outA[:8], outB[:8]
	for t := range x {
		outA[t] = dotBF16(a, x[t])
		outB[t] = dotBF16(b, x[t])
	}
}

func expSumGo(x []float32, mx float32) float32 {
	var s float32
	for i, v := range x {
		x[i] = exp32(v - mx)
		s += x[i]
	}
	return s
}

// mxRow is one MXFP4 row's blocks and scales.
type mxRow struct{ blocks, scales []byte }

// dotMXFP4x2x4Each runs the one-row kernel in use for each output.
func dotMXFP4x2x4Each(a, b mxRow, x *[4][]float32, outA, outB []float32) {
	outA, outB = outA[:4], outB[:4]
	for t := range x {
		outA[t] = dotMXFP4(a.blocks, a.scales, x[t])
		outB[t] = dotMXFP4(b.blocks, b.scales, x[t])
	}
}

func dotMXFP4x2x2Each(a, b mxRow, x *[4][]float32, outA, outB []float32) {
	outA, outB = outA[:4], outB[:4]
	for t := range 2 {
		outA[t] = dotMXFP4(a.blocks, a.scales, x[t])
		outB[t] = dotMXFP4(b.blocks, b.scales, x[t])
	}
}

func expAllGo(x []float32) {
	for i, v := range x {
		x[i] = exp32(v)
	}
}

func attnScores2Go(k []float32, stride int, qa, qb, outA, outB []float32) {
	hd := len(qa)
	qb = qb[:hd]
	outB = outB[:len(outA)]
	for j := range outA {
		row := k[j*stride : j*stride+hd]
		outA[j] = dotF32Go(row, qa)
		outB[j] = dotF32Go(row, qb)
	}
}

func attnValues2Go(v []float32, stride int, pa, pb, accA, accB []float32) {
	d := len(accA)
	pb = pb[:len(pa)]
	accB = accB[:d]
	for j, wa := range pa {
		wb := pb[j]
		row := v[j*stride : j*stride+d]
		for i, x := range row {
			accA[i] += wa * x
			accB[i] += wb * x
		}
	}
}

func decodeF16Go(h []byte, dst []float32) {
	h = h[:2*len(dst)]
	for i := range dst {
		dst[i] = f16At(h[2*i:])
	}
}

func dotBF16Go(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		s0 += bf16(w[i]) * x[i]
		s1 += bf16(w[i+1]) * x[i+1]
		s2 += bf16(w[i+2]) * x[i+2]
		s3 += bf16(w[i+3]) * x[i+3]
	}
	for ; i < len(w); i++ {
		s0 += bf16(w[i]) * x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// pairOrder writes x in the order dotMXFP4 reads it: in each block of 32,
// the 16 even elements, then the 16 odd ones. Byte j of an MXFP4 block
// holds element 2j in its low nibble and 2j+1 in its high nibble, so the
// kernels look up all low nibbles at once and all high ones at once, and
// multiply each set by a contiguous run of x. A matrix-vector product
// reorders x once and reads every row against it.
func pairOrder(x, dst []float32) {
	dst = dst[:len(x)]
	for b := 0; b+32 <= len(x); b += 32 {
		xs, ds := x[b:b+32], dst[b:b+32]
		for j := 0; j < 16; j++ {
			ds[j] = xs[2*j]
			ds[16+j] = xs[2*j+1]
		}
	}
}

// dotMXFP4Go decodes 4-bit values as it multiplies: the weights stay
// packed. xp is x in pair order.
func dotMXFP4Go(blocks, scales []byte, xp []float32) float32 {
	blocks = blocks[:16*len(scales)]
	xp = xp[:32*len(scales)]
	var total float32
	for b, s := range scales {
		blk := blocks[b*16 : b*16+16]
		even := xp[b*32 : b*32+16]
		odd := xp[b*32+16 : b*32+32]
		var s0, s1 float32
		for j, v := range blk {
			s0 += fp4x2[v&15] * even[j]
			s1 += fp4x2[v>>4] * odd[j]
		}
		total += (s0 + s1) * mxfp4Half[s]
	}
	return total
}

func decodeBF16Go(src []uint16, dst []float32) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = bf16(h)
	}
}

func decodeMXFP4Go(blocks, scales []byte, dst []float32) {
	blocks = blocks[:16*len(scales)]
	dst = dst[:32*len(scales)]
	for b, s := range scales {
		scale := mxfp4Half[s]
		blk := blocks[b*16 : b*16+16]
		out := dst[b*32 : b*32+32]
		for j, v := range blk {
			out[2*j] = fp4x2[v&15] * scale
			out[2*j+1] = fp4x2[v>>4] * scale
		}
	}
}
