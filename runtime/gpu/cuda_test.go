package gpu

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/backendtest"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// These tests run the emitted Metal on an NVIDIA GPU through runtime/cuda.
// Without one they skip; docs/gpu.md gives the command that runs them on
// the device (.gpu/correctness.sh builds and carries this test binary).

const cudaSkip = "no CUDA device here; run them on an NVIDIA GPU: go test -c -o gpu.test ./runtime/gpu && ./gpu.test -test.run CUDA -test.v (docs/gpu.md)"

func needCUDA(t testing.TB) {
	t.Helper()
	if !CUDAAvailable() {
		if os.Getenv("MINERVA_REQUIRE_CUDA") == "1" {
			t.Fatal("MINERVA_REQUIRE_CUDA=1 but no CUDA device could be opened")
		}
		t.Skip(cudaSkip)
	}
}

// loadCUDA loads p on the GPU; the caller closes it.
func loadCUDA(t testing.TB, p *program.Program, ck *weights.Checkpoint) *Model {
	t.Helper()
	dev, err := NewCUDA(p.Code)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(p, ck, dev)
	if err != nil {
		dev.Close()
		t.Fatal(err)
	}
	return m
}

func startCUDA(t testing.TB, p *program.Program, ck *weights.Checkpoint) *Model {
	t.Helper()
	m := loadCUDA(t, p, ck)
	t.Cleanup(m.Close)
	return m
}

// TestCUDAConformance runs the backend conformance suite on the GPU.
func TestCUDAConformance(t *testing.T) {
	needCUDA(t)
	backendtest.Run(t, func(t testing.TB, p *program.Program, ck *weights.Checkpoint) engine.Backend {
		return loadCUDA(t, p, ck)
	})
}

// TestCUDAMatchesTransformers runs every fixture model on the GPU, a
// prefill of half the reference sequence and then one token at a time,
// against transformers' logits_full. With the f32 cache the bound is 1e-4;
// with f16 and q8 it is what the CPU backend meets on the same sequence in
// the same format (measured here; f16 at most 1e-3), plus 10%. Greedy
// choices must be transformers' at every generated position with f32 and
// f16, so fortune's greedy text is exact.
func TestCUDAMatchesTransformers(t *testing.T) {
	needCUDA(t)
	for _, fx := range fixtures.Models {
		for _, kv := range []string{"f32", "f16", "q8"} {
			t.Run(fx.Name+"-"+kv, func(t *testing.T) {
				ref := fx.Reference(t)
				p := fx.Compile(t, compiler.PlanOptions{KV: kv, Ctx: 128, Batch: 32})
				ck := fx.Checkpoint(t, p)
				m := startCUDA(t, p, ck)
				seq := append(append([]int32(nil), ref.IDs...), ref.Generated...)
				got := fixtures.PrefillThenDecode(t, m, seq, len(seq)/2)
				e := fixtures.RelErr(got, ref.LogitsFull)
				bound := 1e-4
				if kv != "f32" {
					cm, err := cpu.Load(p, ck, cpu.Options{})
					if err != nil {
						t.Fatal(err)
					}
					defer cm.Close()
					want := fixtures.PrefillThenDecode(t, cm, seq, len(seq)/2)
					eCPU := fixtures.RelErr(want, ref.LogitsFull)
					bound = 1.1 * eCPU
					if kv == "f16" {
						bound = min(bound, 1e-3)
					}
					t.Logf("%s, %s cache: the CPU backend's error against transformers %.2e; GPU against CPU %.2e", fx.Name, kv, eCPU, fixtures.RelErr(got, want))
				}
				t.Logf("%s, %s cache: relative error against transformers %.2e (bound %.2e)", fx.Name, kv, e, bound)
				if e > bound || math.IsNaN(e) {
					t.Fatalf("relative error %.3e > %.3e", e, bound)
				}
				if kv == "q8" {
					return
				}
				for i := len(ref.IDs) - 1; i < len(seq)-1; i++ {
					if g := fixtures.Argmax(got[i*ref.Vocab : (i+1)*ref.Vocab]); int32(g) != seq[i+1] {
						t.Fatalf("greedy token after position %d: %d, transformers %d", i, g, seq[i+1])
					}
				}
			})
		}
	}
}

// TestCUDAEveryKernelAgainstCPU compares every kernel of the fixture
// models with the CPU's on the GPU, op by op (backendtest.CompareOpByOp).
func TestCUDAEveryKernelAgainstCPU(t *testing.T) {
	needCUDA(t)
	cases := []struct {
		fx      fixtures.Model
		kv      string
		prefix  int
		disable []string
	}{
		{fixtures.TinyRandom, "f16", 6, nil},
		{fixtures.TinyRandom, "q8", 6, []string{"fuse"}},
		{fixtures.Fortune, "q4", 6, nil},
		{fixtures.Fortune, "f16", 150, nil},
		{fixtures.LlamaTiny, "f32", 6, nil},
		{fixtures.LlamaTiny, "f16", 6, []string{"fuse"}},
	}
	kinds := map[ir.OpKind]bool{}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-%d%s", c.fx.Name, c.kv, c.prefix, strings.Join(c.disable, "")), func(t *testing.T) {
			po := compiler.PlanOptions{KV: c.kv, Ctx: c.prefix + 16, Batch: 8}
			p := c.fx.Compile(t, po, c.disable...)
			ck := c.fx.Checkpoint(t, p)
			backendtest.CompareOpByOp(t, startCUDA(t, p, ck), p, ck, c.prefix, kinds)
		})
	}
}

// TestCUDAEveryOpAgainstCPU compares the all-ops model (fused and
// unfused) with the CPU on the GPU, op by op.
func TestCUDAEveryOpAgainstCPU(t *testing.T) {
	needCUDA(t)
	for _, disable := range [][]string{nil, {"fuse"}} {
		t.Run(fmt.Sprint("disable=", disable), func(t *testing.T) {
			p := fixtures.CompileArch(t, fixtures.Path(t, backendtest.AllOpsArch), "", compiler.PlanOptions{KV: "f32", Ctx: 48, Batch: 8}, disable...)
			ck := fixtures.OpenCheckpoint(t, backendtest.WriteRandomCheckpoint(t, p, 9), p)
			backendtest.CompareOpByOp(t, startCUDA(t, p, ck), p, ck, 20, map[ir.OpKind]bool{})
		})
	}
}

// TestCUDAFortuneGreedy generates from each of fortune's reference prompts,
// greedily, token by token through the KV cache (default f16 format), and
// requires transformers' greedy continuation exactly.
func TestCUDAFortuneGreedy(t *testing.T) {
	needCUDA(t)
	fx := fixtures.Fortune
	ref := fx.Reference(t)
	if len(ref.Prompts) == 0 {
		t.Fatal("fortune's reference has no prompts")
	}
	p := fx.Compile(t, compiler.PlanOptions{KV: "f16", Ctx: 128, Batch: 32})
	m := startCUDA(t, p, fx.Checkpoint(t, p))
	for _, pr := range ref.Prompts {
		logits, err := m.Forward(pr.PromptIDs, 0)
		if err != nil {
			t.Fatal(err)
		}
		V := ref.Vocab
		last := logits[(len(pr.PromptIDs)-1)*V : len(pr.PromptIDs)*V]
		var got []int32
		for len(got) < len(pr.GreedyIDs) {
			next := int32(fixtures.Argmax(last))
			got = append(got, next)
			if logits, err = m.Forward([]int32{next}, len(pr.PromptIDs)+len(got)-1); err != nil {
				t.Fatal(err)
			}
			last = logits[:V]
		}
		if fmt.Sprint(got) != fmt.Sprint(pr.GreedyIDs) {
			t.Errorf("%q: greedy ids %v, transformers %v", pr.Prompt, got, pr.GreedyIDs)
		} else {
			t.Logf("%q: %d greedy tokens equal transformers'", pr.Prompt, len(got))
		}
	}
}

// TestCUDAGraphReplayMatchesLaunches decodes fortune's first reference
// prompt twice: with a CUDA graph per call size, recorded at the first
// step and replayed at every later one, and launch by launch
// (MINERVA_CUDA_GRAPHS=0). A replay must read each step's arguments
// (positions, token count) anew, so the logits must be the same bits at
// every step; a graph that replayed the recorded step's arguments would
// attend at the wrong positions and differ.
func TestCUDAGraphReplayMatchesLaunches(t *testing.T) {
	needCUDA(t)
	fx := fixtures.Fortune
	ref := fx.Reference(t)
	p := fx.Compile(t, compiler.PlanOptions{KV: "f32", Ctx: 128, Batch: 32})
	ck := fx.Checkpoint(t, p)
	prompt := ref.Prompts[0].PromptIDs
	decode := func() [][]float32 {
		m := loadCUDA(t, p, ck)
		defer m.Close()
		var out [][]float32
		logits, err := m.Forward(prompt, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]float32(nil), logits...))
		next := int32(fixtures.Argmax(logits[(len(prompt)-1)*p.Vocab():]))
		for i := 0; i < 12; i++ {
			if logits, err = m.Forward([]int32{next}, len(prompt)+i); err != nil {
				t.Fatal(err)
			}
			out = append(out, append([]float32(nil), logits...))
			next = int32(fixtures.Argmax(logits))
		}
		return out
	}
	graphs := decode()
	t.Setenv("MINERVA_CUDA_GRAPHS", "0")
	launches := decode()
	for i := range graphs {
		for j := range graphs[i] {
			if math.Float32bits(graphs[i][j]) != math.Float32bits(launches[i][j]) {
				t.Fatalf("step %d, logit %d: %v replayed from a graph, %v launched one by one", i, j, graphs[i][j], launches[i][j])
			}
		}
	}
	t.Logf("%d steps (a prefill, then decode) give the same logits from graphs as launch by launch", len(graphs))
}
