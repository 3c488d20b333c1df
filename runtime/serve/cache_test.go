package serve

import (
	"encoding/json"
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
