package gpu_test

import (
	"math"
	"os/exec"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/internal/backendtest"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// These tests run the emitted Metal on the CPU through mslemu (Metal's
// execution model: threadgroups as fibers, shuffled thread order, poisoned
// threadgroup memory).

func needCompiler(t testing.TB) {
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("mslemu needs a C++17 compiler (apt-get install g++); .ci/run installs it")
	}
}

// startEmu loads p on mslemu; seed orders each threadgroup's threads.
func startEmu(t testing.TB, p *program.Program, ck *weights.Checkpoint, seed uint64) *gpu.Model {
	t.Helper()
	dev, err := gpu.NewEmulator(p.Code, seed)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gpu.Load(p, ck, dev)
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	return m
}

// TestEmulatorConformance runs the backend conformance suite on the
// emitted Metal under mslemu: against transformers end to end, and against
// the CPU backend kernel by kernel.
func TestEmulatorConformance(t *testing.T) {
	needCompiler(t)
	backendtest.Run(t, func(t testing.TB, p *program.Program, ck *weights.Checkpoint) engine.Backend {
		return startEmu(t, p, ck, 7)
	})
}

// TestBrokenKernelsAreCaught breaks the emitted Metal on purpose and checks
// that the emulator notices: a missing barrier (threads read threadgroup
// memory before it is written: they see the poison, so the logits go wrong)
// and a barrier inside divergent control flow (reported as an error).
func TestBrokenKernelsAreCaught(t *testing.T) {
	needCompiler(t)
	fx := fixtures.TinyRandom
	p := fx.Compile(t, backendtest.Plan("f32"))
	ck := fx.Checkpoint(t, p)
	cm, err := cpu.Load(p, ck, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	ids := []int32{5, 9, 13, 200, 7}
	want, err := cm.Forward(ids, 0)
	if err != nil {
		t.Fatal(err)
	}
	want = append([]float32(nil), want...)
	out := p.Code
	mutate := func(t *testing.T, kernelPrefix, from, to string) *program.Program {
		t.Helper()
		start := strings.Index(out.Metal, "kernel void "+kernelPrefix)
		if start < 0 {
			t.Fatalf("no %s kernel in the emitted Metal", kernelPrefix)
		}
		i := strings.Index(out.Metal[start:], from)
		if i < 0 {
			t.Fatalf("the %s kernel has no %q", kernelPrefix, from)
		}
		code := *out
		code.Metal = out.Metal[:start+i] + to + out.Metal[start+i+len(from):]
		broken := *p
		broken.Code = &code
		return &broken
	}
	t.Run("missing barrier", func(t *testing.T) {
		const barrier = "threadgroup_barrier(mem_flags::mem_threadgroup);\n  constexpr uint G"
		m := startEmu(t, mutate(t, "attend_", barrier, "constexpr uint G"), ck, 3)
		defer m.Close()
		got, err := m.Forward(ids, 0)
		if err == nil && fixtures.RelErr(got, want) < 1e-3 && !hasNaN(got) {
			t.Fatal("a kernel without its barrier gave the right logits: the emulator did not catch it")
		}
	})
	t.Run("divergent barrier", func(t *testing.T) {
		m := startEmu(t, mutate(t, "qkv_rope_store_", "threadgroup_barrier(mem_flags::mem_threadgroup);", "if (tid < 16) threadgroup_barrier(mem_flags::mem_threadgroup);"), ck, 3)
		defer m.Close()
		_, err := m.Forward(ids, 0)
		if err == nil || !strings.Contains(err.Error(), "barrier") {
			t.Fatalf("a barrier in divergent control flow was not reported: %v", err)
		}
		t.Logf("reported: %v", err)
	})
}

func hasNaN(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) {
			return true
		}
	}
	return false
}
