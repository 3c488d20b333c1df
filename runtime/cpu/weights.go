package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// weight is a checkpoint tensor as the kernels read it: a typed view of
// the mapping, never a copy. Rows are the last dimension.
type weight struct {
	name    string
	dtype   ir.DType
	shape   ir.Shape
	cols    int // elements per row (the last dimension)
	rows    int // rows in all (the product of the other dimensions)
	u16     []uint16
	f32     []float32
	blocks  []byte // mxfp4: cols/2 bytes per row
	scales  []byte // mxfp4: cols/32 bytes per row
	aligned bool
	// A weight stored one checkpoint tensor per index of its first
	// dimension (one per expert) is read from the parts in place:
	// partRows rows each, in parts16 or parts32 (u16 and f32 stay nil).
	partRows int
	parts16  [][]uint16
	parts32  [][]float32
}

// row16 and row32 are row r of a 16-bit or f32 weight.
func (w *weight) row16(r int) []uint16 {
	n := w.cols
	if w.parts16 != nil {
		p := r / w.partRows
		r -= p * w.partRows
		return w.parts16[p][r*n : r*n+n]
	}
	return w.u16[r*n : r*n+n]
}

func (w *weight) row32(r int) []float32 {
	n := w.cols
	if w.parts32 != nil {
		p := r / w.partRows
		r -= p * w.partRows
		return w.parts32[p][r*n : r*n+n]
	}
	return w.f32[r*n : r*n+n]
}

func bindWeight(w *ir.Weight, ck *weights.Checkpoint) (*weight, error) {
	out := &weight{name: w.Name, dtype: w.DType, shape: w.Shape, cols: int(w.Shape.Last())}
	out.rows = int(w.Shape.Elems()) / out.cols
	tensors := w.Bound()
	if _, ok := w.Stacked(); ok {
		tensors = w.Tensors()
	}
	get := func(name string) ([]byte, error) {
		t, ok := ck.Tensor(name)
		if !ok {
			return nil, fmt.Errorf("BUG: tensor %s missing after validation", name)
		}
		return t.Data, nil
	}
	if _, ok := w.Stacked(); ok {
		out.partRows = out.rows / len(tensors)
		for _, t := range tensors {
			data, err := get(t.Name)
			if err != nil {
				return nil, err
			}
			switch w.DType {
			case ir.BF16, ir.F16:
				out.parts16 = append(out.parts16, view[uint16](data))
			case ir.F32:
				out.parts32 = append(out.parts32, view[float32](data))
			default:
				return nil, fmt.Errorf("BUG: stacked weight %s has dtype %s", w.Name, w.DType)
			}
		}
		return out, nil
	}
	data, err := get(tensors[0].Name)
	if err != nil {
		return nil, err
	}
	switch w.DType {
	case ir.BF16, ir.F16:
		out.u16 = view[uint16](data)
	case ir.F32:
		out.f32 = view[float32](data)
	case ir.MXFP4:
		out.blocks = data
		if out.scales, err = get(tensors[1].Name); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("BUG: weight %s has dtype %s", w.Name, w.DType)
	}
	return out, nil
}

// view reinterprets mapped bytes as a slice of T. SafeTensors writers
// align tensor data; a misaligned tensor is copied once so the kernels can
// still use typed loads (and the race detector's pointer checks pass).
func view[T uint16 | float32](b []byte) []T {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(b) == 0 {
		return nil
	}
	if uintptr(unsafe.Pointer(&b[0]))%uintptr(size) != 0 {
		c := make([]T, len(b)/size)
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(b)), b)
		return c
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/size)
}

func bf16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// decodeRow writes row r as float32.
func (w *weight) decodeRow(r int, dst []float32) {
	n := w.cols
	dst = dst[:n]
	switch w.dtype {
	case ir.BF16:
		decodeBF16(w.row16(r), dst)
	case ir.F16:
		src := w.row16(r)
		for i, h := range src {
			dst[i] = weights.F16BitsToF32(h)
		}
	case ir.F32:
		copy(dst, w.row32(r))
	case ir.MXFP4:
		decodeMXFP4(w.blocks[r*n/2:r*n/2+n/2], w.scales[r*n/32:r*n/32+n/32], dst)
	}
}

// prepare returns x as dot reads it: x itself, or for MXFP4 x in pair
// order, written to dst. A product prepares x once and reads every row
// against it.
func (w *weight) prepare(x, dst []float32) []float32 {
	if w.dtype != ir.MXFP4 {
		return x
	}
	dst = dst[:len(x)]
	pairOrder(x, dst)
	return dst
}

// dot is row r of the weight times x, without decoding the row first. x
// must come from prepare.
func (w *weight) dot(r int, x []float32) float32 {
	n := w.cols
	x = x[:n]
	switch w.dtype {
	case ir.BF16:
		return dotBF16(w.row16(r), x)
	case ir.F16:
		var s float32
		for i, h := range w.row16(r) {
			s += weights.F16BitsToF32(h) * x[i]
		}
		return s
	case ir.F32:
		return dotF32(w.row32(r), x)
	case ir.MXFP4:
		return dotMXFP4(w.blocks[r*n/2:r*n/2+n/2], w.scales[r*n/32:r*n/32+n/32], x)
	}
	panic("BUG: dot on " + w.dtype.String())
}

// at reads one element of a vector weight (biases, norms, sinks).
func (w *weight) at(i int) float32 {
	if w.parts16 != nil || w.parts32 != nil {
		r, c := i/w.cols, i%w.cols
		if w.parts32 != nil {
			return w.row32(r)[c]
		}
		h := w.row16(r)[c]
		if w.dtype == ir.BF16 {
			return bf16(h)
		}
		return weights.F16BitsToF32(h)
	}
	switch w.dtype {
	case ir.BF16:
		return bf16(w.u16[i])
	case ir.F16:
		return weights.F16BitsToF32(w.u16[i])
	case ir.F32:
		return w.f32[i]
	}
	panic("BUG: element access on " + w.dtype.String())
}

// vector decodes a small weight (a bias, a norm) once at load time.
func (w *weight) vector() []float32 {
	out := make([]float32, w.rows*w.cols)
	for r := 0; r < w.rows; r++ {
		w.decodeRow(r, out[r*w.cols:(r+1)*w.cols])
	}
	return out
}
