package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/loader"
)

func loadBackend(t *testing.T, model string, seqs, ctx, batch int) engine.Backend {
	t.Helper()
	m, err := loader.Load(loader.Spec{Model: model, Backend: "cpu", Workers: 1, Sequences: seqs,
		Plan: compiler.PlanOptions{Ctx: ctx, Batch: batch, KV: "f32"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m.Backend
}

// TestBatcherMatchesAlone runs many greedy requests from concurrent
// callers through a batcher of 3 sessions, with random arrival times,
// prompts that share prefixes with earlier ones (so sessions' caches are
// reused), and cancellations. Each request that finishes must generate
// exactly what a fresh single-sequence session generates for its prompt.
func TestBatcherMatchesAlone(t *testing.T) {
	model, ctx, batch, requests := "", 160, 8, 24
	if raceEnabled {
		model, ctx, batch, requests = "../../testdata/gpt-oss/tiny-random", 64, 4, 16
	}
	bt := engine.NewBatcher(loadBackend(t, model, 3, ctx, batch), engine.BatcherOptions{})
	defer bt.Close()
	alone := loadBackend(t, model, 1, ctx, batch)
	V := int32(alone.Vocab())
	rng := rand.New(rand.NewPCG(3, 14))
	base := [][]int32{{41 % V, 951 % V}, {7, 8, 9, 10, 11, 12}}
	type req struct {
		prompt []int32
		max    int
		cancel bool
		delay  time.Duration
	}
	var reqs []req
	for i := range requests {
		p := slices.Clone(base[i%2])
		for range rng.IntN(3 * batch) {
			p = append(p, rng.Int32N(V))
		}
		reqs = append(reqs, req{prompt: p, max: 1 + rng.IntN(ctx-len(p)), cancel: rng.IntN(5) == 0, delay: time.Duration(rng.IntN(20)) * time.Millisecond})
	}
	got := make([][]int32, len(reqs))
	reused := make([]int, len(reqs))
	var wg sync.WaitGroup
	errs := make(chan error, len(reqs))
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(r.delay)
			c, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := bt.Acquire(c, r.prompt)
			if err != nil {
				errs <- err
				return
			}
			defer bt.Release(s)
			reused[i] = s.Reuse(r.prompt)
			_, err = engine.Generate(c, s, r.prompt[reused[i]:], engine.GenOptions{MaxTokens: r.max}, func(id int32, _ bool) error {
				got[i] = append(got[i], id)
				if r.cancel && len(got[i]) == r.max/2+1 {
					cancel()
				}
				return nil
			})
			if err != nil && !(r.cancel && errors.Is(err, context.Canceled)) {
				errs <- fmt.Errorf("request %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	totalReused := 0
	for i, r := range reqs {
		want := greedy(t, engine.NewSession(alone), r.prompt, r.max)
		if r.cancel {
			want = want[:min(len(want), len(got[i]))]
		}
		if !slices.Equal(got[i], want) {
			t.Fatalf("request %d (%d prompt tokens, %d reused): generated\n%v\nalone\n%v", i, len(r.prompt), reused[i], got[i], want)
		}
		totalReused += reused[i]
	}
	t.Logf("%d requests; %d prompt tokens reused", len(reqs), totalReused)
}

// TestBatcherQueue: beyond the sessions, callers wait in order; beyond
// MaxQueue they fail at once; a waiter whose context ends leaves the
// queue; Release hands the session to the next waiter.
func TestBatcherQueue(t *testing.T) {
	bt := engine.NewBatcher(loadBackend(t, "../../testdata/gpt-oss/tiny-random", 1, 32, 4), engine.BatcherOptions{MaxQueue: 1})
	defer bt.Close()
	s, err := bt.Acquire(context.Background(), []int32{1})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *engine.Session)
	go func() {
		s2, err := bt.Acquire(context.Background(), []int32{2})
		if err != nil {
			t.Error(err)
		}
		got <- s2
	}()
	for bt.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := bt.Acquire(context.Background(), []int32{3}); !errors.Is(err, engine.ErrQueueFull) {
		t.Fatalf("a third caller with a queue of 1: %v, want ErrQueueFull", err)
	}
	bt.Release(s)
	if s2 := <-got; s2 != s {
		t.Fatalf("the waiter got another session")
	}
	c, cancel := context.WithCancel(context.Background())
	go func() {
		for bt.Waiting() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := bt.Acquire(c, []int32{4}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled waiter: %v", err)
	}
	if n := bt.Waiting(); n != 0 {
		t.Fatalf("%d still waiting after the cancelled waiter left", n)
	}
}

// TestBatcherPrefersLongestPrefix: of the free sessions, a prompt gets
// the one whose cache holds the longest resumable prefix of it.
func TestBatcherPrefersLongestPrefix(t *testing.T) {
	bt := engine.NewBatcher(loadBackend(t, "../../testdata/gpt-oss/tiny-random", 3, 64, 4), engine.BatcherOptions{})
	defer bt.Close()
	prompts := [][]int32{{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}, {1, 2, 11, 12}}
	var ss []*engine.Session
	for _, p := range prompts {
		s, err := bt.Acquire(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		greedy(t, s, p, 2)
		ss = append(ss, s)
	}
	for _, s := range ss {
		bt.Release(s)
	}
	s, err := bt.Acquire(context.Background(), []int32{6, 7, 8, 9, 10, 5})
	if err != nil {
		t.Fatal(err)
	}
	defer bt.Release(s)
	if s != ss[1] {
		t.Fatalf("the prompt did not get the session holding its prefix")
	}
	if n := s.Reuse([]int32{6, 7, 8, 9, 10, 5}); n != 5 {
		t.Fatalf("reused %d tokens, want 5", n)
	}
}

// TestBatcherDoesNotWaitForIdleSessions: a step waits for acquired
// sessions to hand in their tokens, but a session that missed one such
// wait (a slow client, a caller between turns) is not waited for again
// until it hands in tokens, so it cannot slow the others' every step.
func TestBatcherDoesNotWaitForIdleSessions(t *testing.T) {
	const gather = 400 * time.Millisecond
	bt := engine.NewBatcher(loadBackend(t, "../../testdata/gpt-oss/tiny-random", 2, 32, 4), engine.BatcherOptions{Gather: gather})
	defer bt.Close()
	idle, err := bt.Acquire(context.Background(), []int32{1})
	if err != nil {
		t.Fatal(err)
	}
	defer bt.Release(idle)
	busy, err := bt.Acquire(context.Background(), []int32{2})
	if err != nil {
		t.Fatal(err)
	}
	defer bt.Release(busy)
	start := time.Now()
	greedy(t, busy, []int32{2, 3}, 8) // a prefill and 7 decode steps
	took := time.Since(start)
	if took < gather*9/10 {
		t.Errorf("the first step did not wait for the idle session (%v)", took)
	}
	if took > 3*gather {
		t.Errorf("8 steps took %v: the steps kept waiting %v for a session that hands in nothing", took, gather)
	}
}
