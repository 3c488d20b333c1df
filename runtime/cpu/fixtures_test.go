package cpu

import (
	"math"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/fixtures"
)

// loadFixture compiles a reference model and loads it on the CPU with
// opts. (The conformance suite, internal/backendtest, covers what every
// backend must do; these tests cover what only the CPU has: observers and
// bodies.)
func loadFixture(t testing.TB, fx fixtures.Model, po compiler.PlanOptions, opts Options, disable ...string) *Model {
	t.Helper()
	p := fx.Compile(t, po, disable...)
	m, err := Load(p, fx.Checkpoint(t, p), withBenchSpin(t, opts))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// withBenchSpin sets opts.Spin from MINERVA_BENCH_SPIN (a duration; -1ns
// sleeps at once), for the benchmarks' A/B of the threads' polling
// (docs/benchmarks.md).
func withBenchSpin(t testing.TB, opts Options) Options {
	if v := os.Getenv("MINERVA_BENCH_SPIN"); v != "" && opts.Spin == 0 {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("MINERVA_BENCH_SPIN=%q: want a duration such as 50us, or -1ns to sleep at once", v)
		}
		opts.Spin = d
	}
	return opts
}

var exact = compiler.PlanOptions{KV: "f32", Ctx: 256, Batch: 64}

// TestHiddenStates compares every layer's residual stream and the final
// norm with transformers' hidden states.
func TestHiddenStates(t *testing.T) {
	for _, fx := range fixtures.Models {
		t.Run(fx.Name, func(t *testing.T) {
			ref := fx.Reference(t)
			layers := len(ref.Hidden) - 1
			got := make([][]float32, len(ref.Hidden))
			var finalNorm []float32
			inLayers := false
			observe := func(op *ir.Op, res [][]float32) {
				inLayers = inLayers || op.Layer >= 0
				for i, r := range op.Results {
					switch {
					case r.Name == "x" && op.Layer < 0 && !inLayers:
						// The embedding, or its scaled value (Gemma):
						// the last x before the first layer.
						got[0] = append([]float32(nil), res[i]...)
					case r.Name == "x" && op.Layer >= 0 && op.Kind == "add":
						// The last residual add of layer L is hidden.L+1.
						got[op.Layer+1] = append([]float32(nil), res[i]...)
					case op.Kind == "rmsnorm" && op.Layer < 0:
						finalNorm = append([]float32(nil), res[i]...)
					}
				}
			}
			m := loadFixture(t, fx, exact, Options{Observe: observe})
			if _, err := m.Forward(ref.IDs, 0); err != nil {
				t.Fatal(err)
			}
			got[layers] = finalNorm
			for i := range ref.Hidden {
				if got[i] == nil {
					t.Fatalf("hidden.%d was not observed", i)
				}
				e := fixtures.RelErr(got[i], ref.Hidden[i])
				if e > 1e-4 {
					t.Errorf("hidden.%d: relative error %.3e > 1e-4", i, e)
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
	for _, fx := range fixtures.Models {
		t.Run(fx.Name, func(t *testing.T) {
			ref := fx.Reference(t)
			seq := append(append([]int32(nil), ref.IDs...), ref.Generated...)
			run := func(opts Options, disable ...string) []float32 {
				m := loadFixture(t, fx, exact, opts, disable...)
				return fixtures.PrefillThenDecode(t, m, seq, len(seq)/2)
			}
			kernels := run(Options{})
			bodies := run(Options{Observe: func(*ir.Op, [][]float32) {}})
			unfused := run(Options{}, "fuse")
			if e := fixtures.RelErr(kernels, bodies); e > 1e-6 {
				t.Errorf("specialised kernels vs bodies: relative error %.3e", e)
			}
			if e := fixtures.RelErr(kernels, unfused); e > 1e-6 {
				t.Errorf("fused vs unfused program: relative error %.3e", e)
			}
		})
	}
}

// TestQuantizedKVPrompts runs the fortune model's three reference prompts
// with their recorded greedy continuations (teacher-forced) with each
// KV-cache format: is our top token transformers' greedy choice at every
// generated position? How often it is measures the format itself, so the
// reference backend measures it; the conformance suite holds every other
// backend to the CPU's cache bytes and to the reference sequence.
func TestQuantizedKVPrompts(t *testing.T) {
	fx := fixtures.Fortune
	ref := fx.Reference(t)
	V := ref.Vocab
	// q4 aims at 90%; its floor guards against regressions.
	for _, c := range []struct {
		format string
		min    float64
	}{{"f32", 1}, {"f16", 1}, {"q8", 0.95}, {"q4", 0.75}} {
		t.Run(c.format, func(t *testing.T) {
			po := exact
			po.KV = c.format
			m := loadFixture(t, fx, po, Options{})
			agree, total := 0, 0
			for _, pr := range ref.Prompts {
				s := append(append([]int32(nil), pr.PromptIDs...), pr.GreedyIDs...)
				out, err := m.Forward(s[:len(s)-1], 0)
				if err != nil {
					t.Fatal(err)
				}
				for i := len(pr.PromptIDs) - 1; i < len(s)-1; i++ {
					if int32(fixtures.Argmax(out[i*V:(i+1)*V])) == s[i+1] {
						agree++
					}
					total++
				}
			}
			got := float64(agree) / float64(total)
			t.Logf("kv %s: greedy agreement over the prompts %.1f%% (%d/%d)", c.format, 100*got, agree, total)
			if got < c.min {
				t.Errorf("greedy agreement over the prompts %.3f < %g", got, c.min)
			}
		})
	}
}

// TestQuantizedKVGreedy runs the fortune model's three reference prompts
// free-running with a q8 cache. Each continuation must equal transformers'
// greedy one, except that it may leave it at a decision boundary of the
// exact computation: where the two best output logits are within 0.15, or
// where a mixture-of-experts router's k-th and (k+1)-th experts are within
// 0.01, so that any perturbation of the input flips a discrete choice. (The
// fixtures README: look at the gap before blaming rounding.) The exact
// computation is the f32 pipeline, which matches transformers to ~1e-7.
func TestQuantizedKVGreedy(t *testing.T) {
	fx := fixtures.Fortune
	ref := fx.Reference(t)
	po := exact
	po.KV = "q8"
	q8 := loadFixture(t, fx, po, Options{})
	V := ref.Vocab
	for _, pr := range ref.Prompts {
		seq := append([]int32(nil), pr.PromptIDs...)
		out, err := q8.Forward(seq, 0)
		if err != nil {
			t.Fatal(err)
		}
		next := int32(fixtures.Argmax(out[(len(seq)-1)*V:]))
		diverged := -1
		for i, want := range pr.GreedyIDs {
			if next != want {
				diverged = i
				break
			}
			seq = append(seq, next)
			if i == len(pr.GreedyIDs)-1 {
				break
			}
			out, err := q8.Forward(seq[len(seq)-1:], len(seq)-1)
			if err != nil {
				t.Fatal(err)
			}
			next = int32(fixtures.Argmax(out))
		}
		if diverged < 0 {
			continue
		}
		gap, margin := decisionMargins(t, fx, seq)
		t.Logf("q8, %q: leaves the reference at generated token %d; exact top-2 logit gap %.3f, smallest router margin %.4f", pr.Prompt, diverged, gap, margin)
		if gap >= 0.15 && margin >= 0.01 {
			t.Errorf("q8, %q: leaves the reference at generated token %d, which is not a decision boundary (gap %.3f, router margin %.4f)", pr.Prompt, diverged, gap, margin)
		}
	}
}

// decisionMargins runs seq through the f32 pipeline and returns, at its
// last position, the gap between the two best logits and the smallest
// margin between the k-th and (k+1)-th router logits of any layer. The
// router is the linear whose output feeds topk, seen inside the router's
// fused body (observing runs fused ops as their bodies).
func decisionMargins(t *testing.T, fx fixtures.Model, seq []int32) (gap, margin float64) {
	last := len(seq) - 1
	margin = math.Inf(1)
	var pending []float32
	observe := func(op *ir.Op, res [][]float32) {
		switch op.Kind {
		case "linear":
			pending = res[0]
		case "topk":
			k := int(op.Attrs.Int("k"))
			n := int(op.Args[0].V.Type.Shape[1])
			row := append([]float32(nil), pending[last*n:(last+1)*n]...)
			sort.Slice(row, func(a, b int) bool { return row[a] > row[b] })
			margin = math.Min(margin, float64(row[k-1]-row[k]))
		}
	}
	m := loadFixture(t, fx, exact, Options{Observe: observe})
	out, err := m.Forward(seq, 0)
	if err != nil {
		t.Fatal(err)
	}
	row := append([]float32(nil), out[last*m.Vocab():]...)
	sort.Slice(row, func(a, b int) bool { return row[a] > row[b] })
	return float64(row[0] - row[1]), margin
}
