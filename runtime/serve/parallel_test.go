package serve

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/loader"
)

// fortuneParallel is the fortune model with a KV cache of n sequences of
// ctx positions.
func fortuneParallel(t *testing.T, n, ctx int) Model {
	t.Helper()
	lm, err := loader.Load(loader.Spec{Plan: compiler.PlanOptions{Ctx: ctx, KV: "f32", Batch: 64}, Backend: "cpu", Workers: 2, Sequences: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lm.Close)
	m := fortune
	m.Backend = lm.Backend
	return m
}

// parallelPrompts differ from the first token on, so no stream shares a
// cached prefix with another.
var parallelPrompts = []string{"A computer", "Q: Why did the programmer quit?\nA:", "The best way to", "Never trust"}

// streamCompletion streams a greedy completion and returns its text and
// when its first and last chunks came.
func streamCompletion(ctx context.Context, client openai.Client, prompt string, maxTokens int) (text string, first, last time.Time, err error) {
	stream := client.Completions.NewStreaming(ctx, openai.CompletionNewParams{
		Model:       "fortune",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(int64(maxTokens)),
		Temperature: openai.Float(0),
	}, option.WithJSONSet("ignore_eos", true))
	defer stream.Close()
	var b strings.Builder
	for stream.Next() {
		c := stream.Current()
		if len(c.Choices) == 0 {
			continue
		}
		if first.IsZero() {
			first = time.Now()
		}
		last = time.Now()
		b.WriteString(c.Choices[0].Text)
	}
	return b.String(), first, last, stream.Err()
}

// TestParallelStreamsMatchAlone is issue 14's done-when test: a server
// with 4 sequences and 4 concurrent greedy streams returns, for each,
// exactly the text it returns alone; and the streams run together: each
// streams its first token before any of them ends.
func TestParallelStreamsMatchAlone(t *testing.T) {
	const maxTokens = 48
	_, _, alone := newServer(t, Config{})
	want := make([]string, len(parallelPrompts))
	for i, p := range parallelPrompts {
		text, _, _, err := streamCompletion(context.Background(), alone, p, maxTokens)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = text
	}
	s, _, client := newServerOn(t, fortuneParallel(t, 4, testCtx), Config{})
	if s.Parallel() != 4 {
		t.Fatalf("Parallel() = %d, want 4", s.Parallel())
	}
	for round := range 2 { // the second round runs on the sequences' caches
		got := make([]string, len(parallelPrompts))
		firsts := make([]time.Time, len(parallelPrompts))
		lasts := make([]time.Time, len(parallelPrompts))
		errs := make([]error, len(parallelPrompts))
		var wg sync.WaitGroup
		for i, p := range parallelPrompts {
			wg.Go(func() {
				got[i], firsts[i], lasts[i], errs[i] = streamCompletion(context.Background(), client, p, maxTokens)
			})
		}
		wg.Wait()
		for i := range parallelPrompts {
			if errs[i] != nil {
				t.Fatalf("round %d, stream %d: %v", round, i, errs[i])
			}
			if got[i] != want[i] {
				t.Errorf("round %d, stream %d (%q): together\n%q\nalone\n%q", round, i, parallelPrompts[i], got[i], want[i])
			}
		}
		firstEnd := lasts[0]
		for _, l := range lasts {
			if l.Before(firstEnd) {
				firstEnd = l
			}
		}
		for i, f := range firsts {
			if f.After(firstEnd) {
				t.Errorf("round %d: stream %d started after another stream ended: the streams did not run together", round, i)
			}
		}
	}
	if m := s.Metrics(); m.Completed != 2*int64(len(parallelPrompts)) {
		t.Errorf("metrics %+v", m)
	}
}

// TestParallelCancelFreesSequence: with every sequence busy, a request
// waits; when a stream's client goes away, its sequence goes to the
// waiting request at once, long before the stream would have ended.
func TestParallelCancelFreesSequence(t *testing.T) {
	// Streams of up to 4000 tokens: far longer than the test.
	s, _, client := newServerOn(t, fortuneParallel(t, 2, 4096), Config{})
	ctx := []context.Context{}
	cancels := []context.CancelFunc{}
	streams := make([]chan error, 2)
	for i := range 2 {
		c, cancel := context.WithCancel(context.Background())
		ctx, cancels = append(ctx, c), append(cancels, cancel)
		defer cancel()
		streams[i] = make(chan error, 1)
		started := make(chan struct{})
		go func() {
			stream := client.Completions.NewStreaming(c, openai.CompletionNewParams{
				Model: "fortune", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(parallelPrompts[i])},
				MaxTokens: openai.Int(4000), Temperature: openai.Float(0),
			}, option.WithJSONSet("ignore_eos", true))
			defer stream.Close()
			if stream.Next() {
				close(started)
			}
			for stream.Next() {
			}
			streams[i] <- stream.Err()
		}()
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatal("stream did not start")
		}
	}
	waited := make(chan error, 1)
	go func() {
		_, err := client.Completions.New(context.Background(), openai.CompletionNewParams{
			Model: "fortune", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("A computer")},
			MaxTokens: openai.Int(4), Temperature: openai.Float(0),
		})
		waited <- err
	}()
	waitFor(t, func() bool { return s.Metrics().Waiting == 1 })
	cancels[0]()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-streams[1]:
		t.Fatalf("the other stream ended (%v) before the waiting request ran: the cancelled stream's sequence was not freed", err)
	}
	cancels[1]()
	<-streams[0]
	<-streams[1]
	waitFor(t, func() bool { return s.Metrics().Cancelled == 2 })
}

// TestParallelPrefersCachedSequence: of the free sequences, a request
// takes the one whose cache holds its prompt's prefix, not the least
// recently used one, and cached_tokens says so.
func TestParallelPrefersCachedSequence(t *testing.T) {
	_, hs, _ := newServerOn(t, fortuneParallel(t, 2, testCtx), Config{})
	// B, then A: B's sequence is the least recently used, the one a
	// request with nothing cached gets.
	postCompletion(t, hs.URL, `{"prompt":"Never trust","max_tokens":8,"temperature":0,"ignore_eos":true}`)
	a := postCompletion(t, hs.URL, `{"prompt":"A computer","max_tokens":8,"temperature":0,"ignore_eos":true}`)
	// A's prompt and reply, continued: only A's sequence holds them.
	again := postCompletion(t, hs.URL, fmt.Sprintf(`{"prompt":%q,"max_tokens":4,"temperature":0}`, "A computer"+a.Choices[0].Text))
	if c := again.Usage.PromptTokensDetails.CachedTokens; c < promptIDs+a.Usage.CompletionTokens-2 {
		t.Errorf("cached_tokens %d of %d prompt tokens: the request did not take the sequence holding its prefix", c, again.Usage.PromptTokens)
	}
}
