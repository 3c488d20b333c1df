package program

import "github.com/minerva-ml/minerva/compiler/plan"

// Variant says which calls a kernel serves.
type Variant string

const (
	// VariantAny serves every call.
	VariantAny Variant = "any"
	// VariantDecode serves calls of one token (matrix-vector kernels).
	VariantDecode Variant = "decode"
	// VariantPrefill serves calls of several tokens (tiled matrix kernels).
	VariantPrefill Variant = "prefill"
)

// BindKind is what the host binds to a kernel parameter.
type BindKind string

const (
	BindArgs   BindKind = "args"   // StepArgs bytes (program/abi)
	BindValue  BindKind = "value"  // an activation in the arena
	BindWeight BindKind = "weight" // a checkpoint tensor
	BindKV     BindKind = "kv"     // a layer's keys or values in the KV buffer
)

// Binding says what one parameter receives.
type Binding struct {
	Index  int      `json:"index"`
	Kind   BindKind `json:"kind"`
	Value  int      `json:"value,omitempty"`  // value ID
	Tensor string   `json:"tensor,omitempty"` // checkpoint tensor name
	Cache  int      `json:"cache,omitempty"`
	Part   string   `json:"part,omitempty"` // "k" or "v"
	// Write: the kernel writes what is bound here, so a later dispatch
	// that touches it must wait for a barrier (see Barriers).
	Write bool `json:"write,omitempty"`
}

// Param is one kernel parameter as the source declares it.
type Param struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	Type  string `json:"type"` // MSL type, e.g. "device const float*"
}

// ThreadAttr is one of the thread-position parameters every kernel
// declares after its buffers and its threadgroup memory.
type ThreadAttr struct {
	Name string // the parameter's name in the source
	Attr string // its Metal attribute
	Type string // its MSL type
}

// ThreadAttrs are the thread-position parameters of every kernel, in
// order. Codegen renders them into each signature and mslemu's launch glue
// is described from them, so the two cannot disagree.
var ThreadAttrs = []ThreadAttr{
	{"tgid", "threadgroup_position_in_grid", "uint3"},
	{"tid", "thread_index_in_threadgroup", "uint"},
	{"lane", "thread_index_in_simdgroup", "uint"},
	{"sg", "simdgroup_index_in_threadgroup", "uint"},
	{"nsg", "simdgroups_per_threadgroup", "uint"},
}

// Dim is one dimension of a grid: Const + PerTile * ceil(seq / Tile).
type Dim struct {
	Const   int `json:"const,omitempty"`
	PerTile int `json:"per_tile,omitempty"`
	Tile    int `json:"tile,omitempty"`
}

// Eval computes the dimension for a call of seq tokens.
func (d Dim) Eval(seq int) int {
	n := d.Const
	if d.PerTile != 0 {
		tile := max(d.Tile, 1)
		n += d.PerTile * ((seq + tile - 1) / tile)
	}
	return max(n, 1)
}

// Grid is the threadgroups of a dispatch.
type Grid [3]Dim

// Eval computes the grid for seq tokens.
func (g Grid) Eval(seq int) [3]int { return [3]int{g[0].Eval(seq), g[1].Eval(seq), g[2].Eval(seq)} }

// Kernel is one specialised kernel: its source and how it is launched.
// Its JSON form is a row of the manifest's kernel table.
type Kernel struct {
	Name    string  `json:"name"`
	Kind    string  `json:"op"`
	Variant Variant `json:"variant"`
	// Ops names the IR ops the kernel implements (a fused op's body).
	Ops     []string `json:"implements"`
	Threads [3]int   `json:"threads"`
	// TGMem is the threadgroup memory, in bytes, of each [[threadgroup(n)]].
	TGMem  []int   `json:"threadgroup_memory"`
	Params []Param `json:"params"`
	// Source is the kernel's Metal; kernels.metal holds every kernel's.
	Source string `json:"-"`
}

// Dispatch is one op's launch: a kernel per variant, the bindings (the
// same for every variant) and the grid of each.
type Dispatch struct {
	Op       int                `json:"op"`
	Kind     string             `json:"kind"`
	Layer    int                `json:"layer"`
	Kernels  map[Variant]string `json:"kernels"`
	Grids    map[Variant]Grid   `json:"grids"`
	Bindings []Binding          `json:"bindings"`
}

// KernelFor picks the kernel name and grid for a call of seq tokens.
func (d *Dispatch) KernelFor(seq int) (string, Grid) {
	v := VariantPrefill
	if seq == 1 {
		v = VariantDecode
	}
	if k, ok := d.Kernels[v]; ok {
		return k, d.Grids[v]
	}
	return d.Kernels[VariantAny], d.Grids[VariantAny]
}

// VectorAlignment is the alignment kernels need of a weight tensor's
// data: its element's size (vector loads use packed vectors).
func VectorAlignment(dtype string) int {
	if dtype == "f32" {
		return 4
	}
	return 2
}

// Region is a byte range of the arena or the KV buffer.
type Region struct {
	Buf        string // "arena" or "kv"
	Start, End int64
}

// Barriers says, for each dispatch of a step of seq tokens, whether a
// memory barrier must come first: it reads or writes memory that an
// earlier dispatch since the last barrier wrote. Dispatches between
// barriers may run concurrently. What a dispatch writes is its bindings'
// Write flags, which are the same for every variant of its kernel.
func Barriers(ds []*Dispatch, arena *plan.Arena, kv *plan.KV, seq int) []bool {
	out := make([]bool, len(ds))
	var written []Region
	for i, d := range ds {
		var touched, writes []Region
		for _, b := range d.Bindings {
			var r Region
			switch b.Kind {
			case BindValue:
				s := arena.Slots[b.Value]
				r = Region{"arena", s.Offset, s.Offset + s.RowBytes*int64(seq)}
			case BindKV:
				l := kv.Layer(b.Cache)
				r = Region{"kv", l.KOffset, l.KOffset + l.KBytes}
				if b.Part == "v" {
					r = Region{"kv", l.VOffset, l.VOffset + l.VBytes}
				}
			default:
				continue
			}
			touched = append(touched, r)
			if b.Write {
				writes = append(writes, r)
			}
		}
		for _, r := range touched {
			if overlapsAny(r, written) {
				out[i] = true
				written = written[:0]
				break
			}
		}
		written = append(written, writes...)
	}
	return out
}

func overlapsAny(r Region, list []Region) bool {
	for _, w := range list {
		if w.Buf == r.Buf && r.Start < w.End && w.Start < r.End {
			return true
		}
	}
	return false
}
