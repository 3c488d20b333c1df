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
	got := Barriers([]*Dispatch{store, attend, reader}, arena, kv, 1)
	if want := []bool{false, true, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("barriers %v, want %v", got, want)
	}
}
