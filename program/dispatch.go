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
	// BindScratch is the op's scratch region (Dispatch.Scratch bytes at
	// ScratchBase in the arena buffer): what one of its launches leaves
	// for a later one of the same op, such as the partial results of
	// attention split over positions.
	BindScratch BindKind = "scratch"
)

// Binding says what one parameter receives.
type Binding struct {
	Index  int      `json:"index"`
	Kind   BindKind `json:"kind"`
	Value  int      `json:"value,omitempty"`  // value ID
	Tensor string   `json:"tensor,omitempty"` // checkpoint tensor name
	Cache  int      `json:"cache,omitempty"`
	Part   string   `json:"part,omitempty"` // "k" or "v"
	// Write: the kernel writes what is bound here, so a later launch
	// that touches it must wait for a barrier (see Launches).
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
// same for every variant) and the grid of each, and the stages that follow
// the kernel in some variant.
type Dispatch struct {
	Op      int                `json:"op"`
	Kind    string             `json:"kind"`
	Layer   int                `json:"layer"`
	Kernels map[Variant]string `json:"kernels"`
	Grids   map[Variant]Grid   `json:"grids"`
	// DecodeUpTo is the most tokens a call may have for the decode kernel
	// to serve it (0: one). A matrix-vector kernel whose grid has a row of
	// threadgroups per token serves a few tokens faster than a tiled
	// kernel, whose few tiles leave the GPU idle (docs/gpu.md, "Few-token
	// calls").
	DecodeUpTo int       `json:"decode_up_to,omitempty"`
	Bindings   []Binding `json:"bindings"`
	// Then are further launches of the op, after its kernel, in order:
	// each runs in the calls whose variant it names (VariantAny: all).
	Then []Stage `json:"then,omitempty"`
	// Scratch is the bytes the op's BindScratch bindings address, from
	// ScratchBase; every op's scratch starts there (launches that share
	// it are ordered by barriers like any other memory).
	Scratch int64 `json:"scratch,omitempty"`
}

// Stage is one launch of an op after its kernel: attention split over
// positions writes partial results to scratch in its kernel and combines
// them in a stage.
type Stage struct {
	Variant  Variant   `json:"variant"`
	Kernel   string    `json:"kernel"`
	Grid     Grid      `json:"grid"`
	Bindings []Binding `json:"bindings"`
}

// variantFor is the variant that serves a call of seq tokens: the
// decode or prefill kernel when the dispatch has one, else VariantAny.
func (d *Dispatch) variantFor(seq int) Variant {
	v := VariantPrefill
	if seq == 1 || seq <= d.DecodeUpTo {
		v = VariantDecode
	}
	if _, ok := d.Kernels[v]; ok {
		return v
	}
	return VariantAny
}

// KernelFor picks the kernel name and grid for a call of seq tokens (the
// op's first launch; Launches lists them all).
func (d *Dispatch) KernelFor(seq int) (string, Grid) {
	v := d.variantFor(seq)
	return d.Kernels[v], d.Grids[v]
}

// stagesFor are the stages that run after the kernel in a call of seq
// tokens.
func (d *Dispatch) stagesFor(seq int) []Stage {
	v := d.variantFor(seq)
	var out []Stage
	for _, s := range d.Then {
		if s.Variant == v || s.Variant == VariantAny {
			out = append(out, s)
		}
	}
	return out
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

// ScratchBase is where the ops' scratch regions start in the arena
// buffer: after the planned values, aligned for any load.
func ScratchBase(arena *plan.Arena) int64 {
	const align = 256
	return (arena.Bytes + align - 1) / align * align
}

// ArenaBufferBytes is the size of the arena buffer a device allocates:
// the planned values, then the largest scratch region any op needs.
func ArenaBufferBytes(arena *plan.Arena, ds []*Dispatch) int64 {
	var scratch int64
	for _, d := range ds {
		scratch = max(scratch, d.Scratch)
	}
	if scratch == 0 {
		return max(arena.Bytes, 256)
	}
	return ScratchBase(arena) + scratch
}

// Launch is one kernel launch of a step: an op's kernel or one of its
// stages.
type Launch struct {
	Dispatch *Dispatch // the op it belongs to
	Kernel   string
	Grid     Grid
	Bindings []Binding
	// Barrier: a memory barrier must come first, because the launch reads
	// or writes memory that an earlier launch since the last barrier
	// wrote.
	Barrier bool
}

// Launches lists the launches of a step of seq tokens in order: each
// op's kernel for that call, then its stages, each with whether a memory
// barrier must come first. Launches between barriers may run
// concurrently. What a launch writes is its bindings' Write flags, which
// are the same for every variant of an op's kernel.
func Launches(ds []*Dispatch, arena *plan.Arena, kv *plan.KV, seq int) []Launch {
	var out []Launch
	for _, d := range ds {
		k, g := d.KernelFor(seq)
		out = append(out, Launch{Dispatch: d, Kernel: k, Grid: g, Bindings: d.Bindings})
		for _, s := range d.stagesFor(seq) {
			out = append(out, Launch{Dispatch: d, Kernel: s.Kernel, Grid: s.Grid, Bindings: s.Bindings})
		}
	}
	var written []Region
	for i := range out {
		l := &out[i]
		var touched, writes []Region
		for _, b := range l.Bindings {
			var r Region
			switch b.Kind {
			case BindValue:
				s := arena.Slots[b.Value]
				r = Region{"arena", s.Offset, s.Offset + s.RowBytes*int64(seq)}
			case BindScratch:
				base := ScratchBase(arena)
				r = Region{"arena", base, base + l.Dispatch.Scratch}
			case BindKV:
				kl := kv.Layer(b.Cache)
				r = Region{"kv", kl.KOffset, kl.KOffset + kl.KBytes}
				if b.Part == "v" {
					r = Region{"kv", kl.VOffset, kl.VOffset + kl.VBytes}
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
				l.Barrier = true
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
