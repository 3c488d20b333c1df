package cpu

import (
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestLoadRefusesBadSizes: a thread count past MaxWorkers (--threads
// 100000 used to start 100000 workers with their scratch, 748 MB) and plan
// sizes no allocation can meet (from an edited artifact) are errors, not
// a makeslice panic or an index past the arena.
func TestLoadRefusesBadSizes(t *testing.T) {
	fx := testModels[1]
	p := compileFixture(t, fx, compiler.PlanOptions{Ctx: 32, Batch: 4})
	ck, err := weights.Open(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	for _, w := range []int{-1, MaxWorkers() + 1, 100000} {
		if m, err := Load(p, ck, Options{Workers: w}); err == nil {
			m.Close()
			t.Errorf("%d workers accepted", w)
		}
	}
	arena := *p.Arena
	arena.Bytes = -1
	bad := *p
	bad.Arena = &arena
	if m, err := Load(&bad, ck, Options{}); err == nil || !strings.Contains(err.Error(), "arena.Bytes is -1") {
		if m != nil {
			m.Close()
		}
		t.Errorf("arena of -1 bytes: %v", err)
	}
}
