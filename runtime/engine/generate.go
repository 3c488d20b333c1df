package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sampler picks the next token from logits.
type Sampler interface {
	Sample(logits []float32) int32
}

// Greedy picks the most likely token; ties go to the lower id.
type Greedy struct{}

// Sample implements Sampler.
func (Greedy) Sample(logits []float32) int32 {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return int32(best)
}

// GenOptions control a generation.
type GenOptions struct {
	MaxTokens int
	// Stop ends generation when one of these ids is produced; the stop
	// token is reported to the callback and not counted as text.
	Stop    map[int32]bool
	Sampler Sampler
}

// Stats are the timings of one generation.
type Stats struct {
	PromptTokens    int
	GeneratedTokens int
	Prefill         time.Duration
	Decode          time.Duration
	// StoppedBy is "stop", "length", "context" or "cancelled".
	StoppedBy string
}

// PrefillRate is prompt tokens per second.
func (s Stats) PrefillRate() float64 { return rate(s.PromptTokens, s.Prefill) }

// DecodeRate is generated tokens per second, over the decode steps (the
// first generated token comes from the prefill).
func (s Stats) DecodeRate() float64 { return rate(s.GeneratedTokens-1, s.Decode) }

func rate(n int, d time.Duration) float64 {
	if n <= 0 || d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ErrStopGeneration, returned by Generate's callback, ends generation
// normally (a stop string was seen); Generate then returns no error.
var ErrStopGeneration = errors.New("stop generation")

// Generate runs the prompt after the session's current position, then
// samples up to MaxTokens tokens, calling onToken for each (stop tokens
// included, with stop=true). It returns when a stop token is produced, the
// limit is reached, ctx is cancelled or onToken returns an error.
func Generate(ctx context.Context, s *Session, prompt []int32, opts GenOptions, onToken func(id int32, stop bool) error) (Stats, error) {
	st := Stats{PromptTokens: len(prompt)}
	if opts.Sampler == nil {
		opts.Sampler = Greedy{}
	}
	s.ctx = ctx
	defer func() { s.ctx = nil }()
	if s.pos+len(prompt) > s.b.Ctx() {
		return st, fmt.Errorf("%w: the prompt has %d tokens (after %d already in the sequence) but the context holds %d; use a larger --ctx",
			ErrContextFull, len(prompt), s.pos, s.b.Ctx())
	}
	// Generation stops at the end of the context, as llama.cpp does; the
	// last sampled token needs no position of its own.
	room := s.b.Ctx() - s.pos - len(prompt) + 1
	limitedByContext := opts.MaxTokens > room
	if limitedByContext {
		opts.MaxTokens = room
	}
	t0 := time.Now()
	start := s.pos
	logits, err := s.Prefill(prompt)
	st.Prefill = time.Since(t0)
	if err != nil {
		st.StoppedBy = stoppedByError(ctx, err)
		if st.StoppedBy == "cancelled" {
			// A prefill of several calls stops after the call that runs:
			// count the prompt tokens that ran, not those it was given.
			st.PromptTokens = s.pos - start
		}
		return st, err
	}
	t1 := time.Now()
	for i := 0; i < opts.MaxTokens; i++ {
		if ctx.Err() != nil {
			st.StoppedBy = "cancelled"
			st.Decode = time.Since(t1)
			return st, ctx.Err()
		}
		id := opts.Sampler.Sample(logits)
		stop := opts.Stop[id]
		if !stop {
			st.GeneratedTokens++
		}
		if err := onToken(id, stop); err != nil {
			st.Decode = time.Since(t1)
			if errors.Is(err, ErrStopGeneration) {
				st.StoppedBy = "stop"
				return st, nil
			}
			st.StoppedBy = stoppedByError(ctx, err)
			return st, err
		}
		if stop {
			st.StoppedBy = "stop"
			st.Decode = time.Since(t1)
			return st, nil
		}
		if i == opts.MaxTokens-1 {
			break
		}
		if logits, err = s.Decode(id); err != nil {
			st.Decode = time.Since(t1)
			st.StoppedBy = stoppedByError(ctx, err)
			return st, err
		}
	}
	st.StoppedBy = "length"
	if limitedByContext {
		st.StoppedBy = "context"
	}
	st.Decode = time.Since(t1)
	return st, nil
}

// stoppedByError is StoppedBy for a generation that a backend call ended
// with err: "cancelled" when the caller's context was cancelled (a batched
// session's Prefill or Decode returns as soon as its context ends, before
// the loop's own check sees it), and "" for any other failure.
func stoppedByError(ctx context.Context, err error) string {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return "cancelled"
	}
	return ""
}
