package kernels

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
)

// TestEveryOpHasATemplate: every op of the registry that reaches code
// generation (all but those a pass rewrites, ir.OpDef.Rewritten) has a
// Metal specialiser, and so a template.
func TestEveryOpHasATemplate(t *testing.T) {
	for _, k := range ir.AllOps() {
		if ir.MustLookup(k).Rewritten != "" {
			continue
		}
		if !Supported(k) {
			t.Errorf("op %s has no Metal specialiser: add it to specialisers (codegen/kernels/specialise.go)", k)
		}
	}
}

func TestGridEval(t *testing.T) {
	g := Grid{{Const: 3}, {PerTile: 2, Tile: 8}, {Const: 1, PerTile: 1, Tile: 1}}
	if got := g.Eval(9); got != [3]int{3, 4, 10} {
		t.Fatalf("grid for 9 tokens: %v", got)
	}
}

// TestTemplateDataIsTyped: a template run with another family's data
// fails instead of rendering "<no value>" where a constant belongs.
func TestTemplateDataIsTyped(t *testing.T) {
	var buf bytes.Buffer
	err := tmpl().ExecuteTemplate(&buf, "norm", &RowsData{N: 8})
	if err == nil || !strings.Contains(err.Error(), "can't evaluate field") {
		t.Fatalf("norm with RowsData: %v", err)
	}
	buf.Reset()
	if err := tmpl().ExecuteTemplate(&buf, "norm", &NormData{N: 8, G: 8, Eps: "1e-05", WLoad: "bf16f", Offset: "0.0"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<no value>") {
		t.Fatalf("rendered <no value>:\n%s", buf.String())
	}
}

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
