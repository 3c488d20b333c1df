package cpu

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/runtime/engine"
)

// The fortune benchmarks report tokens per second for a 64-token prefill
// and for decoding one token after it, on all cores and on one, so each
// run gives its own single-thread baseline. docs/benchmarks.md has the
// figures.
func benchFortune(b *testing.B, workers int, decode bool) {
	m := loadFixture(b, fixtures.Fortune, compiler.PlanOptions{Ctx: 512, Batch: 64}, Options{Workers: workers})
	prompt := make([]int32, 64)
	for i := range prompt {
		prompt[i] = int32(100 + i)
	}
	if _, err := m.Forward(prompt, 0); err != nil {
		b.Fatal(err)
	}
	one := []int32{42}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if decode {
			_, err = m.Forward(one, 64)
		} else {
			_, err = m.Forward(prompt, 0)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	tokens := 1
	if !decode {
		tokens = len(prompt)
	}
	b.ReportMetric(float64(tokens*b.N)/b.Elapsed().Seconds(), "tok/s")
}

func BenchmarkFortunePrefill(b *testing.B)        { benchFortune(b, runtime.GOMAXPROCS(0), false) }
func BenchmarkFortunePrefill1Thread(b *testing.B) { benchFortune(b, 1, false) }
func BenchmarkFortuneDecode(b *testing.B)         { benchFortune(b, runtime.GOMAXPROCS(0), true) }
func BenchmarkFortuneDecode1Thread(b *testing.B)  { benchFortune(b, 1, true) }

// TestDecodeAllocatesNothing: a decode step in steady state allocates no
// memory.
func TestDecodeAllocatesNothing(t *testing.T) {
	for _, fx := range fixtures.Models {
		m := loadFixture(t, fx, compiler.PlanOptions{Ctx: 512, Batch: 64}, Options{})
		if _, err := m.Forward([]int32{1, 2, 3}, 0); err != nil {
			t.Fatal(err)
		}
		one := []int32{4}
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := m.Forward(one, 3); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %.1f allocations per decoded token", fx.Name, allocs)
		}
	}
}

// BenchmarkFortuneStep decodes one token in each of N sequences in one
// batched step (engine.BatchBackend), each sequence 64 tokens in: the
// decode step of continuous batching. tok/s over N=1 is the batching gain
// of the kernels alone.
func BenchmarkFortuneStep(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("seqs=%d", n), func(b *testing.B) {
			m := loadFixture(b, fixtures.Fortune, compiler.PlanOptions{Ctx: 512, Batch: 64}, Options{Sequences: n})
			// Every sequence has its own prompt and next token, so the
			// tokens route to different experts as a server's would (the
			// same prompt everywhere sends every token to the same two).
			var step []engine.Token
			for s := range n {
				var toks []engine.Token
				for i := range 64 {
					toks = append(toks, engine.Token{ID: int32(100 + 37*s + 13*i), Seq: s, Pos: i})
				}
				if _, err := m.Step(toks); err != nil {
					b.Fatal(err)
				}
				step = append(step, engine.Token{ID: int32(42 + 101*s), Seq: s, Pos: 64})
			}
			b.ResetTimer()
			for range b.N {
				if _, err := m.Step(step); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// TestStepAllocatesNothing: a batched decode step over several sequences
// in steady state allocates no memory either.
func TestStepAllocatesNothing(t *testing.T) {
	m := loadFixture(t, fixtures.Fortune, compiler.PlanOptions{Ctx: 64, Batch: 8}, Options{Sequences: 3})
	step := []engine.Token{{ID: 1, Seq: 0, Pos: 0}, {ID: 2, Seq: 1, Pos: 0}, {ID: 3, Seq: 2, Pos: 0}, {ID: 4, Seq: 2, Pos: 1}}
	if _, err := m.Step(step); err != nil {
		t.Fatal(err)
	}
	next := []engine.Token{{ID: 5, Seq: 0, Pos: 1}, {ID: 6, Seq: 1, Pos: 1}, {ID: 7, Seq: 2, Pos: 2}}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := m.Step(next); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batched step", allocs)
	}
}
