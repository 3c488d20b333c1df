//go:build amd64 && !purego

package cpu

import "golang.org/x/sys/cpu"

// The assembly kernels need AVX2 (256-bit integer ops), FMA and F16C;
// every x86-64 CPU since Haswell (2013) and Zen 1 has all three. Others
// keep the Go kernels. Build with -tags purego to use the Go kernels
// everywhere.
var haveAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C

// The AVX-512 set adds an MXFP4 kernel that needs only AVX-512F (Intel
// server parts since Skylake-SP, AMD since Zen 4).
var haveAVX512 = haveAVX2 && cpu.X86.HasAVX512F

func init() {
	switch {
	case haveAVX512:
		useKernels("avx512")
	case haveAVX2:
		useKernels("avx2")
	}
}

// useKernels selects a kernel set: "go" everywhere, "avx2" and "avx512"
// where the CPU has them. Tests and benchmarks switch between them to
// compare. It must not be called while a model runs.
func useKernels(name string) bool {
	switch {
	case name == "go":
		dotF32, dotBF16, dotMXFP4 = dotF32Go, dotBF16Go, dotMXFP4Go
		decodeBF16, decodeMXFP4, dotF32x4 = decodeBF16Go, decodeMXFP4Go, dotF32x4Go
		dotF32x2x4 = dotF32x2x4Go
		dotF32x2x8, expSum = dotF32x2x8Halves, expSumGo
		dotBF16x2x8, dotMXFP4x2x4, dotMXFP4x2x2 = dotBF16x2x8Each, dotMXFP4x2x4Each, dotMXFP4x2x2Each
		decodeF16, attnScores2, attnValues2, swigluExp = decodeF16Go, attnScores2Go, attnValues2Go, expAllGo
	case name == "avx2" && haveAVX2:
		dotF32, dotBF16, dotMXFP4 = dotF32AVX2, dotBF16AVX2, dotMXFP4AVX2
		decodeBF16, decodeMXFP4, dotF32x4 = decodeBF16AVX2, decodeMXFP4AVX2, dotF32x4AVX2
		dotF32x2x4 = dotF32x2x4AVX2
		dotF32x2x8, expSum = dotF32x2x8Halves, expSumAVX2
		dotBF16x2x8, dotMXFP4x2x4, dotMXFP4x2x2 = dotBF16x2x8AVX2, dotMXFP4x2x4AVX2, dotMXFP4x2x2AVX2
		decodeF16, attnScores2, attnValues2, swigluExp = decodeF16AVX2, attnScores2AVX2, attnValues2AVX2, expAllAVX2
	case name == "avx512" && haveAVX512:
		useKernels("avx2")
		dotMXFP4 = dotMXFP4AVX512
		dotF32x2x8, expSum = dotF32x2x8AVX512, expSumAVX512
		dotBF16x2x8 = dotBF16x2x8AVX512
		attnScores2, attnValues2, swigluExp = attnScores2AVX512, attnValues2AVX512, expAllAVX512
		dotMXFP4x2x4, dotMXFP4x2x2 = dotMXFP4x2x4AVX512, dotMXFP4x2x2AVX512
	default:
		return false
	}
	decodeKernels(name)
	kernelSet = name
	mxfp4Quads = name != "go"
	return true
}

// kernelSets lists the sets this machine can run.
func kernelSets() []string {
	switch {
	case haveAVX512:
		return []string{"go", "avx2", "avx512"}
	case haveAVX2:
		return []string{"go", "avx2"}
	}
	return []string{"go"}
}

//go:noescape
func dotF32Asm(a, b *float32, n int) float32

//go:noescape
func dotF32x4Asm(a, x0, x1, x2, x3 *float32, n int) (r0, r1, r2, r3 float32)

//go:noescape
func dotF32x2x4Asm(a, b, x0, x1, x2, x3 *float32, n int, outA, outB *float32)

//go:noescape
func expSumAVX2Asm(x *float32, n int, mx float32) float32

//go:noescape
func dotBF16x2x4Asm(a, b *uint16, xs *[4]*float32, n int, outA, outB *float32)

//go:noescape
func dotMXFP4x2xAVX2Asm(blocksA, scalesA, blocksB, scalesB *byte, xs *[4]*float32, nblocks int, outA, outB *float32, four bool)

//go:noescape
func dotF32x2x8AVX512Asm(a, b *float32, xs *[8]*float32, n int, outA, outB *float32)

// prefetchLines asks for the cache lines of p[:n] ahead of their use.
//
//go:noescape
func prefetchLines(p *byte, n int)

//go:noescape
func dotBF16x2x8AVX512Asm(a, b *uint16, xs *[8]*float32, n int, outA, outB *float32)

//go:noescape
func expSumAVX512Asm(x *float32, n int, mx float32) float32

//go:noescape
func dotBF16Asm(w *uint16, x *float32, n int) float32

//go:noescape
func decodeBF16Asm(src *uint16, dst *float32, n int)

//go:noescape
func dotMXFP4Asm(blocks, scales *byte, x *float32, nblocks int) float32

//go:noescape
func dotMXFP4AVX512Asm(blocks, scales *byte, x *float32, nblocks int) float32

//go:noescape
func decodeMXFP4Asm(blocks, scales *byte, dst *float32, nblocks int)

//go:noescape
func dotMXFP4x2x4AVX512Asm(blocksA, scalesA, blocksB, scalesB *byte, xs *[4]*float32, nblocks int, outA, outB *float32)

//go:noescape
func dotMXFP4x2x2AVX512Asm(blocksA, scalesA, blocksB, scalesB *byte, xs *[4]*float32, nblocks int, outA, outB *float32)

//go:noescape
func decodeF16Asm(h *byte, dst *float32, n int)

//go:noescape
func attnValues2AVX2Asm(v *float32, stride, n int, pa, pb, accA, accB *float32, d int)

//go:noescape
func attnValues2AVX512Asm(v *float32, stride, n int, pa, pb, accA, accB *float32, d int)

//go:noescape
func readSumAsm(p *uint64, n int) uint64

func fmaPeakAVX2Asm(n int)

func fmaPeakAVX512Asm(n int)

// fmaPeak runs n iterations of the FMA-throughput loop of the widest
// vectors the CPU has and returns the flops done, or 0 where there is no
// such loop (the Go kernels). The full-size benchmarks compare prefill
// with it.
func fmaPeak(n int) float64 {
	switch {
	case haveAVX512:
		fmaPeakAVX512Asm(n)
		return float64(n) * 320
	case haveAVX2:
		fmaPeakAVX2Asm(n)
		return float64(n) * 160
	}
	return 0
}

// The wrappers check lengths (the slice expressions panic on a short
// operand, as the Go kernels do) and finish the last n%8 elements in Go.

func dotF32AVX2(a, b []float32) float32 {
	b = b[:len(a)]
	n := len(a) &^ 7
	var s float32
	if n > 0 {
		s = dotF32Asm(&a[0], &b[0], n)
	}
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

func dotF32x4AVX2(a, x0, x1, x2, x3 []float32) (float32, float32, float32, float32) {
	x0, x1, x2, x3 = x0[:len(a)], x1[:len(a)], x2[:len(a)], x3[:len(a)]
	n := len(a) &^ 7
	var r0, r1, r2, r3 float32
	if n > 0 {
		r0, r1, r2, r3 = dotF32x4Asm(&a[0], &x0[0], &x1[0], &x2[0], &x3[0], n)
	}
	for i := n; i < len(a); i++ {
		r0 += a[i] * x0[i]
		r1 += a[i] * x1[i]
		r2 += a[i] * x2[i]
		r3 += a[i] * x3[i]
	}
	return r0, r1, r2, r3
}

func dotF32x2x4AVX2(a, b, x0, x1, x2, x3, outA, outB []float32) {
	b = b[:len(a)]
	x0, x1, x2, x3 = x0[:len(a)], x1[:len(a)], x2[:len(a)], x3[:len(a)]
	outA, outB = outA[:4], outB[:4]
	n := len(a) &^ 7
	if n > 0 {
		dotF32x2x4Asm(&a[0], &b[0], &x0[0], &x1[0], &x2[0], &x3[0], n, &outA[0], &outB[0])
	} else {
		clear(outA)
		clear(outB)
	}
	for i := n; i < len(a); i++ {
		outA[0] += a[i] * x0[i]
		outA[1] += a[i] * x1[i]
		outA[2] += a[i] * x2[i]
		outA[3] += a[i] * x3[i]
		outB[0] += b[i] * x0[i]
		outB[1] += b[i] * x1[i]
		outB[2] += b[i] * x2[i]
		outB[3] += b[i] * x3[i]
	}
}

func dotF32x2x8AVX512(a, b, data []float32, offs []int32, outA, outB []float32) {
	n := len(a)
	b = b[:n]
	outA, outB = outA[:8], outB[:8]
	var x [8][]float32
	var p [8]*float32
	for i, o := range offs[:8] {
		x[i] = data[o : int(o)+n]
		if n > 0 {
			p[i] = &x[i][0]
		}
	}
	m := n &^ 15
	if m > 0 {
		dotF32x2x8AVX512Asm(&a[0], &b[0], &p, m, &outA[0], &outB[0])
	} else {
		clear(outA)
		clear(outB)
	}
	for i := m; i < n; i++ {
		for t := range x {
			outA[t] += a[i] * x[t][i]
			outB[t] += b[i] * x[t][i]
		}
	}
}

func dotBF16x2x8AVX512(a, b []uint16, x *tok8, outA, outB []float32) {
	n := len(a)
	b = b[:n]
	outA, outB = outA[:8], outB[:8]
	var p [8]*float32
	for i := range x {
		xi := x[i][:n]
		if n > 0 {
			p[i] = &xi[0]
		}
	}
	m := n &^ 15
	if m > 0 {
		dotBF16x2x8AVX512Asm(&a[0], &b[0], &p, m, &outA[0], &outB[0])
	} else {
		clear(outA)
		clear(outB)
	}
	for i := m; i < n; i++ {
		wa, wb := bf16(a[i]), bf16(b[i])
		for t := range x {
			outA[t] += wa * x[t][i]
			outB[t] += wb * x[t][i]
		}
	}
}

// expSumAVX512 computes e^y with a degree-6 polynomial (Cephes expf,
// within 2 ulps of the correctly rounded value) 16 values at a time, the
// last n%16 with math.Exp.
func expSumAVX512(x []float32, mx float32) float32 { return expSumWidth(x, mx, 16) }

func expSumAVX2(x []float32, mx float32) float32 { return expSumWidth(x, mx, 8) }

// expSumWidth runs the assembly exponential of width floats (8: AVX2, 16:
// AVX-512) over the whole vectors and the Go one over the rest.
func expSumWidth(x []float32, mx float32, width int) float32 {
	n := len(x) / width * width
	var s float32
	if n > 0 {
		s = expAsm(&x[0], n, mx, width)
	}
	for i := n; i < len(x); i++ {
		x[i] = exp32(x[i] - mx)
		s += x[i]
	}
	return s
}

func dotBF16AVX2(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	n := len(w) &^ 7
	var s float32
	if n > 0 {
		s = dotBF16Asm(&w[0], &x[0], n)
	}
	for i := n; i < len(w); i++ {
		s += bf16(w[i]) * x[i]
	}
	return s
}

func decodeBF16AVX2(src []uint16, dst []float32) {
	dst = dst[:len(src)]
	n := len(src) &^ 7
	if n > 0 {
		decodeBF16Asm(&src[0], &dst[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = bf16(src[i])
	}
}

func dotMXFP4AVX2(blocks, scales []byte, x []float32) float32 {
	if len(scales) == 0 {
		return 0
	}
	blocks = blocks[:16*len(scales)]
	x = x[:32*len(scales)]
	return dotMXFP4Asm(&blocks[0], &scales[0], &x[0], len(scales))
}

func dotMXFP4AVX512(blocks, scales []byte, x []float32) float32 {
	if len(scales) == 0 {
		return 0
	}
	blocks = blocks[:16*len(scales)]
	x = x[:32*len(scales)]
	return dotMXFP4AVX512Asm(&blocks[0], &scales[0], &x[0], len(scales))
}

func decodeMXFP4AVX2(blocks, scales []byte, dst []float32) {
	if len(scales) == 0 {
		return
	}
	blocks = blocks[:16*len(scales)]
	dst = dst[:32*len(scales)]
	decodeMXFP4Asm(&blocks[0], &scales[0], &dst[0], len(scales))
}

// readSum adds the words of p, 256 bits at a time where the CPU allows.
func readSum(p []uint64) uint64 {
	n := len(p) &^ 15
	var s uint64
	if haveAVX2 && n > 0 {
		s = readSumAsm(&p[0], n)
	} else {
		n = 0
	}
	for _, v := range p[n:] {
		s += v
	}
	return s
}

func decodeF16AVX2(h []byte, dst []float32) {
	h = h[:2*len(dst)]
	n := len(dst) &^ 7
	if n > 0 {
		decodeF16Asm(&h[0], &dst[0], n)
	}
	for i := n; i < len(dst); i++ {
		dst[i] = f16At(h[2*i:])
	}
}

// rowsSpan checks that the n rows of width d at stride fit in x, as the
// Go kernels' slice expressions do, and returns them.
func rowsSpan(x []float32, stride, n, d int) []float32 {
	if n == 0 {
		return x[:0]
	}
	return x[:(n-1)*stride+d]
}

// attnScores2AVX2 runs the 2x4 kernel (two queries against four key rows)
// over the rows, the last one to three as a padded block, so that every
// row's score is summed in the same order wherever the row lies: the
// caller's blocks (a ring's wrap splits them) then do not change it. Head
// widths that are not a multiple of 8 take the one-row kernel.
func attnScores2AVX2(k []float32, stride int, qa, qb, outA, outB []float32) {
	hd := len(qa)
	qb = qb[:hd]
	n := len(outA)
	outB = outB[:n]
	k = rowsSpan(k, stride, n, hd)
	if hd == 0 || hd%8 != 0 {
		for j := 0; j < n; j++ {
			row := k[j*stride : j*stride+hd]
			outA[j], outB[j] = dotF32AVX2(row, qa), dotF32AVX2(row, qb)
		}
		return
	}
	j := 0
	for ; j+4 <= n; j += 4 {
		dotF32x2x4Asm(&qa[0], &qb[0], &k[j*stride], &k[(j+1)*stride], &k[(j+2)*stride], &k[(j+3)*stride], hd, &outA[j], &outB[j])
	}
	if r := n - j; r > 0 {
		var p [4]*float32
		for i := range p {
			p[i] = &k[(j+min(i, r-1))*stride]
		}
		var ta, tb [4]float32
		dotF32x2x4Asm(&qa[0], &qb[0], p[0], p[1], p[2], p[3], hd, &ta[0], &tb[0])
		copy(outA[j:], ta[:r])
		copy(outB[j:], tb[:r])
	}
}

// attnScores2AVX512 runs the 2x8 kernel over blocks of eight key rows,
// the last one to seven as a padded block (as attnScores2AVX2 does, for
// the same reason); head widths that are not a multiple of 16 take the
// AVX2 version.
func attnScores2AVX512(k []float32, stride int, qa, qb, outA, outB []float32) {
	hd := len(qa)
	if hd == 0 || hd%16 != 0 {
		attnScores2AVX2(k, stride, qa, qb, outA, outB)
		return
	}
	qb = qb[:hd]
	n := len(outA)
	outB = outB[:n]
	k = rowsSpan(k, stride, n, hd)
	var p [8]*float32
	j := 0
	for ; j+8 <= n; j += 8 {
		for i := range p {
			p[i] = &k[(j+i)*stride]
		}
		dotF32x2x8AVX512Asm(&qa[0], &qb[0], &p, hd, &outA[j], &outB[j])
	}
	if r := n - j; r > 0 {
		for i := range p {
			p[i] = &k[(j+min(i, r-1))*stride]
		}
		var ta, tb [8]float32
		dotF32x2x8AVX512Asm(&qa[0], &qb[0], &p, hd, &ta[0], &tb[0])
		copy(outA[j:], ta[:r])
		copy(outB[j:], tb[:r])
	}
}

func attnValues2AVX2(v []float32, stride int, pa, pb, accA, accB []float32) {
	attnValues2Asm(v, stride, pa, pb, accA, accB, 8, attnValues2AVX2Asm)
}

func attnValues2AVX512(v []float32, stride int, pa, pb, accA, accB []float32) {
	attnValues2Asm(v, stride, pa, pb, accA, accB, 16, attnValues2AVX512Asm)
}

// attnValues2Asm runs an assembly values kernel over the first multiple
// of width columns and finishes the rest in Go.
func attnValues2Asm(v []float32, stride int, pa, pb, accA, accB []float32, width int, asm func(v *float32, stride, n int, pa, pb, accA, accB *float32, d int)) {
	d := len(accA)
	n := len(pa)
	pb = pb[:n]
	accB = accB[:d]
	v = rowsSpan(v, stride, n, d)
	m := d - d%width
	if m > 0 && n > 0 {
		asm(&v[0], 4*stride, n, &pa[0], &pb[0], &accA[0], &accB[0], m)
	}
	if m < d {
		for j, wa := range pa {
			wb := pb[j]
			row := v[j*stride+m : j*stride+d]
			for i, x := range row {
				accA[m+i] += wa * x
				accB[m+i] += wb * x
			}
		}
	}
}

func expAllAVX2(x []float32) { expAllWidth(x, 8) }

func expAllAVX512(x []float32) { expAllWidth(x, 16) }

// expAllWidth is expSumWidth with nothing subtracted, the last n%width
// values padded to a full vector, so that every value gets the same
// result wherever it lies in x: a token's MoE output must not depend on
// which other tokens share its step.
func expAllWidth(x []float32, width int) {
	n := len(x) / width * width
	if n > 0 {
		expAsm(&x[0], n, 0, width)
	}
	if n < len(x) {
		var tail [16]float32
		copy(tail[:], x[n:])
		expAsm(&tail[0], width, 0, width)
		copy(x[n:], tail[:width])
	}
}

// expAsm calls the exponential kernel of width floats; not through a
// func value, which would move expAllWidth's tail to the heap.
func expAsm(x *float32, n int, mx float32, width int) float32 {
	if width == 16 {
		return expSumAVX512Asm(x, n, mx)
	}
	return expSumAVX2Asm(x, n, mx)
}

func dotMXFP4x2x4AVX512(a, b mxRow, x *[4][]float32, outA, outB []float32) {
	dotMXFP4x2xN(a, b, x, outA, outB, mx2x4AVX512)
}

func dotMXFP4x2x2AVX512(a, b mxRow, x *[4][]float32, outA, outB []float32) {
	dotMXFP4x2xN(a, b, x, outA, outB, mx2x2AVX512)
}

func dotMXFP4x2x4AVX2(a, b mxRow, x *[4][]float32, outA, outB []float32) {
	dotMXFP4x2xN(a, b, x, outA, outB, mx2x4AVX2)
}

func dotMXFP4x2x2AVX2(a, b mxRow, x *[4][]float32, outA, outB []float32) {
	dotMXFP4x2xN(a, b, x, outA, outB, mx2x2AVX2)
}

// dotBF16x2x8AVX2 is two calls of the four-input kernel.
func dotBF16x2x8AVX2(a, b []uint16, x *tok8, outA, outB []float32) {
	n := len(a)
	b = b[:n]
	outA, outB = outA[:8], outB[:8]
	m := n &^ 7
	if m == 0 {
		clear(outA)
		clear(outB)
	}
	for h := 0; h < 8 && m > 0; h += 4 {
		var p [4]*float32
		for i := range p {
			p[i] = &x[h+i][:n][0]
		}
		dotBF16x2x4Asm(&a[0], &b[0], &p, m, &outA[h], &outB[h])
	}
	for i := m; i < n; i++ {
		wa, wb := bf16(a[i]), bf16(b[i])
		for t := range x {
			outA[t] += wa * x[t][i]
			outB[t] += wb * x[t][i]
		}
	}
}

// The MXFP4 2-row kernels, for dotMXFP4x2xN.
const (
	mx2x4AVX512 = iota
	mx2x2AVX512
	mx2x4AVX2
	mx2x2AVX2
)

// dotMXFP4x2xN calls one of the 2-row kernels; not through a func value,
// which would move the pointer array to the heap.
func dotMXFP4x2xN(a, b mxRow, x *[4][]float32, outA, outB []float32, kernel int) {
	nb := len(a.scales)
	outA, outB = outA[:4], outB[:4]
	if nb == 0 {
		clear(outA)
		clear(outB)
		return
	}
	ab, bb, bs := a.blocks[:16*nb], b.blocks[:16*nb], b.scales[:nb]
	var p [4]*float32
	for i := range x {
		p[i] = &x[i][:32*nb][0]
	}
	switch kernel {
	case mx2x4AVX512:
		dotMXFP4x2x4AVX512Asm(&ab[0], &a.scales[0], &bb[0], &bs[0], &p, nb, &outA[0], &outB[0])
	case mx2x2AVX512:
		dotMXFP4x2x2AVX512Asm(&ab[0], &a.scales[0], &bb[0], &bs[0], &p, nb, &outA[0], &outB[0])
	case mx2x4AVX2, mx2x2AVX2:
		dotMXFP4x2xAVX2Asm(&ab[0], &a.scales[0], &bb[0], &bs[0], &p, nb, &outA[0], &outB[0], kernel == mx2x4AVX2)
	}
}
