package program

import (
	"fmt"
	"testing"

	"github.com/minerva-ml/minerva/compiler/plan"
)

// TestBindingWrites: a binding's Write flag says what the kernel stores
// into, and barriers follow it: attend only reads the cache that cache_kv
// wrote, so it waits for cache_kv, and a later read of the same cache does
// not wait for attend.
func TestBindingWrites(t *testing.T) {
	arena := &plan.Arena{Slots: map[int]plan.Slot{1: {Offset: 0, RowBytes: 16}, 2: {Offset: 64, RowBytes: 16}, 3: {Offset: 128, RowBytes: 16}}}
	kv := &plan.KV{Layers: []plan.KVLayer{{Cache: 0, KOffset: 0, KBytes: 64, VOffset: 64, VBytes: 64}}}
	store := &Dispatch{Bindings: []Binding{{Kind: BindValue, Value: 1}, {Kind: BindKV, Part: "k", Write: true}, {Kind: BindKV, Part: "v", Write: true}}}
	attend := &Dispatch{Bindings: []Binding{{Kind: BindValue, Value: 1}, {Kind: BindKV, Part: "k"}, {Kind: BindKV, Part: "v"}, {Kind: BindValue, Value: 2, Write: true}}}
	reader := &Dispatch{Bindings: []Binding{{Kind: BindKV, Part: "k"}, {Kind: BindValue, Value: 3, Write: true}}}
	if got, want := barriers(Launches([]*Dispatch{store, attend, reader}, arena, kv, 1)), []bool{false, true, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("barriers %v, want %v", got, want)
	}
}

func barriers(ls []Launch) []bool {
	out := make([]bool, len(ls))
	for i, l := range ls {
		out[i] = l.Barrier
	}
	return out
}

// TestLaunchesOfStages: attention split over positions is its split
// kernel, then a barrier, then the combine stage, in decode only; in
// prefill it is one kernel. Its scratch lies after every planned value,
// so writing it never clobbers one, and the arena buffer holds it.
func TestLaunchesOfStages(t *testing.T) {
	arena := &plan.Arena{Bytes: 200, Batch: 1, Slots: map[int]plan.Slot{1: {Offset: 0, RowBytes: 16}, 2: {Offset: 64, RowBytes: 16}, 3: {Offset: 128, RowBytes: 16}}}
	kv := &plan.KV{Layers: []plan.KVLayer{{Cache: 0, KOffset: 0, KBytes: 64, VOffset: 64, VBytes: 64}}}
	q := Binding{Kind: BindValue, Value: 1}
	out := Binding{Kind: BindValue, Value: 2, Write: true}
	attend := &Dispatch{
		Kernels:  map[Variant]string{VariantDecode: "split", VariantPrefill: "whole"},
		Grids:    map[Variant]Grid{VariantDecode: {{Const: 4}, {Const: 1}, {Const: 8}}, VariantPrefill: {{Const: 4}, {PerTile: 1, Tile: 1}, {Const: 1}}},
		Bindings: []Binding{q, {Kind: BindKV, Part: "k"}, out, {Kind: BindScratch, Write: true}},
		Then:     []Stage{{Variant: VariantDecode, Kernel: "combine", Grid: Grid{{Const: 4}, {Const: 1}, {Const: 1}}, Bindings: []Binding{{Kind: BindScratch}, out}}},
		Scratch:  4 * 8 * 66 * 4,
	}
	reader := &Dispatch{Kernels: map[Variant]string{VariantAny: "reader"}, Bindings: []Binding{{Kind: BindValue, Value: 2}, {Kind: BindValue, Value: 3, Write: true}}}
	ds := []*Dispatch{attend, reader}

	decode := Launches(ds, arena, kv, 1)
	var names []string
	for _, l := range decode {
		names = append(names, l.Kernel)
	}
	if got, want := fmt.Sprint(names, barriers(decode)), "[split combine reader] [false true true]"; got != want {
		t.Fatalf("decode launches %s, want %s", got, want)
	}
	if got := decode[2].Grid.Eval(1); got != [3]int{1, 1, 1} {
		t.Errorf("reader grid %v", got)
	}
	prefill := Launches(ds, arena, kv, 3)
	names = names[:0]
	for _, l := range prefill {
		names = append(names, l.Kernel)
	}
	if got, want := fmt.Sprint(names, barriers(prefill)), "[whole reader] [false true]"; got != want {
		t.Fatalf("prefill launches %s, want %s", got, want)
	}

	base := ScratchBase(arena)
	for id, s := range arena.Slots {
		if end := s.Offset + s.RowBytes*arena.Batch; end > base {
			t.Errorf("value %d ends at %d, past the scratch base %d", id, end, base)
		}
	}
	if base < arena.Bytes || base%256 != 0 {
		t.Errorf("scratch base %d: want an aligned offset at or after the arena's %d bytes", base, arena.Bytes)
	}
	if got, want := ArenaBufferBytes(arena, ds), base+attend.Scratch; got != want {
		t.Errorf("arena buffer %d bytes, want %d", got, want)
	}
	if got := ArenaBufferBytes(arena, []*Dispatch{reader}); got != 256 {
		t.Errorf("arena buffer without scratch %d bytes, want the arena's (at least 256)", got)
	}
}

// TestDecodeUpTo: a dispatch whose decode kernel serves a few tokens
// gets it for calls of up to DecodeUpTo tokens and the prefill kernel
// beyond; one without it gets the decode kernel for one token only. The
// decode grid is evaluated at the call's own token count.
func TestDecodeUpTo(t *testing.T) {
	rows := Grid{{Const: 5}, {PerTile: 1, Tile: 1}, {Const: 1}}
	tiles := Grid{{Const: 2}, {PerTile: 1, Tile: 8}, {Const: 1}}
	few := &Dispatch{Kernels: map[Variant]string{VariantDecode: "mv", VariantPrefill: "tiled"}, Grids: map[Variant]Grid{VariantDecode: rows, VariantPrefill: tiles}, DecodeUpTo: 4}
	one := &Dispatch{Kernels: few.Kernels, Grids: few.Grids}
	for _, c := range []struct {
		d    *Dispatch
		seq  int
		want string
		grid [3]int
	}{
		{few, 1, "mv", [3]int{5, 1, 1}},
		{few, 4, "mv", [3]int{5, 4, 1}},
		{few, 5, "tiled", [3]int{2, 1, 1}},
		{one, 1, "mv", [3]int{5, 1, 1}},
		{one, 2, "tiled", [3]int{2, 1, 1}},
	} {
		name, g := c.d.KernelFor(c.seq)
		if name != c.want || g.Eval(c.seq) != c.grid {
			t.Errorf("DecodeUpTo %d, %d tokens: %s %v, want %s %v", c.d.DecodeUpTo, c.seq, name, g.Eval(c.seq), c.want, c.grid)
		}
	}
}
