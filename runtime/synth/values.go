package synth

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"math"
	"math/bits"
	"sync/atomic"

	"github.com/minerva-ml/minerva/runtime/weights"
)

// segmentBytes is the unit that has its own generator. It is a multiple
// of every element size, so no element straddles two segments.
const segmentBytes = 1 << 20

// reader produces one tensor's bytes in order, a segment at a time, for
// Writer.WriteTensorFrom: the tensor is never held in memory whole.
type reader struct {
	t        Tensor
	seed     uint64 // the tensor's: the option's seed and the name
	pos      int64  // bytes handed out
	seg      []byte // the current segment, when p was too short for it
	segOff   int
	buf      []byte
	produced *atomic.Int64
}

func newReader(seed uint64, t Tensor, produced *atomic.Int64) *reader {
	h := fnv.New64a()
	h.Write([]byte(t.Name))
	return &reader{t: t, seed: seed ^ h.Sum64(), produced: produced}
}

func (r *reader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.pos < r.t.Bytes {
		if r.segOff < len(r.seg) {
			c := copy(p[n:], r.seg[r.segOff:])
			r.segOff += c
			n += c
			r.pos += int64(c)
			continue
		}
		k := r.pos / segmentBytes
		size := int(min(segmentBytes, r.t.Bytes-k*segmentBytes))
		if len(p)-n >= size {
			// The usual case: the copy buffer takes a whole segment.
			generate(p[n:n+size], r.t, r.seed, uint64(k))
			n += size
			r.pos += int64(size)
			continue
		}
		if r.buf == nil {
			r.buf = make([]byte, segmentBytes)
		}
		r.seg, r.segOff = r.buf[:size], 0
		generate(r.seg, r.t, r.seed, uint64(k))
	}
	if r.produced != nil {
		r.produced.Add(int64(n))
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// rng is wyrand: one multiply per 64 random bits, which keeps generation
// far ahead of the disk.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// splitmix64 spreads a seed, so that neighbouring segments get unrelated
// streams.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// gauss turns 64 random bits into an approximately standard normal value:
// the sum of four 16-bit uniforms (Irwin-Hall), centred and scaled to unit
// variance. Its tails stop at ±3.46, which suits weights.
func gauss(u uint64) float32 {
	s := u&0xffff + u>>16&0xffff + u>>32&0xffff + u>>48
	const scale = 1.7320508075688772 / 65536 // sqrt(3) / 2^16: each uniform has variance 1/12
	return (float32(s) - 2*65535) * scale
}

// generate fills segment k of tensor t.
func generate(dst []byte, t Tensor, seed, k uint64) {
	r := rng{splitmix64(seed ^ splitmix64(k))}
	f := t.Fill
	switch {
	case f.Kind == RandomBytes || (f.Kind == Normal && t.DType.Size() == 1):
		randomBytes(dst, &r)
	case f.Kind == Scales:
		e := f.Exponent
		i := 0
		for i < len(dst) {
			u := r.next()
			for j := 0; j < 8 && i < len(dst); j++ {
				dst[i] = byte(e + int(u&0xff)%3 - 1)
				u >>= 8
				i++
			}
		}
	default:
		mean, std := float32(f.Mean), float32(f.Std)
		switch t.DType {
		case weights.BF16:
			for i := 0; i+2 <= len(dst); i += 2 {
				binary.LittleEndian.PutUint16(dst[i:], weights.F32ToBF16Bits(mean+std*gauss(r.next())))
			}
		case weights.F16:
			for i := 0; i+2 <= len(dst); i += 2 {
				binary.LittleEndian.PutUint16(dst[i:], weights.F32ToF16Bits(mean+std*gauss(r.next())))
			}
		case weights.F32:
			for i := 0; i+4 <= len(dst); i += 4 {
				binary.LittleEndian.PutUint32(dst[i:], math.Float32bits(mean+std*gauss(r.next())))
			}
		default:
			// Integer tensors (none of the shipped architectures has one):
			// any bytes are valid values.
			randomBytes(dst, &r)
		}
	}
}

func randomBytes(dst []byte, r *rng) {
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], r.next())
	}
	if i < len(dst) {
		var tail [8]byte
		binary.LittleEndian.PutUint64(tail[:], r.next())
		copy(dst[i:], tail[:])
	}
}
