package cpu

import (
	"encoding/binary"
	"math"

	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// kvLayer reads and writes one attention layer's cache in the planned
// format. Rows are [position][kv head]; a ring layer stores position p in
// slot p mod capacity.
type kvLayer struct {
	p      plan.KVLayer
	format plan.KVFormat
	k, v   []byte
	kRow   int // bytes per (position, head) row of keys
	vRow   int
}

func newKVLayer(p plan.KVLayer, format plan.KVFormat, buf []byte) *kvLayer {
	return &kvLayer{
		p: p, format: format,
		k:    buf[p.KOffset : p.KOffset+p.KBytes],
		v:    buf[p.VOffset : p.VOffset+p.VBytes],
		kRow: int(format.RowBytes(p.HeadDim)),
		vRow: int(format.RowBytes(p.VDim)),
	}
}

func (l *kvLayer) slot(pos int) int {
	if l.p.Ring {
		return pos % int(l.p.Capacity)
	}
	return pos
}

func (l *kvLayer) row(buf []byte, rowBytes, pos, head int) []byte {
	i := (l.slot(pos)*int(l.p.KVHeads) + head) * rowBytes
	return buf[i : i+rowBytes]
}

func (l *kvLayer) storeK(pos, head int, x []float32) {
	encodeKV(l.format, l.row(l.k, l.kRow, pos, head), x)
}

func (l *kvLayer) storeV(pos, head int, x []float32) {
	encodeKV(l.format, l.row(l.v, l.vRow, pos, head), x)
}

// dotK is q · k[pos, head].
func (l *kvLayer) dotK(pos, head int, q []float32) float32 {
	return dotKV(l.format, l.row(l.k, l.kRow, pos, head), q)
}

// addV adds w * v[pos, head] to acc.
func (l *kvLayer) addV(pos, head int, w float32, acc []float32) {
	axpyKV(l.format, l.row(l.v, l.vRow, pos, head), w, acc)
}

func f16At(b []byte) float32 { return weights.F16BitsToF32(binary.LittleEndian.Uint16(b)) }

func putF16(b []byte, f float32) float32 {
	h := weights.F32ToF16Bits(f)
	binary.LittleEndian.PutUint16(b, h)
	return weights.F16BitsToF32(h)
}

// encodeKV stores one row. Quantised formats scale by the largest
// magnitude of the row (q8) or of each group of 32 (q4), rounded to f16
// first so that values are quantised against the scale that is stored.
func encodeKV(f plan.KVFormat, dst []byte, x []float32) {
	switch f {
	case plan.KVF32:
		for i, v := range x {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case plan.KVF16:
		for i, v := range x {
			binary.LittleEndian.PutUint16(dst[2*i:], weights.F32ToF16Bits(v))
		}
	case plan.KVQ8:
		n := len(x)
		scale := putF16(dst[n:], amax(x)/127)
		quantize(dst[:n], x, scale, 127, func(q int) byte { return byte(int8(q)) })
	case plan.KVQ4:
		for g := 0; g < len(x)/32; g++ {
			blk := dst[g*18 : g*18+18]
			xs := x[g*32 : g*32+32]
			scale := putF16(blk[16:], amax(xs)/7)
			inv := float32(0)
			if scale != 0 {
				inv = 1 / scale
			}
			for j := 0; j < 16; j++ {
				lo := clampRound(xs[2*j]*inv, -8, 7) + 8
				hi := clampRound(xs[2*j+1]*inv, -8, 7) + 8
				blk[j] = byte(lo) | byte(hi)<<4
			}
		}
	}
}

func quantize(dst []byte, x []float32, scale float32, limit int, enc func(int) byte) {
	inv := float32(0)
	if scale != 0 {
		inv = 1 / scale
	}
	for i, v := range x {
		dst[i] = enc(clampRound(v*inv, -limit, limit))
	}
}

func clampRound(v float32, lo, hi int) int {
	q := int(math.RoundToEven(float64(v)))
	return min(max(q, lo), hi)
}

func amax(x []float32) float32 {
	var m float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > m {
			m = a
		}
	}
	return m
}

func dotKV(f plan.KVFormat, row []byte, q []float32) float32 {
	var s float32
	switch f {
	case plan.KVF32:
		for i, v := range q {
			s += math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:])) * v
		}
	case plan.KVF16:
		for i, v := range q {
			s += weights.F16BitsToF32(binary.LittleEndian.Uint16(row[2*i:])) * v
		}
	case plan.KVQ8:
		n := len(q)
		for i, v := range q {
			s += float32(int8(row[i])) * v
		}
		s *= f16At(row[n:])
	case plan.KVQ4:
		for g := 0; g < len(q)/32; g++ {
			blk := row[g*18 : g*18+18]
			qs := q[g*32 : g*32+32]
			var gs float32
			for j := 0; j < 16; j++ {
				gs += float32(int(blk[j]&15)-8)*qs[2*j] + float32(int(blk[j]>>4)-8)*qs[2*j+1]
			}
			s += gs * f16At(blk[16:])
		}
	}
	return s
}

func axpyKV(f plan.KVFormat, row []byte, w float32, acc []float32) {
	switch f {
	case plan.KVF32:
		for i := range acc {
			acc[i] += w * math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:]))
		}
	case plan.KVF16:
		for i := range acc {
			acc[i] += w * weights.F16BitsToF32(binary.LittleEndian.Uint16(row[2*i:]))
		}
	case plan.KVQ8:
		ws := w * f16At(row[len(acc):])
		for i := range acc {
			acc[i] += ws * float32(int8(row[i]))
		}
	case plan.KVQ4:
		for g := 0; g < len(acc)/32; g++ {
			blk := row[g*18 : g*18+18]
			ws := w * f16At(blk[16:])
			a := acc[g*32 : g*32+32]
			for j := 0; j < 16; j++ {
				a[2*j] += ws * float32(int(blk[j]&15)-8)
				a[2*j+1] += ws * float32(int(blk[j]>>4)-8)
			}
		}
	}
}
