//go:build amd64 && !purego

#include "textflag.h"

// The one-token kernels: a weight row, packed as the checkpoint stores it
// (bf16, MXFP4), times one float32 vector, widened in registers and never
// written to memory. A decode step spends most of its time here, reading
// every weight once; the loops are unrolled with four independent
// accumulators so that the latency of the multiply-adds never limits the
// rate at which the row streams in. The Go wrappers (dot_decode_amd64.go)
// check the lengths.

// func dotBF16AVX512Asm(w *uint16, x *float32, n int) float32
//
// n is a multiple of 16. A bf16 is the top half of a float32: zero-extend
// to 32 bits, shift left 16. Four 16-wide accumulators, 64 elements (128
// bytes of the row) per iteration; the prefetch runs 1 KiB ahead, across
// the page boundaries where the hardware prefetchers stop.
TEXT ·dotBF16AVX512Asm(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

b5loop64:
	CMPQ        CX, $64
	JLT         b5loop16
	PREFETCHT0  1024(SI)
	PREFETCHT0  1088(SI)
	VPMOVZXWD   (SI), Z4
	VPMOVZXWD   32(SI), Z5
	VPMOVZXWD   64(SI), Z6
	VPMOVZXWD   96(SI), Z7
	VPSLLD      $16, Z4, Z4
	VPSLLD      $16, Z5, Z5
	VPSLLD      $16, Z6, Z6
	VPSLLD      $16, Z7, Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ        $128, SI
	ADDQ        $256, DI
	SUBQ        $64, CX
	JMP         b5loop64

b5loop16:
	CMPQ        CX, $16
	JLT         b5done
	VPMOVZXWD   (SI), Z4
	VPSLLD      $16, Z4, Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ        $32, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         b5loop16

b5done:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func dotMXFP4U4AVX512Asm(blocks, scales *byte, x *float32, nblocks int) float32
//
// dotMXFP4AVX512Asm four blocks at a time: one VPERMPS looks up 16 codes
// in the 16-entry table of doubled E2M1 values (Z31), each block's 32
// products are summed unscaled, then scaled by 2^(s-128) and added to
// its own accumulator (Z0-Z3), so four blocks are in flight at once. x is
// in pair order.
TEXT ·dotMXFP4U4AVX512Asm(SB), NOSPLIT, $0-36
	MOVQ    blocks+0(FP), SI
	MOVQ    scales+8(FP), BX
	MOVQ    x+16(FP), DI
	MOVQ    nblocks+24(FP), CX
	LEAQ    ·mxfp4Half(SB), R8
	VMOVUPS ·fp4x2(SB), Z31
	VXORPS  Z0, Z0, Z0
	VXORPS  Z1, Z1, Z1
	VXORPS  Z2, Z2, Z2
	VXORPS  Z3, Z3, Z3

m4loop4:
	CMPQ             CX, $4
	JLT              m4loop1
	PREFETCHT0       1024(SI)
	VPMOVZXBD        (SI), Z4
	VPMOVZXBD        16(SI), Z6
	VPMOVZXBD        32(SI), Z8
	VPMOVZXBD        48(SI), Z10
	VPSRLD           $4, Z4, Z5
	VPSRLD           $4, Z6, Z7
	VPSRLD           $4, Z8, Z9
	VPSRLD           $4, Z10, Z11
	VPERMPS          Z31, Z4, Z4
	VPERMPS          Z31, Z5, Z5
	VPERMPS          Z31, Z6, Z6
	VPERMPS          Z31, Z7, Z7
	VPERMPS          Z31, Z8, Z8
	VPERMPS          Z31, Z9, Z9
	VPERMPS          Z31, Z10, Z10
	VPERMPS          Z31, Z11, Z11
	VMULPS           (DI), Z4, Z4
	VMULPS           128(DI), Z6, Z6
	VMULPS           256(DI), Z8, Z8
	VMULPS           384(DI), Z10, Z10
	VFMADD231PS      64(DI), Z5, Z4
	VFMADD231PS      192(DI), Z7, Z6
	VFMADD231PS      320(DI), Z9, Z8
	VFMADD231PS      448(DI), Z11, Z10
	MOVBLZX          (BX), AX
	MOVBLZX          1(BX), DX
	MOVBLZX          2(BX), R9
	MOVBLZX          3(BX), R10
	VFMADD231PS.BCST (R8)(AX*4), Z4, Z0
	VFMADD231PS.BCST (R8)(DX*4), Z6, Z1
	VFMADD231PS.BCST (R8)(R9*4), Z8, Z2
	VFMADD231PS.BCST (R8)(R10*4), Z10, Z3
	ADDQ             $64, SI
	ADDQ             $4, BX
	ADDQ             $512, DI
	SUBQ             $4, CX
	JMP              m4loop4

m4loop1:
	CMPQ             CX, $1
	JLT              m4done
	VPMOVZXBD        (SI), Z4
	VPSRLD           $4, Z4, Z5
	VPERMPS          Z31, Z4, Z4
	VPERMPS          Z31, Z5, Z5
	VMULPS           (DI), Z4, Z4
	VFMADD231PS      64(DI), Z5, Z4
	MOVBLZX          (BX), AX
	VFMADD231PS.BCST (R8)(AX*4), Z4, Z0
	ADDQ             $16, SI
	INCQ             BX
	ADDQ             $128, DI
	DECQ             CX
	JMP              m4loop1

m4done:
	VADDPS        Z1, Z0, Z0
	VADDPS        Z3, Z2, Z2
	VADDPS        Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+32(FP)
	RET
