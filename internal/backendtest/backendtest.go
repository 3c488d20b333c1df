// Package backendtest is the conformance suite every backend runs, as
// wazero's engines run one spec suite: a backend's test calls
//
//	backendtest.Run(t, func(t testing.TB, p *program.Program, ck *weights.Checkpoint) engine.Backend { ... })
//
// and the suite compiles the reference models, loads each on the backend
// and checks it against transformers' float64 outputs and, op by op,
// against the CPU backend (the reference implementation of every op):
//
//   - prompt: one call over each fixture's prompt against its logits;
//   - decode: a prefill of half of prompt+continuation, then one token at a
//     time through the KV cache (f32 and the default f16), against
//     logits_full, with transformers' greedy choices;
//   - kv: the fortune model with every KV-cache format, within the bounds
//     the CPU backend meets (relative error and top-1 agreement against
//     transformers);
//   - allops: testdata/allops.arch (every op of the language) with random
//     weights, fused and unfused, against the CPU running the unfused
//     program;
//   - ops: for backends that run single ops (OpRunner), every op of the
//     fixtures and of allops.arch alone on fresh random operands, against
//     the CPU's kernel, results and KV cache alike.
//
// Every part compiles with Plan, so a backend that builds per program
// (mslemu compiles kernels.metal with g++) builds as few as it can.
package backendtest

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// NewBackend loads a compiled program (its Code included) with a
// checkpoint that the program validated, on the backend under test. It
// fails the test when the backend cannot load. The suite closes it.
type NewBackend func(t testing.TB, p *program.Program, ck *weights.Checkpoint) engine.Backend

// OpRunner is what op-by-op comparison needs: a backend that implements
// it is compared with the CPU kernel by kernel. Arena and KVBuffer are
// the backend's memory, laid out as the program's plans say (the host
// must see it: unified memory).
type OpRunner interface {
	// RunOp runs op i alone on seq tokens at position pos.
	RunOp(i, seq, pos int) error
	Arena() []byte
	KVBuffer() []byte
}

// Plan is the run-time shape every part of the suite compiles for, with
// the KV-cache format kv: a batch that takes the longest fixture prompt
// in one call and a context for 150 cached positions and more.
func Plan(kv string) compiler.PlanOptions {
	return compiler.PlanOptions{KV: kv, Ctx: 192, Batch: 64}
}

// AllOpsArch is the all-ops model, relative to the module's root.
const AllOpsArch = "internal/backendtest/testdata/allops.arch"

// Bounds, as the CPU backend meets them (runtime/cpu's tests of the same
// name ran with them before this suite existed).
const (
	// exactErr bounds the relative error of an f32 pipeline against
	// transformers' float64 outputs.
	exactErr = 1e-4
	// cpuErr bounds a backend against the CPU on the same program.
	cpuErr = 1e-4
)

// kvLimits bound each KV-cache format on the fortune model over its
// reference sequence: relative error of the logits and top-1 agreement
// with transformers. q4 aims at 90% top-1; its floor guards against
// regressions. (How well a format keeps greedy decoding over long prompts
// is a property of the format, which the CPU's tests measure; every other
// backend's cache writes are held to the CPU's byte for byte by the ops
// part.)
var kvLimits = []struct {
	format    string
	rel, top1 float64
}{
	{"f32", 1e-4, 1},
	{"f16", 1e-3, 1},
	{"q8", 2e-2, 0.95},
	{"q4", 0.2, 0.75},
}

// suite holds what the parts share: each program is compiled once.
type suite struct {
	newBackend NewBackend
	programs   map[string]*program.Program
}

// Run runs the conformance suite on a backend.
func Run(t *testing.T, newBackend NewBackend) {
	s := &suite{newBackend: newBackend, programs: map[string]*program.Program{}}
	t.Run("prompt", s.prompt)
	t.Run("decode", s.decode)
	t.Run("kv", s.kvFormats)
	t.Run("allops", s.allOps)
	t.Run("ops", s.ops)
}

// program compiles a fixture once per suite.
func (s *suite) program(t testing.TB, fx fixtures.Model, kv string, disable ...string) *program.Program {
	t.Helper()
	return s.programPlan(t, fx, Plan(kv), disable...)
}

// programPlan compiles a fixture for a plan once per suite.
func (s *suite) programPlan(t testing.TB, fx fixtures.Model, plan compiler.PlanOptions, disable ...string) *program.Program {
	t.Helper()
	key := fmt.Sprint(fx.Name, plan, disable)
	if p, ok := s.programs[key]; ok {
		return p
	}
	p := fx.Compile(t, plan, disable...)
	s.programs[key] = p
	return p
}

// load starts the backend under test; the suite closes it.
func (s *suite) load(t testing.TB, p *program.Program, ck *weights.Checkpoint) engine.Backend {
	t.Helper()
	b := s.newBackend(t, p, ck)
	t.Cleanup(b.Close)
	if b.Batch() != int(p.Arena.Batch) || b.Ctx() != int(p.KV.Ctx) || b.Vocab() != p.Vocab() {
		t.Fatalf("the backend reports batch %d, ctx %d, vocab %d; the program has %d, %d, %d",
			b.Batch(), b.Ctx(), b.Vocab(), p.Arena.Batch, p.KV.Ctx, p.Vocab())
	}
	return b
}

// prompt: one causal call over each fixture's prompt matches
// transformers' logits at every position.
func (s *suite) prompt(t *testing.T) {
	for _, fx := range fixtures.Models {
		t.Run(fx.Name, func(t *testing.T) {
			ref := fx.Reference(t)
			p := s.program(t, fx, "f32")
			b := s.load(t, p, fx.Checkpoint(t, p))
			got, err := b.Forward(ref.IDs, 0)
			if err != nil {
				t.Fatal(err)
			}
			e := fixtures.RelErr(got, ref.Logits)
			t.Logf("relative error of the prompt's logits: %.2e", e)
			if e > exactErr {
				t.Fatalf("relative error %.3e > %g", e, exactErr)
			}
		})
	}
}

// decode prefills half of prompt+continuation, decodes the rest one token
// at a time through the KV cache, and compares the logits with
// transformers' single pass over the whole sequence: with the f32 cache
// every step within exactErr, with the default f16 cache the whole
// sequence within 1e-3 (the CPU's bounds). The greedy choice at each
// generated position must be the recorded continuation.
func (s *suite) decode(t *testing.T) {
	for _, c := range []struct {
		kv      string
		bound   float64
		perStep bool
	}{{"f32", exactErr, true}, {"f16", 1e-3, false}} {
		for _, fx := range fixtures.Models {
			t.Run(c.kv+"/"+fx.Name, func(t *testing.T) {
				ref := fx.Reference(t)
				p := s.program(t, fx, c.kv)
				b := s.load(t, p, fx.Checkpoint(t, p))
				seq, V := ref.Sequence(), ref.Vocab
				half := len(ref.IDs) / 2
				all := fixtures.PrefillThenDecode(t, b, seq, half)
				worst := 0.0
				for pos := half; pos < len(seq); pos++ {
					got, want := all[pos*V:(pos+1)*V], ref.LogitsFull[pos*V:(pos+1)*V]
					e := fixtures.RelErr(got, want)
					worst = math.Max(worst, e)
					if c.perStep && e > c.bound {
						t.Fatalf("decode at position %d: relative error %.3e > %g", pos, e, c.bound)
					}
					if pos >= len(ref.IDs)-1 && pos+1 < len(seq) {
						if g := fixtures.Argmax(got); int32(g) != seq[pos+1] {
							t.Fatalf("greedy token after position %d: got %d, transformers chose %d", pos, g, seq[pos+1])
						}
					}
				}
				whole := fixtures.RelErr(all, ref.LogitsFull)
				if e := fixtures.RelErr(all[:half*V], ref.LogitsFull[:half*V]); c.perStep && e > c.bound {
					t.Fatalf("prefill: relative error %.3e > %g", e, c.bound)
				}
				if whole > c.bound {
					t.Fatalf("relative error over the sequence %.3e > %g", whole, c.bound)
				}
				t.Logf("relative error over the sequence %.2e, of the worst decode step %.2e", whole, worst)
			})
		}
	}
}

// kvFormats runs the fortune reference sequence (a prefill of half, then
// one token at a time) with each KV-cache format against transformers'
// logits_full: relative error, top-1 agreement and the mean KL divergence
// (logged).
func (s *suite) kvFormats(t *testing.T) {
	fx := fixtures.Fortune
	ref := fx.Reference(t)
	seq, V := ref.Sequence(), ref.Vocab
	for _, lim := range kvLimits {
		t.Run(lim.format, func(t *testing.T) {
			p := s.program(t, fx, lim.format)
			b := s.load(t, p, fx.Checkpoint(t, p))
			got := fixtures.PrefillThenDecode(t, b, seq, len(seq)/2)
			rel := fixtures.RelErr(got, ref.LogitsFull)
			agree, kl := 0, 0.0
			for pos := range seq {
				g, w := got[pos*V:(pos+1)*V], ref.LogitsFull[pos*V:(pos+1)*V]
				if fixtures.Argmax(g) == fixtures.Argmax(w) {
					agree++
				}
				kl += KLDivergence(w, g)
			}
			top1 := float64(agree) / float64(len(seq))
			t.Logf("kv %s: relative error %.2e, top-1 agreement %.1f%% (%d/%d), mean KL %.2e nats",
				lim.format, rel, 100*top1, agree, len(seq), kl/float64(len(seq)))
			if rel > lim.rel {
				t.Errorf("relative error %.3e > %g", rel, lim.rel)
			}
			if top1 < lim.top1 {
				t.Errorf("top-1 agreement %.3f < %g", top1, lim.top1)
			}
		})
	}
}

// allOpsPrograms compiles allops.arch fused and unfused and writes one
// random checkpoint that both read.
func (s *suite) allOpsPrograms(t *testing.T) (fused, unfused *program.Program, ck *weights.Checkpoint) {
	t.Helper()
	arch := fixtures.Path(t, AllOpsArch)
	if p, ok := s.programs["allops"]; ok {
		fused, unfused = p, s.programs["allops-unfused"]
	} else {
		fused = fixtures.CompileArch(t, arch, "", Plan("f32"))
		unfused = fixtures.CompileArch(t, arch, "", Plan("f32"), "fuse")
		s.programs["allops"], s.programs["allops-unfused"] = fused, unfused
	}
	dir := WriteRandomCheckpoint(t, unfused, 9)
	return fused, unfused, fixtures.OpenCheckpoint(t, dir, unfused)
}

// allOps runs the all-ops model, fused and unfused, on the backend and
// compares every position's logits with the CPU running the unfused
// program (each op by its own kernel: the ops' definition).
func (s *suite) allOps(t *testing.T) {
	fused, unfused, ck := s.allOpsPrograms(t)
	seq := randomTokens(24, unfused.Vocab(), 5)
	ref, err := cpu.Load(unfused, ck, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want := fixtures.PrefillThenDecode(t, ref, seq, len(seq)/2)
	for _, c := range []struct {
		name string
		p    *program.Program
	}{{"fused", fused}, {"unfused", unfused}} {
		t.Run(c.name, func(t *testing.T) {
			b := s.load(t, c.p, ck)
			got := fixtures.PrefillThenDecode(t, b, seq, len(seq)/2)
			e := fixtures.RelErr(got, want)
			t.Logf("relative error against the CPU: %.2e", e)
			if e > cpuErr || math.IsNaN(e) {
				t.Fatalf("relative error against the CPU %.3e > %g", e, cpuErr)
			}
		})
	}
}

// ops compares every op's kernel with the CPU's, op by op, for backends
// that run single ops. The cases cover every KV format, fused and unfused
// programs, (fortune, 150 positions) more cached positions than a
// threadgroup has lanes, which exercises attention's online-softmax
// rescaling, and (tiny-random at 2100 positions, in a context of 2304)
// decode attention split over many threadgroups per head (18 on its full
// layers) with chunks that do not divide the positions. Every op kind a
// backend can be given must be exercised.
func (s *suite) ops(t *testing.T) {
	probe := s.program(t, fixtures.TinyRandom, "f32")
	if _, ok := s.load(t, probe, fixtures.TinyRandom.Checkpoint(t, probe)).(OpRunner); !ok {
		t.Skip("the backend does not run single ops (OpRunner); the CPU is the reference")
	}
	cases := []struct {
		fx      fixtures.Model
		kv      string
		prefix  int
		disable []string
		// ctx, when set, is the plan's context instead of Plan's.
		ctx int
	}{
		{fixtures.TinyRandom, "f32", 6, nil, 0},
		{fixtures.TinyRandom, "q8", 6, []string{"fuse"}, 0},
		{fixtures.Fortune, "q4", 6, nil, 0},
		{fixtures.Fortune, "f16", 150, nil, 0},
		{fixtures.LlamaTiny, "f32", 6, nil, 0},
		{fixtures.LlamaTiny, "f16", 6, []string{"fuse"}, 0},
		{fixtures.TinyRandom, "f16", 2100, nil, 2304},
	}
	seen := map[ir.OpKind]bool{}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s-%s-%d%s", c.fx.Name, c.kv, c.prefix, strings.Join(c.disable, "")), func(t *testing.T) {
			plan := Plan(c.kv)
			if c.ctx != 0 {
				plan.Ctx = c.ctx
			}
			p := s.programPlan(t, c.fx, plan, c.disable...)
			s.compareOpByOp(t, p, c.fx.Checkpoint(t, p), c.prefix, seen)
		})
	}
	t.Run("allops", func(t *testing.T) {
		fused, unfused, ck := s.allOpsPrograms(t)
		for _, p := range []*program.Program{fused, unfused} {
			s.compareOpByOp(t, p, ck, 20, seen)
		}
	})
	// Decode attention split over positions with 8 query heads a KV head,
	// as gpt-oss-20b has and no fixture does (they have 2): allops.arch
	// with heads=8 in a context of 576 (4 splits), 300 positions cached.
	// Kernels that share a KV head's rows between its query heads run
	// here.
	t.Run("allops-gqa8-300", func(t *testing.T) {
		plan := Plan("f16")
		plan.Ctx = 576
		p := fixtures.CompileArchSets(t, fixtures.Path(t, AllOpsArch), "", []string{"heads=8"}, plan)
		ck := fixtures.OpenCheckpoint(t, WriteRandomCheckpoint(t, p, 11), p)
		s.compareOpByOp(t, p, ck, 300, seen)
	})
	if t.Failed() {
		return
	}
	// allops.arch, unfused, has every base op a backend can be given; the
	// fixtures' and allops.arch's fused programs have every fused op.
	_, unfused, _ := s.allOpsPrograms(t)
	inAllOps := map[ir.OpKind]bool{}
	for _, op := range unfused.Func.Ops {
		inAllOps[op.Kind] = true
	}
	for _, k := range RunnableOps() {
		switch {
		case !ir.MustLookup(k).Fused && !inAllOps[k]:
			t.Errorf("%s has no %s op: add one, so that its kernels are compared", AllOpsArch, k)
		case !seen[k]:
			t.Errorf("no program of the suite has a %s op, so its kernel is never compared", k)
		}
	}
}

// prefillChunk is the most tokens the suite gives one call when it fills
// a long prefix, so that several calls exercise prefill at positions past
// zero.
const prefillChunk = 16

// forwardChunked runs seq from position 0 in calls of at most chunk
// tokens and returns every position's logits.
func forwardChunked(t testing.TB, b fixtures.Forwarder, seq []int32, chunk int) []float32 {
	t.Helper()
	var all []float32
	for pos := 0; pos < len(seq); pos += chunk {
		out, err := b.Forward(seq[pos:min(pos+chunk, len(seq))], pos)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out...)
	}
	return all
}

// randomTokens is n token ids below vocab.
func randomTokens(n, vocab int, seed uint64) []int32 {
	out := make([]int32, n)
	x := seed
	for i := range out {
		x = x*6364136223846793005 + 1442695040888963407
		out[i] = int32((x >> 33) % uint64(vocab))
	}
	return out
}

// KLDivergence is KL(softmax(p) || softmax(q)) in nats.
func KLDivergence(p, q []float32) float64 {
	lp, lq := logSoftmax(p), logSoftmax(q)
	var kl float64
	for i := range lp {
		kl += math.Exp(lp[i]) * (lp[i] - lq[i])
	}
	return kl
}

func logSoftmax(x []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - mx)
	}
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v) - mx - math.Log(sum)
	}
	return out
}
