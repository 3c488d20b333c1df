package cpu

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// fixture is one reference model: its directory of checkpoint and config,
// and the outputs Hugging Face transformers computed in float64.
type fixture struct {
	name, arch, dir, refDir string
}

var fixtures = []fixture{
	{"gpt-oss/tiny-random", "../../models/gpt-oss.arch", "../../testdata/gpt-oss/tiny-random", "../../testdata/gpt-oss/tiny-random"},
	{"gpt-oss/fortune", "../../models/gpt-oss.arch", "../../models/fortune", "../../testdata/gpt-oss/fortune"},
	{"llama/llama-tiny", "../../models/llama.arch", "../../testdata/llama/llama-tiny", "../../testdata/llama/llama-tiny"},
}

type reference struct {
	ids        []int32
	logits     []float32 // [T, V]
	hidden     [][]float32
	generated  []int32
	logitsFull []float32 // [T+N, V]
	vocab      int
	prompts    []struct {
		Prompt    string  `json:"prompt"`
		PromptIDs []int32 `json:"prompt_ids"`
		GreedyIDs []int32 `json:"greedy_ids"`
		Text      string  `json:"greedy_text"`
	}
}

func loadReference(t testing.TB, dir string) *reference {
	t.Helper()
	ck, err := weights.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	r := &reference{}
	f32 := func(name string) []float32 {
		tn, ok := ck.Tensor(name)
		if !ok {
			t.Fatalf("reference has no %s", name)
		}
		out := make([]float32, tn.NumElements())
		weights.F32FromBytes(out, tn.Data)
		return out
	}
	i32 := func(name string) []int32 {
		tn, ok := ck.Tensor(name)
		if !ok {
			t.Fatalf("reference has no %s", name)
		}
		out := make([]int32, tn.NumElements())
		for i := range out {
			out[i] = int32(uint32(tn.Data[4*i]) | uint32(tn.Data[4*i+1])<<8 | uint32(tn.Data[4*i+2])<<16 | uint32(tn.Data[4*i+3])<<24)
		}
		return out
	}
	r.ids = i32("input_ids")
	r.logits = f32("logits")
	r.generated = i32("generated_ids")
	r.logitsFull = f32("logits_full")
	r.vocab = len(r.logits) / len(r.ids)
	for i := 0; ; i++ {
		name := "hidden." + itoa(i)
		if _, ok := ck.Tensor(name); !ok {
			break
		}
		r.hidden = append(r.hidden, f32(name))
	}
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Prompts []struct {
			Prompt    string  `json:"prompt"`
			PromptIDs []int32 `json:"prompt_ids"`
			GreedyIDs []int32 `json:"greedy_ids"`
			Text      string  `json:"greedy_text"`
		} `json:"prompts"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	for _, p := range meta.Prompts {
		r.prompts = append(r.prompts, struct {
			Prompt    string  `json:"prompt"`
			PromptIDs []int32 `json:"prompt_ids"`
			GreedyIDs []int32 `json:"greedy_ids"`
			Text      string  `json:"greedy_text"`
		}(p))
	}
	return r
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// relErr is ‖a − b‖ / ‖b‖ in float64.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// compileFixture compiles a fixture's architecture for its config.json.
func compileFixture(t testing.TB, fx fixture, po compiler.PlanOptions, disable ...string) *program.Program {
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
	return program.FromUnit(u)
}

func loadFixture(t testing.TB, fx fixture, po compiler.PlanOptions, opts Options, disable ...string) (*Model, *weights.Checkpoint) {
	t.Helper()
	p := compileFixture(t, fx, po, disable...)
	ck, err := weights.Open(fx.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(ck, fx.arch); err != nil {
		t.Fatal(err)
	}
	m, err := Load(p, ck, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); ck.Close() })
	return m, ck
}

var exact = compiler.PlanOptions{KV: "f32", Ctx: 256, Batch: 64}

// TestPromptLogits: one causal pass over the prompt matches transformers'
// logits at every position.
func TestPromptLogits(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			ref := loadReference(t, fx.refDir)
			m, _ := loadFixture(t, fx, exact, Options{})
			got, err := m.Forward(ref.ids, 0)
			if err != nil {
				t.Fatal(err)
			}
			e := relErr(got, ref.logits)
			t.Logf("relative error of the logits: %.2e", e)
			if e > 1e-4 {
				t.Fatalf("relative error %.3e > 1e-4", e)
			}
		})
	}
}

// TestHiddenStates compares every layer's residual stream and the final
// norm with transformers' hidden states.
func TestHiddenStates(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			ref := loadReference(t, fx.refDir)
			layers := len(ref.hidden) - 1
			got := make([][]float32, len(ref.hidden))
			var finalNorm []float32
			observe := func(op *ir.Op, res [][]float32) {
				for i, r := range op.Results {
					switch {
					case r.Name == "x" && op.Kind == "embedding":
						got[0] = append([]float32(nil), res[i]...)
					case r.Name == "x" && op.Layer >= 0 && op.Kind == "add":
						// The last residual add of layer L is hidden.L+1.
						got[op.Layer+1] = append([]float32(nil), res[i]...)
					case op.Kind == "rmsnorm" && op.Layer < 0:
						finalNorm = append([]float32(nil), res[i]...)
					}
				}
			}
			m, _ := loadFixture(t, fx, exact, Options{Observe: observe})
			if _, err := m.Forward(ref.ids, 0); err != nil {
				t.Fatal(err)
			}
			got[layers] = finalNorm
			for i := range ref.hidden {
				if got[i] == nil {
					t.Fatalf("hidden.%d was not observed", i)
				}
				e := relErr(got[i], ref.hidden[i])
				if e > 1e-4 {
					t.Errorf("hidden.%d: relative error %.3e > 1e-4", i, e)
				}
			}
		})
	}
}

// TestDecodeMatchesFullPass prefills half of prompt+continuation, decodes
// the rest one token at a time through the KV cache, and compares every
// step's logits with transformers' single pass over the whole sequence; the
// greedy choice at each step must be the recorded continuation.
func TestDecodeMatchesFullPass(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			ref := loadReference(t, fx.refDir)
			m, _ := loadFixture(t, fx, exact, Options{})
			seq := append(append([]int32(nil), ref.ids...), ref.generated...)
			V := ref.vocab
			half := len(ref.ids) / 2
			got, err := m.Forward(seq[:half], 0)
			if err != nil {
				t.Fatal(err)
			}
			if e := relErr(got, ref.logitsFull[:half*V]); e > 1e-4 {
				t.Fatalf("prefill: relative error %.3e", e)
			}
			for p := half; p < len(seq); p++ {
				got, err := m.Forward(seq[p:p+1], p)
				if err != nil {
					t.Fatal(err)
				}
				want := ref.logitsFull[p*V : (p+1)*V]
				if e := relErr(got, want); e > 1e-4 {
					t.Fatalf("decode at position %d: relative error %.3e", p, e)
				}
				if p >= len(ref.ids)-1 && p+1 < len(seq) {
					if g := argmax(got); int32(g) != seq[p+1] {
						t.Fatalf("greedy token after position %d: got %d, transformers chose %d", p, g, seq[p+1])
					}
				}
			}
		})
	}
}

// TestFusedKernelsMatchBodies runs each fixture three ways: fused ops on
// their specialised kernels, fused ops run as their bodies (their
// definition), and the unfused program. All must agree far inside the
// tolerance against transformers.
func TestFusedKernelsMatchBodies(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			ref := loadReference(t, fx.refDir)
			seq := append(append([]int32(nil), ref.ids...), ref.generated...)
			run := func(opts Options, disable ...string) []float32 {
				m, _ := loadFixture(t, fx, exact, opts, disable...)
				var all []float32
				half := len(seq) / 2
				out, err := m.Forward(seq[:half], 0)
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, out...)
				for p := half; p < len(seq); p++ {
					out, err := m.Forward(seq[p:p+1], p)
					if err != nil {
						t.Fatal(err)
					}
					all = append(all, out...)
				}
				return all
			}
			kernels := run(Options{})
			bodies := run(Options{Observe: func(*ir.Op, [][]float32) {}})
			unfused := run(Options{}, "fuse")
			if e := relErr(kernels, bodies); e > 1e-6 {
				t.Errorf("specialised kernels vs bodies: relative error %.3e", e)
			}
			if e := relErr(kernels, unfused); e > 1e-6 {
				t.Errorf("fused vs unfused program: relative error %.3e", e)
			}
		})
	}
}
