package loader

import (
	"fmt"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/program"
)

// machineMemory is physicalMemory; tests replace it.
var machineMemory = physicalMemory

// checkMemory refuses plans whose activations and KV cache alone exceed
// the machine's memory. The backends map them lazily, so such a plan
// would load, and the process be killed when a long conversation first
// touched the pages it cannot have.
func checkMemory(p *program.Program) error {
	total, ok := machineMemory()
	need := p.Arena.Bytes + p.Arena.Scratch + p.KV.Bytes // each at most plan.MaxBytes
	if !ok || need <= total {
		return nil
	}
	return fmt.Errorf("--ctx %d and --batch %d need %s for the KV cache (%s format) and %s for the activations, more than this machine's %s of memory; use a smaller --ctx or --batch, or a smaller --kv format",
		p.KV.Ctx, p.Arena.Batch, compiler.HumanBytes(p.KV.Bytes), p.KV.Format, compiler.HumanBytes(p.Arena.Bytes+p.Arena.Scratch), compiler.HumanBytes(total))
}
