//go:build amd64 && !purego

package cpu

// The one-token kernels of dot_decode_amd64.s: a packed weight row times
// one vector, widened in registers. useKernels installs them for the
// "avx512" set (decodeKernels).

//go:noescape
func dotBF16AVX512Asm(w *uint16, x *float32, n int) float32

//go:noescape
func dotMXFP4U4AVX512Asm(blocks, scales *byte, x *float32, nblocks int) float32

// decodeKernels installs the one-token kernels of a set over what
// useKernels chose.
func decodeKernels(name string) {
	if name == "avx512" {
		dotBF16 = dotBF16AVX512
		dotMXFP4 = dotMXFP4U4AVX512
	}
}

func dotBF16AVX512(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	n := len(w) &^ 15
	var s float32
	if n > 0 {
		s = dotBF16AVX512Asm(&w[0], &x[0], n)
	}
	for i := n; i < len(w); i++ {
		s += bf16(w[i]) * x[i]
	}
	return s
}

func dotMXFP4U4AVX512(blocks, scales []byte, x []float32) float32 {
	if len(scales) == 0 {
		return 0
	}
	blocks = blocks[:16*len(scales)]
	x = x[:32*len(scales)]
	return dotMXFP4U4AVX512Asm(&blocks[0], &scales[0], &x[0], len(scales))
}
