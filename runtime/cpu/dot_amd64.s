//go:build amd64 && !purego

#include "textflag.h"

// AVX2 + FMA versions of the kernels in dot.go. Each takes pointers and a
// count that the Go wrappers in dot_amd64.go have checked: a multiple of
// 8 elements (of 32 for MXFP4, counted in blocks), at least one.

// The doubled E2M1 values as signed bytes, indexed by the 4-bit code:
// 0 1 2 3 4 6 8 12, then the same negated (-0 is 0).
DATA fp4x2lut<>+0(SB)/8, $0x0c08060403020100
DATA fp4x2lut<>+8(SB)/8, $0xf4f8fafcfdfeff00
GLOBL fp4x2lut<>(SB), RODATA|NOPTR, $16

DATA nibblemask<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA nibblemask<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL nibblemask<>(SB), RODATA|NOPTR, $16

// hsum reduces the 8 floats of Y0 to X0's low float.
#define HSUM \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VHADDPS      X0, X0, X0 \
	VHADDPS      X0, X0, X0

// func dotF32Asm(a, b *float32, n int) float32
TEXT ·dotF32Asm(SB), NOSPLIT, $0-28
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

f32loop32:
	CMPQ        CX, $32
	JLT         f32loop8
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         f32loop32

f32loop8:
	CMPQ        CX, $8
	JLT         f32done
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         f32loop8

f32done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM
	VZEROUPPER
	MOVSS  X0, ret+24(FP)
	RET

// func dotF32x4Asm(a, x0, x1, x2, x3 *float32, n int) (r0, r1, r2, r3 float32)
//
// Eight accumulators (two per token) keep both FMA ports busy; each
// element of a is loaded once for the four tokens.
TEXT ·dotF32x4Asm(SB), NOSPLIT, $0-64
	MOVQ   a+0(FP), SI
	MOVQ   x0+8(FP), R8
	MOVQ   x1+16(FP), R9
	MOVQ   x2+24(FP), R10
	MOVQ   x3+32(FP), R11
	MOVQ   n+40(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

x4loop16:
	CMPQ        CX, $16
	JLT         x4loop8
	VMOVUPS     (SI), Y8
	VMOVUPS     32(SI), Y9
	VFMADD231PS (R8), Y8, Y0
	VFMADD231PS (R9), Y8, Y1
	VFMADD231PS (R10), Y8, Y2
	VFMADD231PS (R11), Y8, Y3
	VFMADD231PS 32(R8), Y9, Y4
	VFMADD231PS 32(R9), Y9, Y5
	VFMADD231PS 32(R10), Y9, Y6
	VFMADD231PS 32(R11), Y9, Y7
	ADDQ        $64, SI
	ADDQ        $64, R8
	ADDQ        $64, R9
	ADDQ        $64, R10
	ADDQ        $64, R11
	SUBQ        $16, CX
	JMP         x4loop16

x4loop8:
	CMPQ        CX, $8
	JLT         x4done
	VMOVUPS     (SI), Y8
	VFMADD231PS (R8), Y8, Y0
	VFMADD231PS (R9), Y8, Y1
	VFMADD231PS (R10), Y8, Y2
	VFMADD231PS (R11), Y8, Y3
	ADDQ        $32, SI
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	SUBQ        $8, CX
	JMP         x4loop8

x4done:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3

	// Transpose-reduce: after two rounds of VHADDPS each 128-bit lane
	// holds the four partial sums of that lane, in token order.
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VZEROUPPER
	MOVSS        X0, r0+48(FP)
	VPSHUFD      $0x55, X0, X1
	MOVSS        X1, r1+52(FP)
	VPSHUFD      $0xaa, X0, X1
	MOVSS        X1, r2+56(FP)
	VPSHUFD      $0xff, X0, X1
	MOVSS        X1, r3+60(FP)
	RET

// func dotF32x2x4Asm(a, b, x0, x1, x2, x3 *float32, n int, outA, outB *float32)
//
// Two rows against four tokens: outA[0:4] = a·x0..a·x3, outB[0:4] =
// b·x0..b·x3. Each x
// element is loaded once for both rows, which halves the traffic of x
// (from L2 in a prefill) against dotF32x4.
TEXT ·dotF32x2x4Asm(SB), NOSPLIT, $0-72
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DX
	MOVQ   x0+16(FP), R8
	MOVQ   x1+24(FP), R9
	MOVQ   x2+32(FP), R10
	MOVQ   x3+40(FP), R11
	MOVQ   n+48(FP), CX
	MOVQ   outA+56(FP), DI
	MOVQ   outB+64(FP), BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

x24loop:
	CMPQ        CX, $8
	JLT         x24done
	VMOVUPS     (SI), Y8
	VMOVUPS     (DX), Y9
	VMOVUPS     (R8), Y10
	VMOVUPS     (R9), Y11
	VMOVUPS     (R10), Y12
	VMOVUPS     (R11), Y13
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y13, Y8, Y3
	VFMADD231PS Y10, Y9, Y4
	VFMADD231PS Y11, Y9, Y5
	VFMADD231PS Y12, Y9, Y6
	VFMADD231PS Y13, Y9, Y7
	ADDQ        $32, SI
	ADDQ        $32, DX
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	SUBQ        $8, CX
	JMP         x24loop

x24done:
	VHADDPS    Y1, Y0, Y0
	VHADDPS    Y3, Y2, Y2
	VHADDPS    Y2, Y0, Y0
	VHADDPS    Y5, Y4, Y4
	VHADDPS    Y7, Y6, Y6
	VHADDPS    Y6, Y4, Y4
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x31, Y4, Y0, Y9
	VADDPS       Y9, Y8, Y8
	VMOVUPS      X8, (DI)
	VEXTRACTF128 $1, Y8, (BX)
	VZEROUPPER
	RET

// func dotBF16Asm(w *uint16, x *float32, n int) float32
//
// A bf16 is the top half of a float32: zero-extend to 32 bits, shift
// left 16. The loop is bound by memory; the prefetch 1 KiB ahead keeps
// the stream going across page boundaries.
TEXT ·dotBF16Asm(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

bf16loop32:
	CMPQ        CX, $32
	JLT         bf16loop8
	PREFETCHT0  1024(SI)
	VPMOVZXWD   (SI), Y4
	VPMOVZXWD   16(SI), Y5
	VPMOVZXWD   32(SI), Y6
	VPMOVZXWD   48(SI), Y7
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $64, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         bf16loop32

bf16loop8:
	// n is a multiple of 8, so at most one step is left.
	CMPQ        CX, $8
	JLT         bf16done
	VPMOVZXWD   (SI), Y4
	VPSLLD      $16, Y4, Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $16, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         bf16loop8

bf16done:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM
	VZEROUPPER
	MOVSS  X0, ret+24(FP)
	RET

// func decodeBF16Asm(src *uint16, dst *float32, n int)
TEXT ·decodeBF16Asm(SB), NOSPLIT, $0-24
	MOVQ src+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX

dbf16loop:
	CMPQ      CX, $8
	JLT       dbf16done
	VPMOVZXWD (SI), Y4
	VPSLLD    $16, Y4, Y4
	VMOVUPS   Y4, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       dbf16loop

dbf16done:
	VZEROUPPER
	RET

// NIBBLES looks up the 16 bytes at (src) in the code table in X14 (the
// nibble mask in X15): the low nibbles' doubled E2M1 values as bytes in
// t0, the high nibbles' in t1.
#define NIBBLES(src, t0, t1) \
	VMOVDQU (src), t0   \
	VPSRLW  $4, t0, t1  \
	VPAND   X15, t0, t0 \
	VPAND   X15, t1, t1 \
	VPSHUFB t0, X14, t0 \
	VPSHUFB t1, X14, t1

// UNPACK32 turns the 16 bytes at (SI) into the 32 doubled E2M1 values of
// the block, in element order, as floats in Y6 (0-7), Y7 (8-15), Y8
// (16-23) and Y9 (24-31). It needs the code table in X14 and the nibble
// mask in X15, and clobbers X2-X5. Byte j holds element 2j in its low
// nibble and 2j+1 in its high nibble, so interleaving the looked-up low
// and high nibbles restores the order.
#define UNPACK32 \
	NIBBLES(SI, X2, X3)     \
	VPUNPCKLBW X3, X2, X4   \
	VPUNPCKHBW X3, X2, X5   \
	VPMOVSXBD  X4, Y6       \
	VPSRLDQ    $8, X4, X4   \
	VPMOVSXBD  X4, Y7       \
	VPMOVSXBD  X5, Y8       \
	VPSRLDQ    $8, X5, X5   \
	VPMOVSXBD  X5, Y9       \
	VCVTDQ2PS  Y6, Y6       \
	VCVTDQ2PS  Y7, Y7       \
	VCVTDQ2PS  Y8, Y8       \
	VCVTDQ2PS  Y9, Y9

// LOOKUPREGS is UNPACK32 for x in pair order: the values come out as the
// 16 even elements (e0, e1), then the 16 odd ones (o0, o1), which saves
// the interleave. t0 and t1 are X scratch registers; LOOKUP32 names the
// one-row kernel's registers.
#define LOOKUPREGS(src, t0, t1, e0, e1, o0, o1) \
	NIBBLES(src, t0, t1)   \
	VPMOVSXBD t0, e0       \
	VPSRLDQ   $8, t0, t0   \
	VPMOVSXBD t0, e1       \
	VPMOVSXBD t1, o0       \
	VPSRLDQ   $8, t1, t1   \
	VPMOVSXBD t1, o1       \
	VCVTDQ2PS e0, e0       \
	VCVTDQ2PS e1, e1       \
	VCVTDQ2PS o0, o0       \
	VCVTDQ2PS o1, o1

#define LOOKUP32(src) LOOKUPREGS(src, X2, X3, Y6, Y7, Y8, Y9)

// func dotMXFP4Asm(blocks, scales *byte, x *float32, nblocks int) float32
//
// x is in pair order. Each block's 32 products are summed unscaled, then
// the sum is scaled and added to one of two accumulators (alternating
// blocks), as the Go version scales each block's sum. The prefetch runs
// 512 bytes ahead of the blocks, across page boundaries, where the
// hardware prefetchers stop.
TEXT ·dotMXFP4Asm(SB), NOSPLIT, $0-36
	MOVQ    blocks+0(FP), SI
	MOVQ    scales+8(FP), BX
	MOVQ    x+16(FP), DI
	MOVQ    nblocks+24(FP), CX
	LEAQ    ·mxfp4Half(SB), R8
	VMOVDQU fp4x2lut<>(SB), X14
	VMOVDQU nibblemask<>(SB), X15
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1

mxloop2:
	CMPQ         CX, $2
	JLT          mxloop1
	PREFETCHT0   1024(SI)
	LOOKUP32(SI)
	VMULPS       (DI), Y6, Y6
	VFMADD231PS  32(DI), Y7, Y6
	VFMADD231PS  64(DI), Y8, Y6
	VFMADD231PS  96(DI), Y9, Y6
	MOVBLZX      (BX), AX
	VBROADCASTSS (R8)(AX*4), Y10
	VFMADD231PS  Y10, Y6, Y0
	ADDQ         $16, SI
	LOOKUP32(SI)
	VMULPS       128(DI), Y6, Y6
	VFMADD231PS  160(DI), Y7, Y6
	VFMADD231PS  192(DI), Y8, Y6
	VFMADD231PS  224(DI), Y9, Y6
	MOVBLZX      1(BX), AX
	VBROADCASTSS (R8)(AX*4), Y10
	VFMADD231PS  Y10, Y6, Y1
	ADDQ         $16, SI
	ADDQ         $2, BX
	ADDQ         $256, DI
	SUBQ         $2, CX
	JMP          mxloop2

mxloop1:
	CMPQ         CX, $1
	JLT          mxdone
	LOOKUP32(SI)
	VMULPS       (DI), Y6, Y6
	VFMADD231PS  32(DI), Y7, Y6
	VFMADD231PS  64(DI), Y8, Y6
	VFMADD231PS  96(DI), Y9, Y6
	MOVBLZX      (BX), AX
	VBROADCASTSS (R8)(AX*4), Y10
	VFMADD231PS  Y10, Y6, Y0

mxdone:
	VADDPS Y1, Y0, Y0
	HSUM
	VZEROUPPER
	MOVSS  X0, ret+32(FP)
	RET

// func decodeMXFP4Asm(blocks, scales *byte, dst *float32, nblocks int)
TEXT ·decodeMXFP4Asm(SB), NOSPLIT, $0-32
	MOVQ    blocks+0(FP), SI
	MOVQ    scales+8(FP), BX
	MOVQ    dst+16(FP), DI
	MOVQ    nblocks+24(FP), CX
	LEAQ    ·mxfp4Half(SB), R8
	VMOVDQU fp4x2lut<>(SB), X14
	VMOVDQU nibblemask<>(SB), X15

dmxloop:
	CMPQ         CX, $1
	JLT          dmxdone
	UNPACK32
	MOVBLZX      (BX), AX
	VBROADCASTSS (R8)(AX*4), Y10
	VMULPS       Y10, Y6, Y6
	VMULPS       Y10, Y7, Y7
	VMULPS       Y10, Y8, Y8
	VMULPS       Y10, Y9, Y9
	VMOVUPS      Y6, (DI)
	VMOVUPS      Y7, 32(DI)
	VMOVUPS      Y8, 64(DI)
	VMOVUPS      Y9, 96(DI)
	ADDQ         $16, SI
	INCQ         BX
	ADDQ         $128, DI
	DECQ         CX
	JMP          dmxloop

dmxdone:
	VZEROUPPER
	RET

// func readSumAsm(p *uint64, n int) uint64
//
// Sums n uint64 words (n a multiple of 16) with 256-bit loads: a memory
// read bandwidth probe for the benchmarks.
TEXT ·readSumAsm(SB), NOSPLIT, $0-24
	MOVQ  p+0(FP), SI
	MOVQ  n+8(FP), CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

rsloop:
	CMPQ   CX, $16
	JLT    rsdone
	VPADDQ (SI), Y0, Y0
	VPADDQ 32(SI), Y1, Y1
	VPADDQ 64(SI), Y2, Y2
	VPADDQ 96(SI), Y3, Y3
	ADDQ   $128, SI
	SUBQ   $16, CX
	JMP    rsloop

rsdone:
	VPADDQ       Y1, Y0, Y0
	VPADDQ       Y3, Y2, Y2
	VPADDQ       Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDQ       X1, X0, X0
	VZEROUPPER
	MOVQ         X0, ret+16(FP)
	RET

// func dotMXFP4AVX512Asm(blocks, scales *byte, x *float32, nblocks int) float32
//
// With 512-bit registers one VPERMPS looks up 16 codes in the whole
// 16-entry table of doubled E2M1 values as floats, so a block costs a
// zero-extension, a shift, two lookups and two multiply-adds, with no
// integer conversion. x is in pair order.
TEXT ·dotMXFP4AVX512Asm(SB), NOSPLIT, $0-36
	MOVQ    blocks+0(FP), SI
	MOVQ    scales+8(FP), BX
	MOVQ    x+16(FP), DI
	MOVQ    nblocks+24(FP), CX
	LEAQ    ·mxfp4Half(SB), R8
	VMOVUPS ·fp4x2(SB), Z14
	VXORPS  Z0, Z0, Z0
	VXORPS  Z1, Z1, Z1

mx5loop2:
	CMPQ                 CX, $2
	JLT                  mx5loop1
	PREFETCHT0           1024(SI)
	VPMOVZXBD            (SI), Z2
	VPMOVZXBD            16(SI), Z6
	VPSRLD               $4, Z2, Z3
	VPSRLD               $4, Z6, Z7
	VPERMPS              Z14, Z2, Z2
	VPERMPS              Z14, Z3, Z3
	VPERMPS              Z14, Z6, Z6
	VPERMPS              Z14, Z7, Z7
	VMULPS               (DI), Z2, Z2
	VFMADD231PS          64(DI), Z3, Z2
	VMULPS               128(DI), Z6, Z6
	VFMADD231PS          192(DI), Z7, Z6
	MOVBLZX              (BX), AX
	MOVBLZX              1(BX), DX
	VFMADD231PS.BCST     (R8)(AX*4), Z2, Z0
	VFMADD231PS.BCST     (R8)(DX*4), Z6, Z1
	ADDQ                 $32, SI
	ADDQ                 $2, BX
	ADDQ                 $256, DI
	SUBQ                 $2, CX
	JMP                  mx5loop2

mx5loop1:
	CMPQ             CX, $1
	JLT              mx5done
	VPMOVZXBD        (SI), Z2
	VPSRLD           $4, Z2, Z3
	VPERMPS          Z14, Z2, Z2
	VPERMPS          Z14, Z3, Z3
	VMULPS           (DI), Z2, Z2
	VFMADD231PS      64(DI), Z3, Z2
	MOVBLZX          (BX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z2, Z0

mx5done:
	VADDPS        Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	HSUM
	VZEROUPPER
	MOVSS         X0, ret+32(FP)
	RET

// func fmaPeakAVX2Asm(n int)
// n iterations of 10 independent 8-wide FMAs (160 flops): enough chains
// to cover the FMA latency on every current x86 core, so the loop runs at
// the core's FMA throughput. Only the benchmarks call it (the peak that
// prefill's GFLOP/s is compared with).
TEXT ·fmaPeakAVX2Asm(SB), NOSPLIT, $0-8
	MOVQ   n+0(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

fmapeak2:
	VFMADD231PS Y10, Y11, Y0
	VFMADD231PS Y10, Y11, Y1
	VFMADD231PS Y10, Y11, Y2
	VFMADD231PS Y10, Y11, Y3
	VFMADD231PS Y10, Y11, Y4
	VFMADD231PS Y10, Y11, Y5
	VFMADD231PS Y10, Y11, Y6
	VFMADD231PS Y10, Y11, Y7
	VFMADD231PS Y10, Y11, Y8
	VFMADD231PS Y10, Y11, Y9
	DECQ        CX
	JNZ         fmapeak2
	VZEROUPPER
	RET

// func fmaPeakAVX512Asm(n int)
// The same with 16-wide FMAs (320 flops an iteration).
TEXT ·fmaPeakAVX512Asm(SB), NOSPLIT, $0-8
	MOVQ    n+0(FP), CX
	VPXORD  Z0, Z0, Z0
	VPXORD  Z1, Z1, Z1
	VPXORD  Z2, Z2, Z2
	VPXORD  Z3, Z3, Z3
	VPXORD  Z4, Z4, Z4
	VPXORD  Z5, Z5, Z5
	VPXORD  Z6, Z6, Z6
	VPXORD  Z7, Z7, Z7
	VPXORD  Z8, Z8, Z8
	VPXORD  Z9, Z9, Z9
	VPXORD  Z10, Z10, Z10
	VPXORD  Z11, Z11, Z11

fmapeak5:
	VFMADD231PS Z10, Z11, Z0
	VFMADD231PS Z10, Z11, Z1
	VFMADD231PS Z10, Z11, Z2
	VFMADD231PS Z10, Z11, Z3
	VFMADD231PS Z10, Z11, Z4
	VFMADD231PS Z10, Z11, Z5
	VFMADD231PS Z10, Z11, Z6
	VFMADD231PS Z10, Z11, Z7
	VFMADD231PS Z10, Z11, Z8
	VFMADD231PS Z10, Z11, Z9
	DECQ        CX
	JNZ         fmapeak5
	VZEROUPPER
	RET

// REDUCE2X8 ends the 2x8 kernels: it folds each 512-bit accumulator to
// 256 bits, reduces eight at a time as dotF32x2x4Asm does, and stores
// Z0-Z7's sums to (DI)[0:8] and Z8-Z15's to (BX)[0:8].
#define REDUCE2X8 \
	VEXTRACTF64X4 $1, Z0, Y16 \
	VADDPS        Y16, Y0, Y0 \
	VEXTRACTF64X4 $1, Z1, Y16 \
	VADDPS        Y16, Y1, Y1 \
	VEXTRACTF64X4 $1, Z2, Y16 \
	VADDPS        Y16, Y2, Y2 \
	VEXTRACTF64X4 $1, Z3, Y16 \
	VADDPS        Y16, Y3, Y3 \
	VEXTRACTF64X4 $1, Z4, Y16 \
	VADDPS        Y16, Y4, Y4 \
	VEXTRACTF64X4 $1, Z5, Y16 \
	VADDPS        Y16, Y5, Y5 \
	VEXTRACTF64X4 $1, Z6, Y16 \
	VADDPS        Y16, Y6, Y6 \
	VEXTRACTF64X4 $1, Z7, Y16 \
	VADDPS        Y16, Y7, Y7 \
	VEXTRACTF64X4 $1, Z8, Y16 \
	VADDPS        Y16, Y8, Y8 \
	VEXTRACTF64X4 $1, Z9, Y16 \
	VADDPS        Y16, Y9, Y9 \
	VEXTRACTF64X4 $1, Z10, Y16 \
	VADDPS        Y16, Y10, Y10 \
	VEXTRACTF64X4 $1, Z11, Y16 \
	VADDPS        Y16, Y11, Y11 \
	VEXTRACTF64X4 $1, Z12, Y16 \
	VADDPS        Y16, Y12, Y12 \
	VEXTRACTF64X4 $1, Z13, Y16 \
	VADDPS        Y16, Y13, Y13 \
	VEXTRACTF64X4 $1, Z14, Y16 \
	VADDPS        Y16, Y14, Y14 \
	VEXTRACTF64X4 $1, Z15, Y16 \
	VADDPS        Y16, Y15, Y15 \
	VHADDPS    Y1, Y0, Y0 \
	VHADDPS    Y3, Y2, Y2 \
	VHADDPS    Y2, Y0, Y0 \
	VHADDPS    Y5, Y4, Y4 \
	VHADDPS    Y7, Y6, Y6 \
	VHADDPS    Y6, Y4, Y4 \
	VPERM2F128 $0x20, Y4, Y0, Y1 \
	VPERM2F128 $0x31, Y4, Y0, Y2 \
	VADDPS     Y2, Y1, Y1 \
	VMOVUPS    Y1, (DI) \
	VHADDPS    Y9, Y8, Y8 \
	VHADDPS    Y11, Y10, Y10 \
	VHADDPS    Y10, Y8, Y8 \
	VHADDPS    Y13, Y12, Y12 \
	VHADDPS    Y15, Y14, Y14 \
	VHADDPS    Y14, Y12, Y12 \
	VPERM2F128 $0x20, Y12, Y8, Y9 \
	VPERM2F128 $0x31, Y12, Y8, Y10 \
	VADDPS     Y10, Y9, Y9 \
	VMOVUPS    Y9, (BX) \
	VZEROUPPER \
	RET

// func dotF32x2x8AVX512Asm(a, b *float32, xs *[8]*float32, n int, outA, outB *float32)
// Rows a and b against eight tokens, 16 floats at a time: each token's
// chunk is loaded once for both rows, and each row's once for all eight
// tokens, so 10 loads feed 16 FMAs (the AVX2 2x4 kernel: 6 loads, 8 FMAs
// of half the width). 16 accumulators: Z0-Z7 row a, Z8-Z15 row b. n is a
// multiple of 16.
TEXT ·dotF32x2x8AVX512Asm(SB), NOSPLIT, $0-48
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DX
	MOVQ   xs+16(FP), DI
	MOVQ   n+24(FP), CX
	MOVQ   0(DI), R8
	MOVQ   8(DI), R9
	MOVQ   16(DI), R10
	MOVQ   24(DI), R11
	MOVQ   32(DI), R12
	MOVQ   40(DI), R13
	MOVQ   48(DI), AX
	MOVQ   56(DI), BX
	XORQ   DI, DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15

x28loop:
	CMPQ        DI, CX
	JGE         x28done
	VMOVUPS     (SI)(DI*4), Z16
	VMOVUPS     (DX)(DI*4), Z17
	VMOVUPS     (R8)(DI*4), Z18
	VMOVUPS     (R9)(DI*4), Z19
	VMOVUPS     (R10)(DI*4), Z20
	VMOVUPS     (R11)(DI*4), Z21
	VFMADD231PS Z18, Z16, Z0
	VFMADD231PS Z18, Z17, Z8
	VFMADD231PS Z19, Z16, Z1
	VFMADD231PS Z19, Z17, Z9
	VFMADD231PS Z20, Z16, Z2
	VFMADD231PS Z20, Z17, Z10
	VFMADD231PS Z21, Z16, Z3
	VFMADD231PS Z21, Z17, Z11
	VMOVUPS     (R12)(DI*4), Z18
	VMOVUPS     (R13)(DI*4), Z19
	VMOVUPS     (AX)(DI*4), Z20
	VMOVUPS     (BX)(DI*4), Z21
	VFMADD231PS Z18, Z16, Z4
	VFMADD231PS Z18, Z17, Z12
	VFMADD231PS Z19, Z16, Z5
	VFMADD231PS Z19, Z17, Z13
	VFMADD231PS Z20, Z16, Z6
	VFMADD231PS Z20, Z17, Z14
	VFMADD231PS Z21, Z16, Z7
	VFMADD231PS Z21, Z17, Z15
	ADDQ        $16, DI
	JMP         x28loop

x28done:
	MOVQ outA+32(FP), DI
	MOVQ outB+40(FP), BX
	REDUCE2X8


// Constants of expSumAVX512Asm (Cephes expf): log2(e), ln 2 split in a
// part exact in float32 and the rest, and the polynomial for e^r on
// |r| <= ln(2)/2.
DATA expconst<>+0(SB)/4, $0x3fb8aa3b // 1.44269504088896341
DATA expconst<>+4(SB)/4, $0x3f318000 // 0.693359375
DATA expconst<>+8(SB)/4, $0xb95e8083 // -2.12194440e-4
DATA expconst<>+12(SB)/4, $0x39506967 // 1.9875691500e-4
DATA expconst<>+16(SB)/4, $0x3ab743ce // 1.3981999507e-3
DATA expconst<>+20(SB)/4, $0x3c088908 // 8.3334519073e-3
DATA expconst<>+24(SB)/4, $0x3d2aa9c1 // 4.1665795894e-2
DATA expconst<>+28(SB)/4, $0x3e2aaaaa // 1.6666665459e-1
DATA expconst<>+32(SB)/4, $0x3f000000 // 5.0000001201e-1
DATA expconst<>+36(SB)/4, $0x3f800000 // 1.0
DATA expconst<>+40(SB)/4, $0xc2d00000 // -104: e^-104 is 0 in float32
GLOBL expconst<>(SB), RODATA|NOPTR, $44

// func expSumAVX512Asm(x *float32, n int, mx float32) float32
// x[i] = e^(x[i]-mx) for n (a multiple of 16) values, returning their
// sum. e^y = 2^k e^r with k = round(y log2 e) and r = y - k ln 2;
// VSCALEFPS applies 2^k, and gives 0 where it underflows.
TEXT ·expSumAVX512Asm(SB), NOSPLIT, $0-28
	MOVQ             x+0(FP), SI
	MOVQ             n+8(FP), CX
	VBROADCASTSS     mx+16(FP), Z1
	LEAQ             expconst<>(SB), AX
	VBROADCASTSS     0(AX), Z2
	VBROADCASTSS     4(AX), Z3
	VBROADCASTSS     8(AX), Z4
	VBROADCASTSS     12(AX), Z5
	VBROADCASTSS     16(AX), Z6
	VBROADCASTSS     20(AX), Z7
	VBROADCASTSS     24(AX), Z8
	VBROADCASTSS     28(AX), Z9
	VBROADCASTSS     32(AX), Z10
	VBROADCASTSS     36(AX), Z11
	VBROADCASTSS     40(AX), Z16
	VXORPS           Z0, Z0, Z0

exploop:
	CMPQ             CX, $0
	JLE              expdone
	VMOVUPS          (SI), Z12
	VSUBPS           Z1, Z12, Z12
	// Clamp below, so that k stays small enough for r to be exact;
	// a NaN passes through (the second operand of MAXPS wins).
	VMAXPS           Z12, Z16, Z12
	VMULPS           Z2, Z12, Z13
	VRNDSCALEPS      $0, Z13, Z13
	VFNMADD231PS     Z3, Z13, Z12
	VFNMADD231PS     Z4, Z13, Z12
	VMOVAPS          Z5, Z14
	VFMADD213PS      Z6, Z12, Z14
	VFMADD213PS      Z7, Z12, Z14
	VFMADD213PS      Z8, Z12, Z14
	VFMADD213PS      Z9, Z12, Z14
	VFMADD213PS      Z10, Z12, Z14
	VMULPS           Z12, Z12, Z15
	VADDPS           Z11, Z12, Z12
	VFMADD231PS      Z15, Z14, Z12
	VSCALEFPS        Z13, Z12, Z12
	VMOVUPS          Z12, (SI)
	VADDPS           Z12, Z0, Z0
	ADDQ             $64, SI
	SUBQ             $16, CX
	JMP              exploop

expdone:
	VEXTRACTF64X4    $1, Z0, Y1
	VADDPS           Y1, Y0, Y0
	HSUM
	VMOVSS           X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotBF16x2x8AVX512Asm(a, b *uint16, xs *[8]*float32, n int, outA, outB *float32)
// dotF32x2x8AVX512Asm for bf16 rows, widened in registers (a bf16 is the
// top half of a float32), so the rows are never decoded to memory.
TEXT ·dotBF16x2x8AVX512Asm(SB), NOSPLIT, $0-48
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DX
	MOVQ   xs+16(FP), DI
	MOVQ   n+24(FP), CX
	MOVQ   0(DI), R8
	MOVQ   8(DI), R9
	MOVQ   16(DI), R10
	MOVQ   24(DI), R11
	MOVQ   32(DI), R12
	MOVQ   40(DI), R13
	MOVQ   48(DI), AX
	MOVQ   56(DI), BX
	XORQ   DI, DI
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15

b28loop:
	CMPQ        DI, CX
	JGE         b28done
	VPMOVZXWD   (SI)(DI*2), Z16
	VPMOVZXWD   (DX)(DI*2), Z17
	VPSLLD      $16, Z16, Z16
	VPSLLD      $16, Z17, Z17
	VMOVUPS     (R8)(DI*4), Z18
	VMOVUPS     (R9)(DI*4), Z19
	VMOVUPS     (R10)(DI*4), Z20
	VMOVUPS     (R11)(DI*4), Z21
	VFMADD231PS Z18, Z16, Z0
	VFMADD231PS Z18, Z17, Z8
	VFMADD231PS Z19, Z16, Z1
	VFMADD231PS Z19, Z17, Z9
	VFMADD231PS Z20, Z16, Z2
	VFMADD231PS Z20, Z17, Z10
	VFMADD231PS Z21, Z16, Z3
	VFMADD231PS Z21, Z17, Z11
	VMOVUPS     (R12)(DI*4), Z18
	VMOVUPS     (R13)(DI*4), Z19
	VMOVUPS     (AX)(DI*4), Z20
	VMOVUPS     (BX)(DI*4), Z21
	VFMADD231PS Z18, Z16, Z4
	VFMADD231PS Z18, Z17, Z12
	VFMADD231PS Z19, Z16, Z5
	VFMADD231PS Z19, Z17, Z13
	VFMADD231PS Z20, Z16, Z6
	VFMADD231PS Z20, Z17, Z14
	VFMADD231PS Z21, Z16, Z7
	VFMADD231PS Z21, Z17, Z15
	ADDQ        $16, DI
	JMP         b28loop

b28done:
	MOVQ outA+32(FP), DI
	MOVQ outB+40(FP), BX
	REDUCE2X8

// func decodeF16Asm(h *byte, dst *float32, n int)
// Widens n (a multiple of 8) halves, exactly.
TEXT ·decodeF16Asm(SB), NOSPLIT, $0-24
	MOVQ h+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX

df16loop:
	CMPQ      CX, $8
	JLT       df16done
	VCVTPH2PS (SI), Y4
	VMOVUPS   Y4, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       df16loop

df16done:
	VZEROUPPER
	RET

// func attnValues2AVX2Asm(v *float32, stride, n int, pa, pb, accA, accB *float32, d int)
// accA[0:d] += pa[j] * v_j and accB[0:d] += pb[j] * v_j for the n rows
// of v, stride bytes apart; d is a multiple of 8, n at least 1. Each
// column is summed over the rows in order, one accumulator per column,
// so the result does not depend on how the caller splits the rows into
// blocks (a ring's wrap splits them). Sixteen columns at a time keep four
// chains of multiply-adds in flight; eight for the last ones.
TEXT ·attnValues2AVX2Asm(SB), NOSPLIT, $0-64
	MOVQ v+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ n+16(FP), R9
	MOVQ pa+24(FP), R10
	MOVQ pb+32(FP), R11
	MOVQ accA+40(FP), DI
	MOVQ accB+48(FP), BX
	MOVQ d+56(FP), CX

av2wide:
	CMPQ    CX, $16
	JLT     av2chunk
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS (BX), Y2
	VMOVUPS 32(BX), Y3
	MOVQ    SI, DX
	XORQ    AX, AX

av2wrow:
	VMOVUPS      (DX), Y4
	VMOVUPS      32(DX), Y5
	VBROADCASTSS (R10)(AX*4), Y6
	VBROADCASTSS (R11)(AX*4), Y7
	VFMADD231PS  Y6, Y4, Y0
	VFMADD231PS  Y6, Y5, Y1
	VFMADD231PS  Y7, Y4, Y2
	VFMADD231PS  Y7, Y5, Y3
	ADDQ         R8, DX
	INCQ         AX
	CMPQ         AX, R9
	JLT          av2wrow
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, (BX)
	VMOVUPS      Y3, 32(BX)
	ADDQ         $64, SI
	ADDQ         $64, DI
	ADDQ         $64, BX
	SUBQ         $16, CX
	JMP          av2wide

av2chunk:
	CMPQ    CX, $0
	JLE     av2done
	VMOVUPS (DI), Y0
	VMOVUPS (BX), Y2
	MOVQ    SI, DX
	XORQ    AX, AX

av2row:
	VMOVUPS      (DX), Y4
	VBROADCASTSS (R10)(AX*4), Y6
	VBROADCASTSS (R11)(AX*4), Y7
	VFMADD231PS  Y6, Y4, Y0
	VFMADD231PS  Y7, Y4, Y2
	ADDQ         R8, DX
	INCQ         AX
	CMPQ         AX, R9
	JLT          av2row
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y2, (BX)
	ADDQ         $32, SI
	ADDQ         $32, DI
	ADDQ         $32, BX
	SUBQ         $8, CX
	JMP          av2chunk

av2done:
	VZEROUPPER
	RET

// func attnValues2AVX512Asm(v *float32, stride, n int, pa, pb, accA, accB *float32, d int)
// attnValues2AVX2Asm with 512-bit vectors: 32 columns at a time, then 16
// (d a multiple of 16), the weights broadcast from memory by the
// multiply-adds.
TEXT ·attnValues2AVX512Asm(SB), NOSPLIT, $0-64
	MOVQ v+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ n+16(FP), R9
	MOVQ pa+24(FP), R10
	MOVQ pb+32(FP), R11
	MOVQ accA+40(FP), DI
	MOVQ accB+48(FP), BX
	MOVQ d+56(FP), CX

av5wide:
	CMPQ    CX, $32
	JLT     av5chunk
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VMOVUPS (BX), Z2
	VMOVUPS 64(BX), Z3
	MOVQ    SI, DX
	XORQ    AX, AX

av5wrow:
	VMOVUPS      (DX), Z4
	VMOVUPS      64(DX), Z5
	VBROADCASTSS (R10)(AX*4), Z6
	VBROADCASTSS (R11)(AX*4), Z7
	VFMADD231PS  Z6, Z4, Z0
	VFMADD231PS  Z6, Z5, Z1
	VFMADD231PS  Z7, Z4, Z2
	VFMADD231PS  Z7, Z5, Z3
	ADDQ         R8, DX
	INCQ         AX
	CMPQ         AX, R9
	JLT          av5wrow
	VMOVUPS      Z0, (DI)
	VMOVUPS      Z1, 64(DI)
	VMOVUPS      Z2, (BX)
	VMOVUPS      Z3, 64(BX)
	ADDQ         $128, SI
	ADDQ         $128, DI
	ADDQ         $128, BX
	SUBQ         $32, CX
	JMP          av5wide

av5chunk:
	CMPQ    CX, $0
	JLE     av5done
	VMOVUPS (DI), Z0
	VMOVUPS (BX), Z2
	MOVQ    SI, DX
	XORQ    AX, AX

av5row:
	VMOVUPS          (DX), Z4
	VFMADD231PS.BCST (R10)(AX*4), Z4, Z0
	VFMADD231PS.BCST (R11)(AX*4), Z4, Z2
	ADDQ             R8, DX
	INCQ             AX
	CMPQ             AX, R9
	JLT              av5row
	VMOVUPS          Z0, (DI)
	VMOVUPS          Z2, (BX)
	ADDQ             $64, SI
	ADDQ             $64, DI
	ADDQ             $64, BX
	SUBQ             $16, CX
	JMP              av5chunk

av5done:
	VZEROUPPER
	RET

// MX24INPUT multiplies the scaled codes of row a (Z8 even, Z9 odd) and
// row b (Z10, Z11) by one input's block at (ptr)(DI*1), in pair order,
// into accumulators acca/accb (even halves) and oddA/oddB (odd halves).
#define MX24INPUT(ptr, acca, accb, odda, oddb) \
	VMOVUPS     (ptr)(DI*1), Z12 \
	VMOVUPS     64(ptr)(DI*1), Z13 \
	VFMADD231PS Z12, Z8, acca \
	VFMADD231PS Z13, Z9, odda \
	VFMADD231PS Z12, Z10, accb \
	VFMADD231PS Z13, Z11, oddb

// func dotMXFP4x2x4AVX512Asm(blocksA, scalesA, blocksB, scalesB *byte, xs *[4]*float32, nblocks int, outA, outB *float32)
// Two MXFP4 rows against four inputs in pair order. Each block's codes
// are looked up (as in dotMXFP4AVX512Asm) and scaled by the block's
// power of two, exactly, once for the four inputs; the products go to
// 16 accumulators (Z0-Z3 and Z16-Z19 row a, Z4-Z7 and Z20-Z23 row b,
// even and odd halves), reduced at the end as dotF32x2x4Asm does.
TEXT ·dotMXFP4x2x4AVX512Asm(SB), NOSPLIT, $0-64
	MOVQ    blocksA+0(FP), SI
	MOVQ    scalesA+8(FP), BX
	MOVQ    blocksB+16(FP), DX
	MOVQ    scalesB+24(FP), R12
	MOVQ    xs+32(FP), DI
	MOVQ    nblocks+40(FP), CX
	MOVQ    0(DI), R9
	MOVQ    8(DI), R10
	MOVQ    16(DI), R11
	MOVQ    24(DI), R13
	LEAQ    ·mxfp4Half(SB), R8
	VMOVUPS ·fp4x2(SB), Z14
	VXORPS  Z0, Z0, Z0
	VXORPS  Z1, Z1, Z1
	VXORPS  Z2, Z2, Z2
	VXORPS  Z3, Z3, Z3
	VXORPS  Z4, Z4, Z4
	VXORPS  Z5, Z5, Z5
	VXORPS  Z6, Z6, Z6
	VXORPS  Z7, Z7, Z7
	VXORPS  Z16, Z16, Z16
	VXORPS  Z17, Z17, Z17
	VXORPS  Z18, Z18, Z18
	VXORPS  Z19, Z19, Z19
	VXORPS  Z20, Z20, Z20
	VXORPS  Z21, Z21, Z21
	VXORPS  Z22, Z22, Z22
	VXORPS  Z23, Z23, Z23
	XORQ    DI, DI

mx24loop:
	CMPQ         CX, $0
	JLE          mx24done
	VPMOVZXBD    (SI), Z8
	VPSRLD       $4, Z8, Z9
	VPERMPS      Z14, Z8, Z8
	VPERMPS      Z14, Z9, Z9
	MOVBLZX      (BX), AX
	VBROADCASTSS (R8)(AX*4), Z15
	VMULPS       Z15, Z8, Z8
	VMULPS       Z15, Z9, Z9
	VPMOVZXBD    (DX), Z10
	VPSRLD       $4, Z10, Z11
	VPERMPS      Z14, Z10, Z10
	VPERMPS      Z14, Z11, Z11
	MOVBLZX      (R12), AX
	VBROADCASTSS (R8)(AX*4), Z15
	VMULPS       Z15, Z10, Z10
	VMULPS       Z15, Z11, Z11
	MX24INPUT(R9, Z0, Z4, Z16, Z20)
	MX24INPUT(R10, Z1, Z5, Z17, Z21)
	MX24INPUT(R11, Z2, Z6, Z18, Z22)
	MX24INPUT(R13, Z3, Z7, Z19, Z23)
	ADDQ         $16, SI
	ADDQ         $16, DX
	INCQ         BX
	INCQ         R12
	ADDQ         $128, DI
	DECQ         CX
	JMP          mx24loop

mx24done:
	VADDPS        Z16, Z0, Z0
	VADDPS        Z17, Z1, Z1
	VADDPS        Z18, Z2, Z2
	VADDPS        Z19, Z3, Z3
	VADDPS        Z20, Z4, Z4
	VADDPS        Z21, Z5, Z5
	VADDPS        Z22, Z6, Z6
	VADDPS        Z23, Z7, Z7
	VEXTRACTF64X4 $1, Z0, Y16
	VADDPS        Y16, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y16
	VADDPS        Y16, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y16
	VADDPS        Y16, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y16
	VADDPS        Y16, Y3, Y3
	VEXTRACTF64X4 $1, Z4, Y16
	VADDPS        Y16, Y4, Y4
	VEXTRACTF64X4 $1, Z5, Y16
	VADDPS        Y16, Y5, Y5
	VEXTRACTF64X4 $1, Z6, Y16
	VADDPS        Y16, Y6, Y6
	VEXTRACTF64X4 $1, Z7, Y16
	VADDPS        Y16, Y7, Y7
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y3, Y2, Y2
	VHADDPS       Y2, Y0, Y0
	VHADDPS       Y5, Y4, Y4
	VHADDPS       Y7, Y6, Y6
	VHADDPS       Y6, Y4, Y4
	VPERM2F128    $0x20, Y4, Y0, Y8
	VPERM2F128    $0x31, Y4, Y0, Y9
	VADDPS        Y9, Y8, Y8
	MOVQ          outA+48(FP), AX
	MOVQ          outB+56(FP), BX
	VMOVUPS       X8, (AX)
	VEXTRACTF128  $1, Y8, (BX)
	VZEROUPPER
	RET

// func dotMXFP4x2x2AVX512Asm(blocksA, scalesA, blocksB, scalesB *byte, xs *[4]*float32, nblocks int, outA, outB *float32)
// dotMXFP4x2x4AVX512Asm for two inputs (xs[0:2]); outA[2:4] and
// outB[2:4] get 0.
TEXT ·dotMXFP4x2x2AVX512Asm(SB), NOSPLIT, $0-64
	MOVQ    blocksA+0(FP), SI
	MOVQ    scalesA+8(FP), BX
	MOVQ    blocksB+16(FP), DX
	MOVQ    scalesB+24(FP), R12
	MOVQ    xs+32(FP), DI
	MOVQ    nblocks+40(FP), CX
	MOVQ    0(DI), R9
	MOVQ    8(DI), R10
	LEAQ    ·mxfp4Half(SB), R8
	VMOVUPS ·fp4x2(SB), Z14
	VXORPS  Z0, Z0, Z0
	VXORPS  Z1, Z1, Z1
	VXORPS  Z2, Z2, Z2
	VXORPS  Z3, Z3, Z3
	VXORPS  Z4, Z4, Z4
	VXORPS  Z5, Z5, Z5
	VXORPS  Z6, Z6, Z6
	VXORPS  Z7, Z7, Z7
	VXORPS  Z16, Z16, Z16
	VXORPS  Z17, Z17, Z17
	VXORPS  Z18, Z18, Z18
	VXORPS  Z19, Z19, Z19
	VXORPS  Z20, Z20, Z20
	VXORPS  Z21, Z21, Z21
	VXORPS  Z22, Z22, Z22
	VXORPS  Z23, Z23, Z23
	XORQ    DI, DI

mx22loop:
	CMPQ         CX, $0
	JLE          mx22done
	VPMOVZXBD    (SI), Z8
	VPSRLD       $4, Z8, Z9
	VPERMPS      Z14, Z8, Z8
	VPERMPS      Z14, Z9, Z9
	MOVBLZX      (BX), AX
	VBROADCASTSS (R8)(AX*4), Z15
	VMULPS       Z15, Z8, Z8
	VMULPS       Z15, Z9, Z9
	VPMOVZXBD    (DX), Z10
	VPSRLD       $4, Z10, Z11
	VPERMPS      Z14, Z10, Z10
	VPERMPS      Z14, Z11, Z11
	MOVBLZX      (R12), AX
	VBROADCASTSS (R8)(AX*4), Z15
	VMULPS       Z15, Z10, Z10
	VMULPS       Z15, Z11, Z11
	MX24INPUT(R9, Z0, Z4, Z16, Z20)
	MX24INPUT(R10, Z1, Z5, Z17, Z21)
	ADDQ         $16, SI
	ADDQ         $16, DX
	INCQ         BX
	INCQ         R12
	ADDQ         $128, DI
	DECQ         CX
	JMP          mx22loop

mx22done:
	VADDPS        Z16, Z0, Z0
	VADDPS        Z17, Z1, Z1
	VADDPS        Z18, Z2, Z2
	VADDPS        Z19, Z3, Z3
	VADDPS        Z20, Z4, Z4
	VADDPS        Z21, Z5, Z5
	VADDPS        Z22, Z6, Z6
	VADDPS        Z23, Z7, Z7
	VEXTRACTF64X4 $1, Z0, Y16
	VADDPS        Y16, Y0, Y0
	VEXTRACTF64X4 $1, Z1, Y16
	VADDPS        Y16, Y1, Y1
	VEXTRACTF64X4 $1, Z2, Y16
	VADDPS        Y16, Y2, Y2
	VEXTRACTF64X4 $1, Z3, Y16
	VADDPS        Y16, Y3, Y3
	VEXTRACTF64X4 $1, Z4, Y16
	VADDPS        Y16, Y4, Y4
	VEXTRACTF64X4 $1, Z5, Y16
	VADDPS        Y16, Y5, Y5
	VEXTRACTF64X4 $1, Z6, Y16
	VADDPS        Y16, Y6, Y6
	VEXTRACTF64X4 $1, Z7, Y16
	VADDPS        Y16, Y7, Y7
	VHADDPS       Y1, Y0, Y0
	VHADDPS       Y3, Y2, Y2
	VHADDPS       Y2, Y0, Y0
	VHADDPS       Y5, Y4, Y4
	VHADDPS       Y7, Y6, Y6
	VHADDPS       Y6, Y4, Y4
	VPERM2F128    $0x20, Y4, Y0, Y8
	VPERM2F128    $0x31, Y4, Y0, Y9
	VADDPS        Y9, Y8, Y8
	MOVQ          outA+48(FP), AX
	MOVQ          outB+56(FP), BX
	VMOVUPS       X8, (AX)
	VEXTRACTF128  $1, Y8, (BX)
	VZEROUPPER
	RET

// REDUCE2X4 reduces accumulators Y0-Y3 (row a against inputs 0-3) and
// Y4-Y7 (row b) to four floats each, at (DI) and (BX), as dotF32x2x4Asm
// does.
#define REDUCE2X4 \
	VHADDPS      Y1, Y0, Y0 \
	VHADDPS      Y3, Y2, Y2 \
	VHADDPS      Y2, Y0, Y0 \
	VHADDPS      Y5, Y4, Y4 \
	VHADDPS      Y7, Y6, Y6 \
	VHADDPS      Y6, Y4, Y4 \
	VPERM2F128   $0x20, Y4, Y0, Y8 \
	VPERM2F128   $0x31, Y4, Y0, Y9 \
	VADDPS       Y9, Y8, Y8 \
	VMOVUPS      X8, (DI) \
	VEXTRACTF128 $1, Y8, (BX)

// func dotBF16x2x4Asm(a, b *uint16, xs *[4]*float32, n int, outA, outB *float32)
//
// Two bf16 rows against four inputs: dotF32x2x4Asm with the rows widened
// in registers (zero-extend, shift left 16), so a several-token step on
// an AVX2 machine reads each row once for four tokens instead of once
// for each.
TEXT ·dotBF16x2x4Asm(SB), NOSPLIT, $0-48
	MOVQ   a+0(FP), SI
	MOVQ   b+8(FP), DX
	MOVQ   xs+16(FP), AX
	MOVQ   0(AX), R8
	MOVQ   8(AX), R9
	MOVQ   16(AX), R10
	MOVQ   24(AX), R11
	MOVQ   n+24(FP), CX
	MOVQ   outA+32(FP), DI
	MOVQ   outB+40(FP), BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

b24loop:
	CMPQ        CX, $8
	JLT         b24done
	VPMOVZXWD   (SI), Y8
	VPMOVZXWD   (DX), Y9
	VPSLLD      $16, Y8, Y8
	VPSLLD      $16, Y9, Y9
	VMOVUPS     (R8), Y10
	VMOVUPS     (R9), Y11
	VMOVUPS     (R10), Y12
	VMOVUPS     (R11), Y13
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y13, Y8, Y3
	VFMADD231PS Y10, Y9, Y4
	VFMADD231PS Y11, Y9, Y5
	VFMADD231PS Y12, Y9, Y6
	VFMADD231PS Y13, Y9, Y7
	ADDQ        $16, SI
	ADDQ        $16, DX
	ADDQ        $32, R8
	ADDQ        $32, R9
	ADDQ        $32, R10
	ADDQ        $32, R11
	SUBQ        $8, CX
	JMP         b24loop

b24done:
	REDUCE2X4
	VZEROUPPER
	RET

// MXROW32 looks up the 16 bytes at (src) as LOOKUP32 does, into Y8 and
// Y9 (even elements) and Y10 and Y11 (odd), and scales them by the
// block's power of two at (scale), exactly. It needs the code table in
// X14 and the nibble mask in X15, and clobbers Y12 and Y13.
#define MXROW32(src, scale) \
	LOOKUPREGS(src, X12, X13, Y8, Y9, Y10, Y11) \
	MOVBLZX      (scale), AX   \
	VBROADCASTSS (R8)(AX*4), Y12 \
	VMULPS       Y12, Y8, Y8   \
	VMULPS       Y12, Y9, Y9   \
	VMULPS       Y12, Y10, Y10 \
	VMULPS       Y12, Y11, Y11

// MXINPUT adds the scaled codes in Y8-Y11 times one input's block at
// (ptr)(DI*1), in pair order, to acc.
#define MXINPUT(ptr, acc) \
	VFMADD231PS (ptr)(DI*1), Y8, acc   \
	VFMADD231PS 32(ptr)(DI*1), Y9, acc \
	VFMADD231PS 64(ptr)(DI*1), Y10, acc \
	VFMADD231PS 96(ptr)(DI*1), Y11, acc

// func dotMXFP4x2xAVX2Asm(blocksA, scalesA, blocksB, scalesB *byte, xs *[4]*float32, nblocks int, outA, outB *float32, four bool)
//
// dotMXFP4x2x4AVX512Asm with 256-bit registers: each block of row a is
// looked up and scaled once for the inputs, then row b's; eight
// accumulators (Y0-Y3 row a, Y4-Y7 row b), reduced as dotF32x2x4Asm
// does. The inputs are read twice a block, from L1. Without four, only
// xs[0:2] are read (the branch goes the same way every block), and
// outA[2:4] and outB[2:4] get 0; the first two results are the same as
// with four, addition for addition.
TEXT ·dotMXFP4x2xAVX2Asm(SB), NOSPLIT, $0-65
	MOVQ    blocksA+0(FP), SI
	MOVQ    scalesA+8(FP), BX
	MOVQ    blocksB+16(FP), DX
	MOVQ    scalesB+24(FP), R12
	MOVQ    xs+32(FP), DI
	MOVQ    nblocks+40(FP), CX
	MOVBLZX four+64(FP), R14
	MOVQ    0(DI), R9
	MOVQ    8(DI), R10
	MOVQ    16(DI), R11
	MOVQ    24(DI), R13
	LEAQ    ·mxfp4Half(SB), R8
	VMOVDQU fp4x2lut<>(SB), X14
	VMOVDQU nibblemask<>(SB), X15
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1
	VXORPS  Y2, Y2, Y2
	VXORPS  Y3, Y3, Y3
	VXORPS  Y4, Y4, Y4
	VXORPS  Y5, Y5, Y5
	VXORPS  Y6, Y6, Y6
	VXORPS  Y7, Y7, Y7
	XORQ    DI, DI

m2loop:
	CMPQ    CX, $0
	JLE     m2done
	MXROW32(SI, BX)
	MXINPUT(R9, Y0)
	MXINPUT(R10, Y1)
	TESTQ   R14, R14
	JZ      m2rowb
	MXINPUT(R11, Y2)
	MXINPUT(R13, Y3)

m2rowb:
	MXROW32(DX, R12)
	MXINPUT(R9, Y4)
	MXINPUT(R10, Y5)
	TESTQ   R14, R14
	JZ      m2next
	MXINPUT(R11, Y6)
	MXINPUT(R13, Y7)

m2next:
	ADDQ    $16, SI
	ADDQ    $16, DX
	INCQ    BX
	INCQ    R12
	ADDQ    $128, DI
	DECQ    CX
	JMP     m2loop

m2done:
	MOVQ outA+48(FP), DI
	MOVQ outB+56(FP), BX
	REDUCE2X4
	VZEROUPPER
	RET

// The AVX2 exponential's constants beyond expconst: the upper clamp
// (e^100 is +Inf in float32, as is anything the clamp cuts) and the
// float32 exponent bias.
DATA exp2const<>+0(SB)/4, $0x42c80000 // 100
DATA exp2const<>+4(SB)/4, $0x0000007f // 127
GLOBL exp2const<>(SB), RODATA|NOPTR, $8

// func expSumAVX2Asm(x *float32, n int, mx float32) float32
//
// expSumAVX512Asm with 256-bit registers, for n a multiple of 8. AVX2
// has no VSCALEFPS, so 2^k is built in the exponent bits, as two factors
// 2^(k>>1) and 2^(k-k>>1): each stays a normal float for k in [-150,
// 144], which the clamps to [-104, 100] keep it in, and the second
// product rounds once, into the subnormals or to +Inf where the result
// lies there. A NaN passes the clamps (their second operand wins) and
// stays NaN.
TEXT ·expSumAVX2Asm(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	VBROADCASTSS mx+16(FP), Y1
	LEAQ         expconst<>(SB), AX
	LEAQ         exp2const<>(SB), DX
	VBROADCASTSS 0(AX), Y2
	VBROADCASTSS 4(AX), Y3
	VBROADCASTSS 8(AX), Y4
	VBROADCASTSS 12(AX), Y5
	VBROADCASTSS 16(AX), Y6
	VBROADCASTSS 20(AX), Y7
	VBROADCASTSS 24(AX), Y8
	VBROADCASTSS 28(AX), Y9
	VBROADCASTSS 32(AX), Y10
	VBROADCASTSS 36(AX), Y11
	VXORPS       Y0, Y0, Y0

exp2loop:
	CMPQ         CX, $0
	JLE          exp2done
	VMOVUPS      (SI), Y12
	VSUBPS       Y1, Y12, Y12
	VBROADCASTSS 40(AX), Y15
	VMAXPS       Y12, Y15, Y12
	VBROADCASTSS 0(DX), Y15
	VMINPS       Y12, Y15, Y12
	VMULPS       Y2, Y12, Y13
	VROUNDPS     $0, Y13, Y13
	VFNMADD231PS Y3, Y13, Y12
	VFNMADD231PS Y4, Y13, Y12
	VMOVAPS      Y5, Y14
	VFMADD213PS  Y6, Y12, Y14
	VFMADD213PS  Y7, Y12, Y14
	VFMADD213PS  Y8, Y12, Y14
	VFMADD213PS  Y9, Y12, Y14
	VFMADD213PS  Y10, Y12, Y14
	VMULPS       Y12, Y12, Y15
	VADDPS       Y11, Y12, Y12
	VFMADD231PS  Y15, Y14, Y12
	VCVTPS2DQ    Y13, Y13
	VPSRAD       $1, Y13, Y14
	VPSUBD       Y14, Y13, Y13
	VPBROADCASTD 4(DX), Y15
	VPADDD       Y15, Y14, Y14
	VPADDD       Y15, Y13, Y13
	VPSLLD       $23, Y14, Y14
	VPSLLD       $23, Y13, Y13
	VMULPS       Y14, Y12, Y12
	VMULPS       Y13, Y12, Y12
	VMOVUPS      Y12, (SI)
	VADDPS       Y12, Y0, Y0
	ADDQ         $32, SI
	SUBQ         $8, CX
	JMP          exp2loop

exp2done:
	HSUM
	VMOVSS       X0, ret+24(FP)
	VZEROUPPER
	RET

// func prefetchLines(p *byte, n int)
// PREFETCHT0 for each 64-byte line of p[:n]; nothing is read into
// registers, so p need not be valid memory beyond what the caller checks.
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
pfloop:
	CMPQ CX, $0
	JLE  pfdone
	PREFETCHT0 (SI)
	ADDQ $64, SI
	SUBQ $64, CX
	JMP  pfloop
pfdone:
	RET
