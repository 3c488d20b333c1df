package serve

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tinyBackend is a fast stand-in model for fuzzing: a small context, and
// logits that favour end-of-text (id 1) so most replies are short.
type tinyBackend struct{ vocab, ctx int }

func (b *tinyBackend) Forward(tokens []int32, pos int) ([]float32, error) {
	out := make([]float32, len(tokens)*b.vocab)
	for i, t := range tokens {
		row := out[i*b.vocab : (i+1)*b.vocab]
		row[1] = 3
		row[(int(t)*31+pos+i)%b.vocab] = 2.5
	}
	return out, nil
}
func (b *tinyBackend) Batch() int { return 16 }
func (b *tinyBackend) Ctx() int   { return b.ctx }
func (b *tinyBackend) Vocab() int { return b.vocab }
func (b *tinyBackend) Close()     {}

var requestSeeds = []string{
	`{"model":"fortune","messages":[{"role":"user","content":"A computer"}],"max_tokens":4}`,
	`{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"temperature":0.7,"top_p":0.9,"seed":3,"stream":true,"stream_options":{"include_usage":true}}`,
	`{"messages":[{"role":"user","content":"x"}],"stop":["\n","--"],"top_k":5,"min_p":0.1,"repeat_penalty":1.2,"ignore_eos":true,"max_tokens":3}`,
	`{"messages":[{"role":"assistant","content":null,"tool_calls":[]}]}`,
	`{"messages":[{"role":"user","content":"x"}],"max_tokens":-1}`,
	`{"prompt":"A computer","max_tokens":2,"stream":true}`,
	`{"prompt":[41,951],"echo":false,"n":1}`,
	`{"messages":"user"}`,
	`[]`,
	`{"messages":[{"role":"user","content":"x"}],"temperature":1e309}`,
	`{"messages":[{"role":"user","content":"\ud800"}],"reasoning_effort":"low"}`,
	`{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":3,"n":2,"logit_bias":{"1":-100},"presence_penalty":1,"frequency_penalty":-1,"max_tokens":4,"stream":true}`,
	`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object","properties":{"a":{"enum":[1,"b"]},"c":{"type":"array","items":{"type":"number"}}},"required":["a"]}}},"max_tokens":8}`,
	`{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"1"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}],"tool_choice":"auto"}`,
	`{"prompt":"x","logprobs":2,"n":2,"max_tokens":3}`,
	`{"input":"A computer","max_output_tokens":4,"stream":true}`,
	`{"input":[{"role":"user","content":[{"type":"input_text","text":"x"}]},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"1"}],"instructions":"Be brief.","text":{"format":{"type":"json_object"}},"max_output_tokens":6}`,
}

// fuzzServer is a server over tinyBackend with the fortune tokenizer.
func fuzzServer(t testing.TB) *Server {
	m := fortune
	m.Backend = &tinyBackend{vocab: fortune.Tokenizer.VocabSize(), ctx: 48}
	s, err := New(m, Config{MaxBodyBytes: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// fuzzRequest sends body to path and checks the answer: 200 with a JSON
// body or an event stream, or a 4xx with an OpenAI-style error; never a
// 5xx or a panic.
func fuzzRequest(t *testing.T, s *Server, path string, body []byte) {
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("POST", path, strings.NewReader(string(body))))
	res := w.Result()
	switch {
	case res.StatusCode == http.StatusOK && res.Header.Get("Content-Type") == "text/event-stream" && path == "/v1/responses":
		// Typed events, ending with the response's last state.
		if b := w.Body.String(); !strings.Contains(b, "event: response.completed\n") && !strings.Contains(b, "event: response.incomplete\n") && !strings.Contains(b, "event: error\n") {
			t.Fatalf("responses stream without its last event: %q", b)
		}
	case res.StatusCode == http.StatusOK && res.Header.Get("Content-Type") == "text/event-stream":
		if !strings.HasSuffix(w.Body.String(), "data: [DONE]\n\n") {
			t.Fatalf("stream without [DONE]: %q", w.Body.String())
		}
	case res.StatusCode == http.StatusOK:
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("invalid JSON response %q", w.Body.String())
		}
	case res.StatusCode >= 400 && res.StatusCode < 500:
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Fatalf("status %d with body %q", res.StatusCode, w.Body.String())
		}
	default:
		t.Fatalf("status %d for %q: %s", res.StatusCode, body, w.Body.String())
	}
}

// FuzzChatRequest: arbitrary bodies to /v1/chat/completions.
func FuzzChatRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRequest(t, s, "/v1/chat/completions", body)
	})
}

// FuzzCompletionRequest: arbitrary bodies to /v1/completions.
func FuzzCompletionRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRequest(t, s, "/v1/completions", body)
	})
}

// FuzzResponsesRequest: arbitrary bodies to /v1/responses.
func FuzzResponsesRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRequest(t, s, "/v1/responses", body)
	})
}
