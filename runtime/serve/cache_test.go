package serve

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/minerva-ml/minerva/runtime/engine"
)

// The stand-in backends of the other tests keep no KV cache, so they have
// no rings.
func (b *tinyBackend) Rings() []engine.Ring     { return nil }
func (b *scriptedBackend) Rings() []engine.Ring { return nil }

// completion is the part of a /v1/completions response the cache tests
// read.
type completion struct {
	Choices []struct {
		Text         string `json:"text"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

func postCompletion(t *testing.T, url, body string) completion {
	t.Helper()
	var c completion
	if err := json.Unmarshal([]byte(post(t, url+"/v1/completions", body, 200)), &c); err != nil || len(c.Choices) != 1 {
		t.Fatalf("POST %s: %v %+v", body, err, c)
	}
	return c
}

// TestCacheReuseAfterLongGeneration is issue 11's repro: a long
// generation fills the sliding-window layers' rings past the window of
// the shared one-token prefix, so a repeat of the first request must not
// reuse that prefix, and must give the same text as the first time.
func TestCacheReuseAfterLongGeneration(t *testing.T) {
	_, hs, _ := newServer(t, Config{})
	first := postCompletion(t, hs.URL, `{"prompt":"A computer","temperature":0}`)
	if first.Choices[0].Text != greedyText {
		t.Fatalf("first reply %q, want %q", first.Choices[0].Text, greedyText)
	}
	long := postCompletion(t, hs.URL, `{"prompt":"A computer","max_tokens":300,"ignore_eos":true,"temperature":0}`)
	if long.Usage.CompletionTokens != 300 || long.Usage.PromptTokensDetails.CachedTokens != 1 {
		t.Errorf("long request: %+v, want 300 tokens and 1 cached", long.Usage)
	}
	again := postCompletion(t, hs.URL, `{"prompt":"A computer","temperature":0}`)
	if again.Choices[0].Text != greedyText {
		t.Errorf("after a 300-token generation the same request gives %q, want %q", again.Choices[0].Text, greedyText)
	}
	// The rings (64 + 64 - 1 positions for the test's batch of 64) no
	// longer hold position 0: nothing was reused.
	if c := again.Usage.PromptTokensDetails.CachedTokens; c != 0 {
		t.Errorf("cached_tokens %d, want 0: position 0 was overwritten in the sliding-window rings", c)
	}
}

// TestChatCacheReuseAfterLongGeneration: the same repro through chat
// completions.
func TestChatCacheReuseAfterLongGeneration(t *testing.T) {
	_, hs, _ := newServer(t, Config{})
	chat := func(body string) string {
		var c struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(post(t, hs.URL+"/v1/chat/completions", body, 200)), &c); err != nil || len(c.Choices) != 1 {
			t.Fatalf("POST %s: %v %+v", body, err, c)
		}
		return c.Choices[0].Message.Content
	}
	short := `{"messages":[{"role":"user","content":"A computer"}],"temperature":0,"max_tokens":16}`
	if got := chat(short); got != greedyText {
		t.Fatalf("first reply %q, want %q", got, greedyText)
	}
	chat(`{"messages":[{"role":"user","content":"A computer"}],"temperature":0,"max_tokens":300,"ignore_eos":true}`)
	if got := chat(short); got != greedyText {
		t.Errorf("after a 300-token reply the same request gives %q, want %q", got, greedyText)
	}
}

// countingBackend records the calls the server makes.
type countingBackend struct {
	engine.Backend
	calls [][2]int // (tokens, position)
}

func (b *countingBackend) Forward(tokens []int32, pos int) ([]float32, error) {
	b.calls = append(b.calls, [2]int{len(tokens), pos})
	return b.Backend.Forward(tokens, pos)
}

// TestCachedTokensAreTrue: for every request, cached_tokens is the number
// of prompt tokens the backend did not run: the request's first call
// starts at that position, and the backend runs the rest of the prompt
// and every generated token but the last, nothing more.
func TestCachedTokensAreTrue(t *testing.T) {
	b := &countingBackend{Backend: fortune.Backend}
	m := fortune
	m.Backend = b
	s, err := New(m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()
	requests := []string{
		`{"prompt":"A computer","max_tokens":7}`,
		`{"prompt":"A computer","max_tokens":7}`,
		`{"prompt":"A computer salesman knows when he's lying.","max_tokens":20}`,
		`{"prompt":"A computer","max_tokens":300}`,
		`{"prompt":"A computer","max_tokens":7}`,
		`{"prompt":"A computer","max_tokens":100}`,
		// A continuation of the whole sequence: every position is held.
		`{"prompt":"A computer salesman knows when he's lying.It's not the way some people think","max_tokens":5}`,
		`{"prompt":"The meaning of life is","max_tokens":150}`,
		`{"prompt":"The meaning of life is to","max_tokens":3}`,
	}
	reusedAll, reusedNone := false, false
	for i, r := range requests {
		r = r[:len(r)-1] + `,"temperature":0,"ignore_eos":true}`
		b.calls = nil
		c := postCompletion(t, hs.URL, r)
		u := c.Usage
		ran := 0
		for _, call := range b.calls {
			ran += call[0]
		}
		cached := u.PromptTokensDetails.CachedTokens
		if len(b.calls) == 0 || b.calls[0][1] != cached || ran != u.PromptTokens-cached+u.CompletionTokens-1 {
			t.Errorf("request %d %s: cached_tokens %d of %d, %d generated, but the backend ran %d tokens from position %v",
				i, r, cached, u.PromptTokens, u.CompletionTokens, ran, b.calls[:min(len(b.calls), 1)])
		}
		reusedAll = reusedAll || (i == 1 && cached == u.PromptTokens-1)
		reusedNone = reusedNone || (i == 4 && cached == 0)
	}
	if !reusedAll || !reusedNone {
		t.Errorf("a repeat right after a short request must reuse all but the last prompt token (%v), and after 300 tokens nothing (%v)", reusedAll, reusedNone)
	}
}
