package loader

import (
	"fmt"

	"github.com/minerva-ml/minerva/internal/human"
	"github.com/minerva-ml/minerva/program"
)

// machineMemory is physicalMemory; tests replace it.
var machineMemory = physicalMemory

// checkMemory refuses plans whose activations and KV cache alone exceed
// the machine's memory. The backends map them lazily, so such a plan
// would load, and the process be killed when a long conversation first
// touched the pages it cannot have.
func checkMemory(p *program.Program) error {
	total, ok := machineMemory()
	// The activations: the CPU's arena and fused-op scratch, or a GPU's
	// arena buffer with the ops' scratch after it (unified memory on a
	// Mac), whichever is larger.
	act := p.Arena.Bytes + p.Arena.Scratch // each at most plan.MaxBytes
	if p.Code != nil {
		act = max(act, program.ArenaBufferBytes(p.Arena, p.Code.Dispatches))
	}
	need := act + p.KV.Bytes
	if !ok || need <= total {
		return nil
	}
	return fmt.Errorf("--ctx %d and --batch %d need %s for the KV cache (%s format) and %s for the activations, more than this machine's %s of memory; use a smaller --ctx or --batch, or a smaller --kv format",
		p.KV.Ctx, p.Arena.Batch, human.Bytes(p.KV.Bytes), p.KV.Format, human.Bytes(act), human.Bytes(total))
}
