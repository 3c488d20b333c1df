package loader

import (
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/program"
)

// TestMemoryCountsGPUScratch: a GPU allocates the ops' scratch after the
// arena's values (program.ArenaBufferBytes), in the machine's memory on a
// Mac, so the check counts it when it is larger than the CPU's needs.
func TestMemoryCountsGPUScratch(t *testing.T) {
	defer func(f func() (int64, bool)) { machineMemory = f }(machineMemory)
	machineMemory = func() (int64, bool) { return 1 << 20, true }
	p := &program.Program{
		Arena: &plan.Arena{Bytes: 4096, Batch: 1},
		KV:    &plan.KV{Bytes: 4096, Ctx: 64, Format: plan.KVF16},
		Code:  &program.Code{Dispatches: []*program.Dispatch{{Scratch: 1 << 20}}},
	}
	err := checkMemory(p)
	if err == nil || !strings.Contains(err.Error(), "more than this machine's 1.00 MiB") {
		t.Fatalf("a scratch region larger than memory: %v", err)
	}
	p.Code.Dispatches[0].Scratch = 1 << 10
	if err := checkMemory(p); err != nil {
		t.Fatalf("a plan that fits: %v", err)
	}
}
