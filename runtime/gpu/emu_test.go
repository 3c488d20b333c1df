package gpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand"
	"os/exec"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/codegen"
	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// These tests run the emitted Metal on the CPU through mslemu (Metal's
// execution model: threadgroups as fibers, shuffled thread order, poisoned
// threadgroup memory) and compare it with the CPU backend and with
// transformers' reference outputs.

type fixture struct{ name, arch, dir, ref string }

var testModels = []fixture{
	{"tiny-random", "../../models/gpt-oss.arch", "../../testdata/gpt-oss/tiny-random", "../../testdata/gpt-oss/tiny-random"},
	{"fortune", "../../models/gpt-oss.arch", "../../models/fortune", "../../testdata/gpt-oss/fortune"},
	{"llama-tiny", "../../models/llama.arch", "../../testdata/llama/llama-tiny", "../../testdata/llama/llama-tiny"},
	{"mistral-tiny", "../../models/mistral.arch", "../../testdata/families/mistral-tiny", "../../testdata/families/mistral-tiny"},
	{"qwen3-moe-tiny", "../../models/qwen3-moe.arch", "../../testdata/families/qwen3-moe-tiny", "../../testdata/families/qwen3-moe-tiny"},
	{"gemma3-tiny", "../../models/gemma3.arch", "../../testdata/families/gemma3-tiny", "../../testdata/families/gemma3-tiny"},
	{"phi3-tiny", "../../models/phi3.arch", "../../testdata/families/phi3-tiny", "../../testdata/families/phi3-tiny"},
}

func needCompiler(t testing.TB) {
	if _, err := exec.LookPath("g++"); err != nil {
		t.Skip("mslemu needs a C++17 compiler (apt-get install g++); .ci/run installs it")
	}
}

func compileFixture(t testing.TB, fx fixture, po compiler.PlanOptions, disable ...string) (*program.Program, *codegen.Output) {
	t.Helper()
	opts, err := compiler.SourceOptions(fx.arch, fx.dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Plan, opts.Verify, opts.Disable = po, true, disable
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	return program.FromUnit(u), u.Generated
}

func openCheckpoint(t testing.TB, dir string) *weights.Checkpoint {
	t.Helper()
	ck, err := weights.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

func startEmu(t testing.TB, p *program.Program, out *codegen.Output, ck *weights.Checkpoint, seed uint64) *Model {
	t.Helper()
	dev, err := NewEmulator(out, seed)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(p, out, ck, dev)
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// forwardAll prefills half of seq and decodes the rest one token at a time.
func forwardAll(t testing.TB, b interface {
	Forward([]int32, int) ([]float32, error)
}, seq []int32) []float32 {
	t.Helper()
	half := len(seq) / 2
	out, err := b.Forward(seq[:half], 0)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]float32(nil), out...)
	for p := half; p < len(seq); p++ {
		out, err := b.Forward(seq[p:p+1], p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out...)
	}
	return all
}

// TestEmittedMetalMatchesTransformers runs each fixture through the emitted
// Metal, with the default f16 KV cache: a prefill of half the reference
// sequence, then one token at a time, against transformers' logits_full,
// with the greedy choices exact.
func TestEmittedMetalMatchesTransformers(t *testing.T) {
	needCompiler(t)
	for _, fx := range testModels {
		t.Run(fx.name, func(t *testing.T) {
			ref := fixtures.Load(t, fx.ref)
			p, out := compileFixture(t, fx, compiler.PlanOptions{KV: "f16", Ctx: 128, Batch: 32})
			m := startEmu(t, p, out, openCheckpoint(t, fx.dir), 7)
			seq := append(append([]int32(nil), ref.IDs...), ref.Generated...)
			got := forwardAll(t, m, seq)
			e := fixtures.RelErr(got, ref.LogitsFull)
			t.Logf("relative error against transformers: %.2e", e)
			if e > 1e-3 {
				t.Fatalf("relative error %.3e > 1e-3", e)
			}
			for i := len(ref.IDs) - 1; i < len(seq)-1; i++ {
				if g := fixtures.Argmax(got[i*ref.Vocab : (i+1)*ref.Vocab]); int32(g) != seq[i+1] {
					t.Fatalf("greedy token after position %d: %d, transformers %d", i, g, seq[i+1])
				}
			}
		})
	}
}

// TestFamiliesExactThroughMslemu runs the families of models/ that only
// fixtures check (Mistral, Qwen3-MoE, Gemma 3, Phi-3) through the emitted
// Metal with the f32 KV cache, prefill then decode, and holds them to the
// CPU backend's bound against transformers: 1e-4.
func TestFamiliesExactThroughMslemu(t *testing.T) {
	needCompiler(t)
	for _, fx := range testModels[3:] {
		t.Run(fx.name, func(t *testing.T) {
			ref := fixtures.Load(t, fx.ref)
			p, out := compileFixture(t, fx, compiler.PlanOptions{KV: "f32", Ctx: 64, Batch: 32})
			m := startEmu(t, p, out, openCheckpoint(t, fx.dir), 11)
			seq := append(append([]int32(nil), ref.IDs...), ref.Generated...)
			got := forwardAll(t, m, seq)
			e := fixtures.RelErr(got, ref.LogitsFull)
			t.Logf("relative error against transformers (f32 cache): %.2e", e)
			if e > 1e-4 {
				t.Fatalf("relative error %.3e > 1e-4", e)
			}
		})
	}
}

// TestEveryKernelAgainstCPU compares every op's kernel with the CPU
// backend's, op by op, on fresh random inputs: after a random prefill fills
// both KV caches, each op's operands are set to the same random values in
// both arenas, the op runs alone (for one token and for several), and its
// results (and any cache rows it writes) are compared. The unfused
// programs cover the base ops' kernels, the fused ones the fused kernels;
// each KV format is covered.
func TestEveryKernelAgainstCPU(t *testing.T) {
	needCompiler(t)
	// prefix is the number of cached positions the ops see: more than a
	// threadgroup's 128 lanes exercises attention's online-softmax
	// rescaling across positions.
	cases := []struct {
		fx      fixture
		kv      string
		prefix  int
		disable []string
	}{
		{testModels[0], "f16", 6, nil},
		{testModels[0], "q8", 6, []string{"fuse"}},
		{testModels[1], "q4", 6, nil},
		{testModels[1], "f16", 150, nil},
		{testModels[2], "f32", 6, nil},
		{testModels[2], "f16", 6, []string{"fuse"}},
	}
	kinds := map[ir.OpKind]bool{}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-%d%s", c.fx.name, c.kv, c.prefix, strings.Join(c.disable, "")), func(t *testing.T) {
			po := compiler.PlanOptions{KV: c.kv, Ctx: c.prefix + 16, Batch: 8}
			p, out := compileFixture(t, c.fx, po, c.disable...)
			compareOpByOp(t, p, out, openCheckpoint(t, c.fx.dir), c.prefix, kinds)
		})
	}
	// Every fused kind of the registry (the all-ops model covers the base
	// ones), and the ops of the real models' unfused programs.
	want := []ir.OpKind{ir.OpEmbedding, ir.OpAttend, ir.OpLinear, ir.OpRMSNorm, ir.OpRope, ir.OpCacheKV, ir.OpTopK,
		ir.OpSoftmax, ir.OpExpertLinear, ir.OpSwiGLU, ir.OpMix, ir.OpAdd, ir.OpMul, ir.OpSiLU}
	for _, k := range ir.AllOps() {
		if ir.MustLookup(k).Fused {
			want = append(want, k)
		}
	}
	for _, k := range want {
		if !kinds[k] && !t.Failed() {
			t.Errorf("no case exercised a %s kernel", k)
		}
	}
}

// randomizeOperands writes the same random values into both arenas for
// every activation operand of op: normal floats, valid token ids, and
// valid routes (distinct experts, softmax weights).
func randomizeOperands(rng *rand.Rand, p *program.Program, op *ir.Op, cpuArena []float32, gpuArena []byte, seq int) {
	for _, a := range op.Args {
		v := a.V
		if v == nil {
			continue
		}
		s := p.Arena.Slots[v.ID]
		n := int(s.RowBytes/4) * seq
		words := make([]uint32, n)
		switch v.Type.DType {
		case ir.I32:
			for i := range words {
				words[i] = uint32(rng.Intn(p.Vocab()))
			}
		case ir.Route:
			k := int(v.Type.Shape[1])
			experts := expertCount(p)
			for t := 0; t < seq; t++ {
				perm := rng.Perm(experts)
				var sum float64
				ws := make([]float64, k)
				for j := range ws {
					ws[j] = rng.Float64() + 0.1
					sum += ws[j]
				}
				for j := 0; j < k; j++ {
					words[(t*k+j)*2] = uint32(perm[j])
					words[(t*k+j)*2+1] = math.Float32bits(float32(ws[j] / sum))
				}
			}
		default:
			for i := range words {
				words[i] = math.Float32bits(float32(rng.NormFloat64()))
			}
		}
		off := int(s.Offset)
		for i, w := range words {
			cpuArena[off/4+i] = math.Float32frombits(w)
			binary.LittleEndian.PutUint32(gpuArena[off+4*i:], w)
		}
	}
}

func expertCount(p *program.Program) int {
	for _, c := range p.Config {
		if c.Name == "experts" {
			switch v := c.Value.(type) {
			case int64:
				return int(v)
			case float64:
				return int(v)
			}
		}
	}
	return 1
}

func cpuValue(p *program.Program, arena []float32, v *ir.Value, seq int) []uint32 {
	s := p.Arena.Slots[v.ID]
	out := make([]uint32, int(s.RowBytes/4)*seq)
	for i := range out {
		out[i] = math.Float32bits(arena[int(s.Offset)/4+i])
	}
	return out
}

func gpuValue(p *program.Program, arena []byte, v *ir.Value, seq int) []uint32 {
	s := p.Arena.Slots[v.ID]
	out := make([]uint32, int(s.RowBytes/4)*seq)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(arena[int(s.Offset)+4*i:])
	}
	return out
}

// valueErr compares results: routes must choose the same experts (weights
// compared as floats), ids exactly, floats by relative error.
func valueErr(v *ir.Value, got, want []uint32) float64 {
	var g, w []float32
	for i := range want {
		if v.Type.DType == ir.Route && i%2 == 0 || v.Type.DType == ir.I32 {
			if got[i] != want[i] {
				return math.Inf(1)
			}
			continue
		}
		g = append(g, math.Float32frombits(got[i]))
		w = append(w, math.Float32frombits(want[i]))
	}
	if len(w) == 0 {
		return 0
	}
	return fixtures.RelErr(g, w)
}

// relErrBytes compares two KV buffers by decoding f32/f16 values; quantised
// formats are compared byte for byte, allowing a few one-step differences
// of rounding.
func relErrBytes(format string, got, want []byte) float64 {
	switch format {
	case "f32":
		var g, w []float32
		for i := 0; i+4 <= len(want); i += 4 {
			g = append(g, math.Float32frombits(binary.LittleEndian.Uint32(got[i:])))
			w = append(w, math.Float32frombits(binary.LittleEndian.Uint32(want[i:])))
		}
		return relErrSafe(g, w)
	case "f16":
		var g, w []float32
		for i := 0; i+2 <= len(want); i += 2 {
			g = append(g, weights.F16BitsToF32(binary.LittleEndian.Uint16(got[i:])))
			w = append(w, weights.F16BitsToF32(binary.LittleEndian.Uint16(want[i:])))
		}
		return relErrSafe(g, w)
	}
	diff := 0
	for i := range want {
		if got[i] != want[i] {
			diff++
		}
	}
	return float64(diff) / float64(len(want))
}

func relErrSafe(g, w []float32) float64 {
	var num, den float64
	for i := range w {
		if math.IsNaN(float64(w[i])) || math.IsInf(float64(w[i]), 0) {
			continue
		}
		d := float64(g[i]) - float64(w[i])
		num += d * d
		den += float64(w[i]) * float64(w[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// TestBrokenKernelsAreCaught breaks the emitted Metal on purpose and checks
// that the emulator notices: a missing barrier (threads read threadgroup
// memory before it is written: they see the poison, so the logits go wrong)
// and a barrier inside divergent control flow (reported as an error).
func TestBrokenKernelsAreCaught(t *testing.T) {
	needCompiler(t)
	fx := testModels[0]
	p, out := compileFixture(t, fx, compiler.PlanOptions{KV: "f32", Ctx: 64, Batch: 8})
	ck := openCheckpoint(t, fx.dir)
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
	mutate := func(t *testing.T, kernelPrefix, from, to string) *codegen.Output {
		t.Helper()
		start := strings.Index(out.Metal, "kernel void "+kernelPrefix)
		if start < 0 {
			t.Fatalf("no %s kernel in the emitted Metal", kernelPrefix)
		}
		i := strings.Index(out.Metal[start:], from)
		if i < 0 {
			t.Fatalf("the %s kernel has no %q", kernelPrefix, from)
		}
		broken := *out
		broken.Metal = out.Metal[:start+i] + to + out.Metal[start+i+len(from):]
		return &broken
	}
	t.Run("missing barrier", func(t *testing.T) {
		const barrier = "threadgroup_barrier(mem_flags::mem_threadgroup);\n  float qv[D];"
		broken := mutate(t, "attend_", barrier, "float qv[D];")
		m := startEmu(t, p, broken, ck, 3)
		got, err := m.Forward(ids, 0)
		if err == nil && relErrSafe(got, want) < 1e-3 && !hasNaN(got) {
			t.Fatal("a kernel without its barrier gave the right logits: the emulator did not catch it")
		}
	})
	t.Run("divergent barrier", func(t *testing.T) {
		broken := mutate(t, "add_rmsnorm_", "threadgroup_barrier(mem_flags::mem_device);", "if (tid < 16) threadgroup_barrier(mem_flags::mem_device);")
		m := startEmu(t, p, broken, ck, 3)
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

// compareOpByOp fills both backends' caches with a random prefill of
// prefix tokens, then runs every op alone on both with the same fresh
// random operands and compares the results.
func compareOpByOp(t *testing.T, p *program.Program, out *codegen.Output, ck *weights.Checkpoint, prefix int, kinds map[ir.OpKind]bool) {
	compareOpByOpOn(t, startEmu(t, p, out, ck, 11), p, ck, prefix, kinds)
}

// compareOpByOpOn is compareOpByOp on a model already on its device.
func compareOpByOpOn(t *testing.T, g *Model, p *program.Program, ck *weights.Checkpoint, prefix int, kinds map[ir.OpKind]bool) {
	cm, err := cpu.Load(p, ck, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	rng := rand.New(rand.NewSource(3))
	var a, b []float32
	for pos := 0; pos < prefix; pos += 8 {
		chunk := make([]int32, min(8, prefix-pos))
		for i := range chunk {
			chunk[i] = int32(rng.Intn(p.Vocab()))
		}
		la, err := cm.Forward(chunk, pos)
		if err != nil {
			t.Fatal(err)
		}
		a = append([]float32(nil), la...)
		if b, err = g.Forward(chunk, pos); err != nil {
			t.Fatal(err)
		}
	}
	if e := fixtures.RelErr(b, a); e > 1e-4 {
		t.Fatalf("prefill logits: relative error %.3e", e)
	}
	for i, op := range p.Func.Ops {
		kinds[op.Kind] = true
		for _, seq := range []int{1, 3} {
			randomizeOperands(rng, p, op, cm.Arena(), g.Arena(), seq)
			// Both caches hold the prefill; the op writes positions 6.. .
			copy(g.KVBuffer(), cm.KVBuffer())
			cm.RunOp(i, seq, prefix)
			if err := g.RunOp(i, seq, prefix); err != nil {
				t.Fatalf("op %d (%s): %v", i, op.Kind, err)
			}
			for _, r := range op.Results {
				want := cpuValue(p, cm.Arena(), r, seq)
				got := gpuValue(p, g.Arena(), r, seq)
				if e := valueErr(r, got, want); e > 1e-4 || math.IsNaN(e) {
					t.Errorf("op %d (%s, layer %d), seq %d: result %%%d differs from the CPU: relative error %.3e", i, op.Kind, op.Layer, seq, r.ID, e)
				}
			}
			if ir.HasSideEffects(op) { // the KV-cache write
				if e := relErrBytes(string(p.KV.Format), g.KVBuffer(), cm.KVBuffer()); e > 1e-3 {
					t.Errorf("op %d (%s), seq %d: KV cache differs from the CPU's: %.3e", i, op.Kind, seq, e)
				}
			}
		}
	}
}
