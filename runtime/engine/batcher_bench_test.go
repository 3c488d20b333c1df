package engine_test

import (
	"cmp"
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/loader"
)

// BenchmarkBatcherStreams is the engine's side of issue 14's benchmark:
// 1, 2, 4, 8 and 16 concurrent greedy generations of 64 tokens (after 16
// random prompt tokens each) through one Batcher of 16 sequences on the
// fortune model, all cores, timed at the engine's token callback (no
// HTTP). The concurrencies take turns over b.N rounds and each reports
// its fastest round: the aggregate decode rate and p50/p95 time to first
// token and inter-token latency.
//
//	go test ./runtime/engine -run '^$' -bench BatcherStreams -benchtime 8x -v
//
// MINERVA_BENCH_MODEL=DIR runs another model (the synthetic gpt-oss-20b
// of docs/benchmarks.md), with MINERVA_BENCH_PROMPT and MINERVA_BENCH_GEN
// tokens per stream, and MINERVA_BENCH_BACKEND another backend (cuda on
// an NVIDIA GPU; cpu by default). MINERVA_BENCH_SPIN sets the CPU
// threads' polling (cpu.Options.Spin: 50us by default, -1ns to sleep at
// once), for the A/B in docs/benchmarks.md.
func BenchmarkBatcherStreams(b *testing.B) {
	const maxStreams = 16
	promptLen, genTokens := envInt(b, "MINERVA_BENCH_PROMPT", 16), envInt(b, "MINERVA_BENCH_GEN", 64)
	var spin time.Duration
	if v := os.Getenv("MINERVA_BENCH_SPIN"); v != "" {
		var err error
		if spin, err = time.ParseDuration(v); err != nil {
			b.Fatalf("MINERVA_BENCH_SPIN=%q: want a duration such as 50us, or -1ns to sleep at once", v)
		}
	}
	m, err := loader.Load(loader.Spec{Model: os.Getenv("MINERVA_BENCH_MODEL"), Backend: cmp.Or(os.Getenv("MINERVA_BENCH_BACKEND"), "cpu"), Sequences: maxStreams, Spin: spin,
		Plan: compiler.PlanOptions{Ctx: promptLen + genTokens + 64, Batch: 128, KV: "f16"}})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	bt := engine.NewBatcher(m.Backend, engine.BatcherOptions{})
	defer bt.Close()
	rng := rand.New(rand.NewPCG(14, 15))
	V := int32(m.Backend.Vocab())
	type result struct {
		rate, perStep, stepMs        float64
		ttft50, ttft95, itl50, itl95 time.Duration
	}
	round := func(c int) result {
		before := bt.Stats()
		start := time.Now()
		ttft := make([]time.Duration, c)
		itls := make([][]time.Duration, c)
		var wg sync.WaitGroup
		for i := range c {
			prompt := make([]int32, promptLen)
			for k := range prompt {
				prompt[k] = rng.Int32N(V)
			}
			wg.Go(func() {
				t0 := time.Now()
				s, err := bt.Acquire(context.Background(), prompt)
				if err != nil {
					b.Error(err)
					return
				}
				defer bt.Release(s)
				s.Reset()
				last := t0
				_, err = engine.Generate(context.Background(), s, prompt, engine.GenOptions{MaxTokens: genTokens}, func(int32, bool) error {
					now := time.Now()
					if ttft[i] == 0 {
						ttft[i] = now.Sub(t0)
					} else {
						itls[i] = append(itls[i], now.Sub(last))
					}
					last = now
					return nil
				})
				if err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		wall := time.Since(start)
		after := bt.Stats()
		itl := slices.Concat(itls...)
		steps := float64(after.Steps - before.Steps)
		return result{float64(c*genTokens) / wall.Seconds(), float64(after.Tokens-before.Tokens) / steps, ms(after.Stepping-before.Stepping) / steps,
			pct(ttft, 50), pct(ttft, 95), pct(itl, 50), pct(itl, 95)}
	}
	levels := []int{1, 2, 4, 8, 16}
	best := map[int]result{}
	for range b.N {
		for _, c := range levels {
			if r := round(c); r.rate > best[c].rate {
				best[c] = r
			}
		}
	}
	b.Logf("%-8s %10s %10s %10s %10s %10s %8s %8s %9s", "streams", "tok/s", "ttft p50", "ttft p95", "itl p50", "itl p95", "vs 1", "tok/step", "ms/step")
	for _, c := range levels {
		r := best[c]
		b.Logf("%-8d %10.1f %8.2fms %8.2fms %8.2fms %8.2fms %7.2fx %8.1f %9.3f", c, r.rate, ms(r.ttft50), ms(r.ttft95), ms(r.itl50), ms(r.itl95), r.rate/best[1].rate, r.perStep, r.stepMs)
	}
	b.ReportMetric(best[8].rate/best[1].rate, "x_8_vs_1")
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
