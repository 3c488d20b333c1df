package engine_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/loader"
)

// TestStepMatchesAlone is the batched backends' conformance test. Tokens
// of several sequences are stepped together, with random arrival times,
// prompt lengths, chunked prefill, follow-up turns and cancellations;
// the sequences run past the sliding-window rings, so every ring must be
// the sequence's own. Then:
//
//   - each token's logits equal those its sequence gets run alone, one
//     token at a time, on a model with one sequence (f32 cache);
//   - each sequence, replayed in the same steps while every other
//     sequence's tokens are replaced by random ones, gets the same
//     logits: nothing of one sequence reaches another.
//
// "Equal" is to within 4e-6 of the row's largest logit, not closer: a
// token alone runs the matrix-vector kernels and a token in a step of
// several the matrix-matrix ones (and the experts take their tokens four
// at a time), which sum in another order. The single-sequence engine's
// own prefill and decode of one sequence differ by as much (1.1e-6 on
// fortune, 1.6e-6 on tiny-random). A token that read another sequence's
// cache, or a wrong position, would be off by orders of magnitude more.
func TestStepMatchesAlone(t *testing.T) {
	type tc struct {
		name, model, backend string
		ctx, batch, seqs     int
		steps                int
	}
	cases := []tc{
		// fortune: window 64, rings of 64 + 16 - 1 = 79 positions.
		{name: "fortune", backend: "cpu", ctx: 200, batch: 16, seqs: 4, steps: 160},
		{name: "tiny-random", model: "../../testdata/gpt-oss/tiny-random", backend: "cpu", ctx: 64, batch: 6, seqs: 3, steps: 150},
	}
	if raceEnabled {
		cases = cases[1:]
	}
	if gpu.CUDAAvailable() {
		// The same kernels translated to CUDA, on an NVIDIA GPU.
		cases = append(cases, tc{name: "fortune", backend: "cuda", ctx: 200, batch: 16, seqs: 4, steps: 160},
			tc{name: "tiny-random", model: "../../testdata/gpt-oss/tiny-random", backend: "cuda", ctx: 64, batch: 6, seqs: 3, steps: 150})
	}
	if _, err := exec.LookPath("g++"); err == nil && !testing.Short() && !raceEnabled {
		// The emitted Metal kernels, run by mslemu: they read each
		// token's sequence and position from StepArgs.
		cases = append(cases, tc{name: "tiny-random", model: "../../testdata/gpt-oss/tiny-random", backend: "mslemu", ctx: 48, batch: 6, seqs: 3, steps: 60})
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/%s", c.name, c.backend), func(t *testing.T) {
			load := func(seqs int) engine.Backend {
				m, err := loader.Load(loader.Spec{Model: c.model, Backend: c.backend, Workers: 1, Sequences: seqs,
					Plan: compiler.PlanOptions{Ctx: c.ctx, Batch: c.batch, KV: "f32"}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(m.Close)
				return m.Backend
			}
			bb, ok := load(c.seqs).(engine.BatchBackend)
			if !ok {
				t.Fatalf("the %s backend does not run batched steps", c.backend)
			}
			if bb.Sequences() != c.seqs {
				t.Fatalf("Sequences() = %d, want %d", bb.Sequences(), c.seqs)
			}
			steps, outs := checkStepMatchesAlone(t, bb, load(1), c.steps, rand.New(rand.NewPCG(14, uint64(c.seqs))))
			checkIsolation(t, bb, steps, outs)
		})
	}
}

// tolerance bounds the batched logits' error relative to the row's largest
// logit (see TestStepMatchesAlone).
const tolerance = 4e-6

// seqState is one sequence slot of the batched model in the test.
type seqState struct {
	// ids are the tokens at positions 0 .. len(ids)-1; todo are the
	// tokens still to run (a prompt's rest, or the next decode token).
	ids, todo []int32
	// got are the batched logits of each position run.
	got    [][]float32
	active bool
}

// checkStepMatchesAlone runs the random schedule and compares with each
// sequence alone. It returns the steps it ran and their logits.
func checkStepMatchesAlone(t *testing.T, bb engine.BatchBackend, alone engine.Backend, steps int, rng *rand.Rand) ([][]engine.Token, [][]float32) {
	var ran [][]engine.Token
	var outs [][]float32
	V, ctx, batch := bb.Vocab(), bb.Ctx(), bb.Batch()
	seqs := make([]seqState, bb.Sequences())
	checked, worst := 0, 0.0
	// check compares a sequence's batched logits with the same tokens run
	// alone, one at a time.
	check := func(s *seqState, why string) {
		if len(s.got) == 0 {
			return
		}
		ses := engine.NewSession(alone)
		want, err := ses.AllLogits(s.ids[:len(s.got)], 0)
		if err != nil {
			t.Fatal(err)
		}
		for p, row := range s.got {
			e := rowErr(row, want[p*V:(p+1)*V])
			if e > tolerance {
				t.Fatalf("%s sequence of %d tokens, position %d: batched logits differ from alone by %.3g of the largest", why, len(s.got), p, e)
			}
			worst = max(worst, e)
		}
		checked += len(s.got)
	}
	for step := 0; step < steps; step++ {
		// Arrivals, follow-up turns and cancellations.
		for i := range seqs {
			s := &seqs[i]
			switch {
			case !s.active && rng.IntN(3) == 0:
				// A new request: from position 0, or a follow-up turn
				// continuing the slot's previous sequence.
				if rng.IntN(2) == 0 || len(s.ids) >= ctx-8 {
					check(s, "finished")
					s.ids, s.got = nil, nil
				}
				n := 1 + rng.IntN(min(3*batch, ctx-len(s.ids)-4))
				s.todo = randomTokens(rng, n, V)
				s.active = true
			case s.active && rng.IntN(40) == 0:
				// Cancelled: the sequence ends where it is; its slot is
				// reused from position 0 by the next request.
				check(s, "cancelled")
				s.ids, s.got, s.todo, s.active = nil, nil, nil, false
			}
		}
		// One step: decodes first, then chunks of prompts, in a random
		// order, at most batch tokens in all.
		var toks []engine.Token
		var who []int
		order := rng.Perm(len(seqs))
		slices.SortStableFunc(order, func(a, b int) int { return len(seqs[a].todo) - len(seqs[b].todo) })
		for _, i := range order {
			s := &seqs[i]
			if !s.active || len(s.todo) == 0 {
				continue
			}
			room := batch - len(toks)
			if room == 0 {
				break
			}
			n := min(len(s.todo), room, 1+rng.IntN(batch))
			for k := range n {
				toks = append(toks, engine.Token{ID: s.todo[k], Seq: i, Pos: len(s.ids) + k})
				who = append(who, i)
			}
			s.ids = append(s.ids, s.todo[:n]...)
			s.todo = s.todo[n:]
		}
		if len(toks) == 0 {
			continue
		}
		out, err := bb.Step(toks)
		if err != nil {
			t.Fatal(err)
		}
		ran = append(ran, toks)
		outs = append(outs, slices.Clone(out))
		for k, i := range who {
			s := &seqs[i]
			s.got = append(s.got, slices.Clone(out[k*V:(k+1)*V]))
		}
		// Each sequence whose prompt has run decodes greedily, until the
		// context is nearly full.
		for i := range seqs {
			s := &seqs[i]
			if !s.active || len(s.todo) > 0 || !slices.Contains(who, i) {
				continue
			}
			if len(s.ids) >= ctx-1 || rng.IntN(30) == 0 {
				s.active = false // finished; its tokens stay for a follow-up
				continue
			}
			s.todo = []int32{engine.Greedy{}.Sample(s.got[len(s.got)-1])}
		}
	}
	for i := range seqs {
		check(&seqs[i], "last")
	}
	if checked < steps {
		t.Fatalf("only %d tokens were checked", checked)
	}
	t.Logf("%d tokens checked; largest relative error %.3g", checked, worst)
	return ran, outs
}

// checkIsolation replays the steps once per sequence, keeping that
// sequence's tokens and replacing every other's with random ones: the
// kept sequence's logits must not change at all.
func checkIsolation(t *testing.T, bb engine.BatchBackend, steps [][]engine.Token, outs [][]float32) {
	V := bb.Vocab()
	rng := rand.New(rand.NewPCG(1, 4))
	worst := 0.0
	defer func() { t.Logf("isolation: largest relative error %.3g", worst) }()
	for keep := range bb.Sequences() {
		for i, st := range steps {
			toks := slices.Clone(st)
			for k := range toks {
				if toks[k].Seq != keep {
					toks[k].ID = rng.Int32N(int32(V))
				}
			}
			out, err := bb.Step(toks)
			if err != nil {
				t.Fatal(err)
			}
			for k, tok := range toks {
				if tok.Seq != keep {
					continue
				}
				if e := rowErr(out[k*V:(k+1)*V], outs[i][k*V:(k+1)*V]); e > tolerance {
					t.Fatalf("step %d: sequence %d at position %d got logits %.3g off when the other sequences held other tokens", i, keep, tok.Pos, e)
				} else {
					worst = max(worst, e)
				}
			}
		}
	}
}

func randomTokens(rng *rand.Rand, n, vocab int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = rng.Int32N(int32(vocab))
	}
	return out
}

// rowErr is the largest difference between two rows of logits relative
// to the largest logit of want (or to 1, when they are all smaller).
func rowErr(got, want []float32) float64 {
	var diff, peak float64
	for i, w := range want {
		diff = max(diff, math.Abs(float64(got[i]-w)))
		peak = max(peak, math.Abs(float64(w)))
	}
	return diff / max(peak, 1)
}
