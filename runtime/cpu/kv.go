package cpu

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// kvLayer reads and writes one attention layer's cache in the planned
// format, for every sequence the model holds. Each sequence has its own
// copy of the plan's KV region (sequence s at s times the plan's bytes),
// so its rows and rings are its own. Rows are [position][kv head]; a ring
// layer stores position p in slot p mod capacity.
type kvLayer struct {
	p      plan.KVLayer
	format plan.KVFormat
	// k[s] and v[s] are sequence s's keys and values.
	k, v [][]byte
	kRow int // bytes per (position, head) row of keys
	vRow int
}

// newKVLayer binds the layer in each of seqs regions of perSeq bytes.
func newKVLayer(p plan.KVLayer, format plan.KVFormat, buf []byte, seqs int, perSeq int64) *kvLayer {
	l := &kvLayer{
		p: p, format: format,
		kRow: int(format.RowBytes(p.HeadDim)),
		vRow: int(format.RowBytes(p.VDim)),
	}
	for s := range seqs {
		r := buf[int64(s)*perSeq : int64(s+1)*perSeq]
		l.k = append(l.k, r[p.KOffset:p.KOffset+p.KBytes])
		l.v = append(l.v, r[p.VOffset:p.VOffset+p.VBytes])
	}
	return l
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

func (l *kvLayer) storeK(seq, pos, head int, x []float32) {
	encodeKV(l.format, l.row(l.k[seq], l.kRow, pos, head), x)
}

func (l *kvLayer) storeV(seq, pos, head int, x []float32) {
	encodeKV(l.format, l.row(l.v[seq], l.vRow, pos, head), x)
}

// run is how many of the n positions from pos on lie in consecutive
// slots: all of them, unless a ring wraps before the last.
func (l *kvLayer) run(pos, n int) int {
	if l.p.Ring {
		return min(n, int(l.p.Capacity)-l.slot(pos))
	}
	return n
}

// keys and values return the rows of head for the n positions from pos
// on of sequence seq, which lie in consecutive slots (see run), as floats
// and their stride in floats: an f32 cache in place, other formats
// decoded into dst (n rows of the head's width) first. Attention then
// reads each row once for all the query heads that share it.
func (l *kvLayer) keys(seq, pos, n, head int, dst []float32) ([]float32, int) {
	return l.rowsF32(l.k[seq], l.kRow, int(l.p.HeadDim), pos, n, head, dst)
}

func (l *kvLayer) values(seq, pos, n, head int, dst []float32) ([]float32, int) {
	return l.rowsF32(l.v[seq], l.vRow, int(l.p.VDim), pos, n, head, dst)
}

func (l *kvLayer) rowsF32(b []byte, rowBytes, dim, pos, n, head int, dst []float32) ([]float32, int) {
	if n == 0 {
		return dst[:0], dim
	}
	heads := int(l.p.KVHeads)
	first := (l.slot(pos)*heads + head) * rowBytes
	stride := heads * rowBytes
	span := b[first : first+(n-1)*stride+rowBytes]
	if l.format == plan.KVF32 {
		return unsafe.Slice((*float32)(unsafe.Pointer(&span[0])), len(span)/4), stride / 4
	}
	dst = dst[:n*dim]
	for j := 0; j < n; j++ {
		decodeKVRow(l.format, span[j*stride:j*stride+rowBytes], dst[j*dim:(j+1)*dim])
	}
	return dst, dim
}

// decodeKVRow widens one stored row to floats, the scale applied (still
// rotated, for the rotated formats: prepareQuery and finishValue account
// for that).
func decodeKVRow(f plan.KVFormat, row []byte, dst []float32) {
	switch f {
	case plan.KVF32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(row[4*i:]))
		}
	case plan.KVF16:
		decodeF16(row[:2*len(dst)], dst)
	case plan.KVQ8:
		n := len(dst)
		s := f16At(row[n:])
		for i, b := range row[:n] {
			dst[i] = float32(int8(b)) * s
		}
	case plan.KVQ4:
		for g := 0; g < len(dst)/32; g++ {
			blk := row[g*18 : g*18+18]
			s := f16At(blk[16:])
			d := dst[g*32 : g*32+32]
			for j, b := range blk[:16] {
				d[2*j] = float32(int(b&15)-8) * s
				d[2*j+1] = float32(int(b>>4)-8) * s
			}
		}
	}
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
		if f.Rotated(int64(n)) {
			var buf [512]float32
			r := buf[:n]
			if n > len(buf) {
				r = make([]float32, n)
			}
			copy(r, x)
			rotateGroups(r)
			x = r
		}
		scale := putF16(dst[n:], amax(x)/127)
		quantize(dst[:n], x, scale, 127, func(q int) byte { return byte(int8(q)) })
	case plan.KVQ4:
		var rot [32]float32
		for g := 0; g < len(x)/32; g++ {
			blk := dst[g*18 : g*18+18]
			copy(rot[:], x[g*32:g*32+32])
			hadamard32(&rot)
			xs := rot[:]
			scale := putF16(blk[16:], q4Scale(xs))
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

// q4Scale picks a group's scale. As in llama.cpp's Q4_0 the value of
// largest magnitude maps to -8, giving its side of zero the eighth level;
// then a few smaller scales are tried, which clip that value a little but
// place the others better, and the one with the least squared error wins.
func q4Scale(xs []float32) float32 {
	var peak float32
	for _, v := range xs {
		if abs32(v) > abs32(peak) {
			peak = v
		}
	}
	if peak == 0 {
		return 0
	}
	best, bestErr := float32(0), float32(math.Inf(1))
	try := func(d float32) {
		d = weights.F16BitsToF32(weights.F32ToF16Bits(d))
		if d == 0 {
			return
		}
		var e float32
		for _, v := range xs {
			q := float32(clampRound(v/d, -8, 7))
			diff := v - q*d
			e += diff * diff
		}
		if e < bestErr {
			best, bestErr = d, e
		}
	}
	for f := float32(1); f >= 0.6; f -= 0.05 {
		d := peak / -8 * f
		try(d)
		// Refit the scale to the levels it chose (least squares), once.
		var num, den float32
		for _, v := range xs {
			q := float32(clampRound(v/d, -8, 7))
			num += v * q
			den += q * q
		}
		if den > 0 {
			try(num / den)
		}
	}
	return best
}

func abs32(v float32) float32 { return float32(math.Abs(float64(v))) }

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

// hadamard32 applies the orthonormal Walsh-Hadamard transform to a group
// of 32 in place. The q4 cache stores rotated groups: the rotation spreads
// a few large channels over all 32 values, so one 4-bit scale fits them
// far better. Dot products are unchanged when the query is rotated too,
// and the transform is its own inverse, which undoes it on the values.
func hadamard32(x *[32]float32) {
	for h := 1; h < 32; h *= 2 {
		for i := 0; i < 32; i += 2 * h {
			for j := i; j < i+h; j++ {
				a, b := x[j], x[j+h]
				x[j], x[j+h] = a+b, a-b
			}
		}
	}
	const norm = 0.17677669529663687 // 1/sqrt(32)
	for i := range x {
		x[i] *= norm
	}
}

// prepareQuery returns the query as the cache's format needs it: rotated
// group by group when keys are stored rotated. dst is scratch of len(q).
func (l *kvLayer) prepareQuery(q, dst []float32) []float32 {
	if !l.rotated(l.p.HeadDim) {
		return q
	}
	copy(dst, q)
	rotateGroups(dst)
	return dst
}

// finishValue undoes the q4 rotation on a weighted sum of values.
func (l *kvLayer) finishValue(acc []float32) {
	if l.rotated(l.p.VDim) {
		rotateGroups(acc)
	}
}

// rotated reports whether rows of width dim are stored as Hadamard-rotated
// groups (plan.KVFormat.Rotated, which encodeKV asks too).
func (l *kvLayer) rotated(dim int64) bool { return l.format.Rotated(dim) }

func rotateGroups(x []float32) {
	for g := 0; g+32 <= len(x); g += 32 {
		hadamard32((*[32]float32)(x[g : g+32]))
	}
}
