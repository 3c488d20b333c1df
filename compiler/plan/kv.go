// Package plan decides where every byte lives at run time: the KV cache of
// each attention layer (KV) and the offset of every activation in one arena
// (Arena), by liveness analysis. On Metal the arena is one unified-memory
// buffer and the KV cache another; on the CPU they are two slices. The
// plans are data: backends allocate exactly what they say.
package plan

import (
	"fmt"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// KVFormat is the storage format of cached keys and values.
type KVFormat string

const (
	// KVF16 stores half floats: the default, exact enough for every
	// correctness test but the strictest.
	KVF16 KVFormat = "f16"
	// KVF32 stores floats: bit-exact with the uncached computation.
	KVF32 KVFormat = "f32"
	// KVQ8 stores int8 with one f16 scale per token per kv head.
	KVQ8 KVFormat = "q8"
	// KVQ4 stores 4-bit values in groups of 32 with one f16 scale per group.
	KVQ4 KVFormat = "q4"
)

// KVFormats lists the accepted formats.
var KVFormats = []KVFormat{KVF16, KVQ8, KVQ4, KVF32}

// ParseKVFormat reads a format name.
func ParseKVFormat(s string) (KVFormat, error) {
	for _, f := range KVFormats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown KV-cache format %q: use f16 (default), q8, q4 or f32", s)
}

// RowBytes is the size of one position of one kv head of width dim.
func (f KVFormat) RowBytes(dim int64) int64 {
	switch f {
	case KVF32:
		return 4 * dim
	case KVQ8:
		return dim + 2 // int8 values, then an f16 scale
	case KVQ4:
		return (dim/32)*(16+2) + 0 // per group of 32: 16 bytes of nibbles, an f16 scale
	}
	return 2 * dim
}

// Check reports whether a head width suits the format.
func (f KVFormat) Check(dim int64) error {
	if f == KVQ4 && dim%32 != 0 {
		return fmt.Errorf("the q4 KV cache quantises groups of 32, but a head has %d values", dim)
	}
	return nil
}

// KVLayer is the cache of one attention op.
type KVLayer struct {
	// Cache is the slot number the IR's cache_kv and attend ops carry.
	Cache int
	// Layer is the model layer, for reports.
	Layer   int
	KVHeads int64
	HeadDim int64
	VDim    int64
	// Window is the sliding window, or 0.
	Window int64
	// Capacity is the number of positions held. A full-attention layer
	// holds the whole context; a sliding layer is a ring of window + batch
	// - 1 positions: one call of `batch` tokens writes its keys before its
	// first query reads the window-1 positions before it.
	Capacity int64
	Ring     bool
	// KOffset and VOffset locate the keys and values in the KV buffer;
	// each is [Capacity][KVHeads] rows of Format.RowBytes(dim).
	KOffset, VOffset int64
	KBytes, VBytes   int64
}

// KV is the plan of the whole cache.
type KV struct {
	Format KVFormat
	Ctx    int64
	Batch  int64
	Layers []KVLayer
	Bytes  int64
}

// Layer returns the cache of a slot.
func (k *KV) Layer(cache int) *KVLayer {
	for i := range k.Layers {
		if k.Layers[i].Cache == cache {
			return &k.Layers[i]
		}
	}
	panic(fmt.Sprintf("BUG: no KV plan for cache %d", cache))
}

// alignment of every region, in bytes: a cache line, and enough for any
// Metal buffer offset.
const alignment = 256

func align(n int64) int64 { return (n + alignment - 1) / alignment * alignment }

// MaxBytes bounds every size a plan computes: a PiB, more memory than any
// machine has, and far enough below 2^63 that sums of a few sizes cannot
// overflow. A plan past it is refused before any backend tries to
// allocate it.
const MaxBytes = 1 << 50

// product multiplies non-negative sizes, or reports false when the result
// passes MaxBytes (including where int64 arithmetic would overflow).
func product(factors ...int64) (int64, bool) {
	n := int64(1)
	for _, f := range factors {
		if f < 0 {
			return 0, false
		}
		if f != 0 && n > MaxBytes/f {
			return 0, false
		}
		n *= f
	}
	return n, true
}

// sum adds non-negative sizes below MaxBytes, aligning the result, or
// reports false when it passes MaxBytes.
func sum(a, b int64) (int64, bool) {
	n := align(a + b)
	return n, a >= 0 && b >= 0 && a <= MaxBytes && b <= MaxBytes && n <= MaxBytes
}

// PlanKV sizes the cache of every cache_kv op of f.
func PlanKV(f *ir.Func, format KVFormat, ctx, batch int64) (*KV, error) {
	if ctx <= 0 || batch <= 0 {
		return nil, fmt.Errorf("the context (%d) and batch (%d) must be positive", ctx, batch)
	}
	kv := &KV{Format: format, Ctx: ctx, Batch: batch}
	var off int64
	for _, op := range allOps(f) {
		if op.Kind != ir.OpCacheKV {
			continue
		}
		a := op.Attrs
		l := KVLayer{
			Cache:   int(a.Int("cache")),
			Layer:   op.Layer,
			KVHeads: a.Int("kv_heads"),
			HeadDim: a.Int("head_dim"),
			Window:  a.Int("window"),
		}
		l.VDim = op.Args[2].V.Type.Shape.Last() / l.KVHeads
		for _, d := range []int64{l.HeadDim, l.VDim} {
			if err := format.Check(d); err != nil {
				return nil, err
			}
		}
		l.Capacity = ctx
		if l.Window > 0 && l.Window+batch-1 < ctx {
			l.Capacity, l.Ring = l.Window+batch-1, true
		}
		var ok1, ok2, ok3, ok4 bool
		l.KBytes, ok1 = product(l.Capacity, l.KVHeads, format.RowBytes(l.HeadDim))
		l.VBytes, ok2 = product(l.Capacity, l.KVHeads, format.RowBytes(l.VDim))
		l.KOffset = off
		off, ok3 = sum(off, l.KBytes)
		l.VOffset = off
		off, ok4 = sum(off, l.VBytes)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return nil, fmt.Errorf("the KV cache for --ctx %d would take more than %d bytes; use a smaller --ctx", ctx, int64(MaxBytes))
		}
		kv.Layers = append(kv.Layers, l)
	}
	kv.Bytes = off
	return kv, nil
}

// allOps lists ops and the ops inside fused bodies.
func allOps(f *ir.Func) []*ir.Op {
	var out []*ir.Op
	for _, op := range f.Ops {
		out = append(out, op)
		out = append(out, op.Body...)
	}
	return out
}
