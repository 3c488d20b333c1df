package plan_test

import (
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/plan"
)

// TestSizesDoNotOverflow: the plans multiply sizes with overflow checks.
// A context of 2^62 positions used to wrap the cache's size around to a
// few megabytes, which the CPU backend then indexed past.
func TestSizesDoNotOverflow(t *testing.T) {
	opts, err := compiler.SourceOptions("../../models/gpt-oss.arch", "../../models/fortune/config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, ctx := range []int64{1 << 62, 1 << 48, 1<<63 - 1} {
		kv, err := plan.PlanKV(u.Func, plan.KVF32, ctx, 1)
		if err == nil {
			t.Errorf("ctx %d: planned %d bytes", ctx, kv.Bytes)
		} else if !strings.Contains(err.Error(), "use a smaller --ctx") {
			t.Errorf("ctx %d: %v", ctx, err)
		}
	}
	for _, batch := range []int64{1 << 62, 1 << 50} {
		a, err := plan.PlanArena(u.Func, batch)
		if err == nil {
			t.Errorf("batch %d: planned %d bytes", batch, a.Bytes)
		} else if !strings.Contains(err.Error(), "use a smaller --batch") {
			t.Errorf("batch %d: %v", batch, err)
		}
	}
	// The fortune model's full-attention layers hold 2 kv heads of 32
	// floats, keys and values: 2*2*32*4 = 512 bytes a position each.
	kv, err := plan.PlanKV(u.Func, plan.KVF32, 1000, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range kv.Layers {
		if !l.Ring && l.KBytes+l.VBytes != 1000*512 {
			t.Errorf("layer %d: %d bytes, want %d", l.Layer, l.KBytes+l.VBytes, 1000*512)
		}
	}
}
