package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/goleak"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/testcache"
	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/loader"
)

// The tests drive the server with the official OpenAI Go client against
// the embedded fortune model. Its expected outputs are the greedy
// continuations recorded by transformers in
// testdata/gpt-oss/fortune/reference.json: "A computer" continues
// " salesman knows when he's lying." and then <|endoftext|>.

const (
	prompt     = "A computer"
	promptIDs  = 2 // [41, 951]
	greedyText = " salesman knows when he's lying."
	greedyLen  = 7
	// With end-of-text ignored, the first 40 tokens decode (specials
	// dropped) to the reference's greedy_text.
	greedyText40 = " salesman knows when he's lying.It's not the way some people think, they must have auseope.It's amazing how much of that people are planning, and one.\n\t"
	testCtx      = 512
)

var fortune Model

func TestMain(m *testing.M) {
	// Tokenizers loaded from files are cached in a directory of this
	// process's own, not the user's cache.
	removeCache, err := testcache.Use()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	lm, err := loader.Load(loader.Spec{Plan: compiler.PlanOptions{Ctx: testCtx, KV: "f32", Batch: 64}, Backend: "cpu", Workers: 2, Tokenizer: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tok := lm.Tokenizer
	files, _ := chat.ReadModelFiles(lm.Dir, tok, lm.HFConfig, lm.GenerationConfig)
	det, err := chat.Detect(files)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fortune = Model{Name: lm.Name, Backend: lm.Backend, Tokenizer: tok, Format: det.Format, EOS: files.EOS}
	code := m.Run()
	lm.Close()
	if code == 0 {
		// Every server, connection, stream and generation of the tests
		// must be gone.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	removeCache()
	os.Exit(code)
}

// newServer starts a server over the fortune model. Each test makes its
// own; only one at a time uses the model, since a server owns the
// backend's KV cache.
func newServer(t *testing.T, cfg Config) (*Server, *httptest.Server, openai.Client) {
	t.Helper()
	return newServerOn(t, fortune, cfg)
}

// newServerOn starts a server over m.
func newServerOn(t *testing.T, m Model, cfg Config) (*Server, *httptest.Server, openai.Client) {
	t.Helper()
	s, err := New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	transport := &http.Transport{}
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		hs.Close()
		s.Close()
	})
	client := openai.NewClient(
		option.WithBaseURL(hs.URL+"/v1/"),
		option.WithAPIKey(cfg.APIKey+"unused"),
		option.WithHTTPClient(&http.Client{Transport: transport}),
		option.WithMaxRetries(0),
	)
	if cfg.APIKey != "" {
		client = openai.NewClient(
			option.WithBaseURL(hs.URL+"/v1/"),
			option.WithAPIKey(cfg.APIKey),
			option.WithHTTPClient(&http.Client{Transport: transport}),
			option.WithMaxRetries(0),
		)
	}
	return s, hs, client
}

func greedyChat(maxTokens int64) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:       "fortune",
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
		MaxTokens:   openai.Int(maxTokens),
		Temperature: openai.Float(0),
	}
}

func TestModels(t *testing.T) {
	_, _, client := newServer(t, Config{})
	ctx := context.Background()
	page, err := client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != "fortune" || page.Data[0].OwnedBy != "minerva" {
		t.Errorf("models %+v", page.Data)
	}
	m, err := client.Models.Get(ctx, "fortune")
	if err != nil || m.ID != "fortune" {
		t.Errorf("get fortune: %v %v", m, err)
	}
	_, err = client.Models.Get(ctx, "gpt-4")
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
		t.Errorf("get gpt-4: %v", err)
	}
}

func TestChatCompletion(t *testing.T) {
	_, _, client := newServer(t, Config{})
	res, err := client.Chat.Completions.New(context.Background(), greedyChat(20))
	if err != nil {
		t.Fatal(err)
	}
	c := res.Choices[0]
	if c.Message.Content != greedyText || c.FinishReason != "stop" || c.Message.Role != "assistant" {
		t.Errorf("got %q (%s), want %q (stop)", c.Message.Content, c.FinishReason, greedyText)
	}
	if res.Usage.PromptTokens != promptIDs || res.Usage.CompletionTokens != greedyLen || res.Usage.TotalTokens != promptIDs+greedyLen {
		t.Errorf("usage %+v, want %d prompt and %d completion tokens", res.Usage, promptIDs, greedyLen)
	}
	if res.Object != "chat.completion" || !strings.HasPrefix(res.ID, "chatcmpl-") || res.Model != "fortune" {
		t.Errorf("response %s %s %s", res.Object, res.ID, res.Model)
	}
	// A limit cuts the reply: finish_reason length.
	res, err = client.Chat.Completions.New(context.Background(), greedyChat(3))
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Choices[0]; c.FinishReason != "length" || res.Usage.CompletionTokens != 3 || !strings.HasPrefix(greedyText, c.Message.Content) {
		t.Errorf("max_tokens 3: %q %s %d", c.Message.Content, c.FinishReason, res.Usage.CompletionTokens)
	}
}

func TestChatCompletionStreaming(t *testing.T) {
	_, _, client := newServer(t, Config{})
	params := greedyChat(20)
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		if chunk.Object != "chat.completion.chunk" {
			t.Errorf("chunk object %q", chunk.Object)
		}
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != greedyText {
		t.Errorf("streamed %q, want %q", got, greedyText)
	}
	if acc.Choices[0].FinishReason != "stop" {
		t.Errorf("finish %q", acc.Choices[0].FinishReason)
	}
	if acc.Usage.CompletionTokens != greedyLen || acc.Usage.PromptTokens != promptIDs {
		t.Errorf("usage %+v", acc.Usage)
	}
	// role, one chunk per token, finish, usage.
	if chunks < greedyLen+2 {
		t.Errorf("%d chunks: the reply did not stream token by token", chunks)
	}
}

// TestStreamWireFormat reads the raw event stream: data lines, ending
// with data: [DONE].
func TestStreamWireFormat(t *testing.T) {
	_, hs, _ := newServer(t, Config{})
	body := post(t, hs.URL+"/v1/completions", `{"prompt":"A computer","max_tokens":3,"temperature":0,"stream":true}`, http.StatusOK)
	if !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Errorf("stream does not end with data: [DONE]: %q", body)
	}
	for _, ev := range strings.Split(strings.TrimSuffix(body, "\n\n"), "\n\n") {
		if !strings.HasPrefix(ev, "data: ") {
			t.Errorf("event %q is not a data line", ev)
		}
	}
}

func TestCompletions(t *testing.T) {
	_, _, client := newServer(t, Config{})
	ctx := context.Background()
	params := openai.CompletionNewParams{
		Model:       "fortune",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		MaxTokens:   openai.Int(40),
		Temperature: openai.Float(0),
	}
	res, err := client.Completions.New(ctx, params, option.WithJSONSet("ignore_eos", true))
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Choices[0]; c.Text != greedyText40 || c.FinishReason != "length" || res.Usage.CompletionTokens != 40 {
		t.Errorf("got %q (%s, %d tokens), want %q", c.Text, c.FinishReason, res.Usage.CompletionTokens, greedyText40)
	}
	stream := client.Completions.NewStreaming(ctx, params)
	defer stream.Close()
	var text strings.Builder
	finish := ""
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			text.WriteString(c.Text)
			if c.FinishReason != "" {
				finish = string(c.FinishReason)
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != greedyText || finish != "stop" {
		t.Errorf("streamed %q (%s), want %q (stop)", text.String(), finish, greedyText)
	}
	// Token ids as the prompt; a stop string ends the text before it.
	res, err = client.Completions.New(ctx, openai.CompletionNewParams{
		Model:       "fortune",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfArrayOfTokens: []int64{41, 951}},
		MaxTokens:   openai.Int(20),
		Temperature: openai.Float(0),
		Stop:        openai.CompletionNewParamsStopUnion{OfString: openai.String(" when")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Choices[0]; c.Text != " salesman knows" || c.FinishReason != "stop" {
		t.Errorf("stop string: %q %s", c.Text, c.FinishReason)
	}
}

// TestConcurrentClients: 32 clients at once all succeed; the queue runs
// them one by one, and equal requests get equal replies (greedy, and
// sampled with a seed).
func TestConcurrentClients(t *testing.T) {
	s, _, client := newServer(t, Config{})
	const clients = 32
	var wg sync.WaitGroup
	replies := make([]string, clients)
	errs := make([]error, clients)
	for i := range clients {
		wg.Go(func() {
			p := greedyChat(8)
			if i%2 == 1 {
				p.Temperature = openai.Float(1.2)
				p.Seed = openai.Int(1234)
			}
			var opts []option.RequestOption
			if i%2 == 1 {
				// top_k is an extension the client has no field for.
				opts = append(opts, option.WithJSONSet("top_k", 20))
			}
			res, err := client.Chat.Completions.New(context.Background(), p, opts...)
			if err != nil {
				errs[i] = err
				return
			}
			replies[i] = res.Choices[0].Message.Content
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	for i := range clients {
		if replies[i] != replies[i%2] {
			t.Errorf("client %d got %q, client %d %q", i, replies[i], i%2, replies[i%2])
		}
	}
	if !strings.HasPrefix(greedyText, replies[0]) || replies[0] == "" {
		t.Errorf("greedy reply %q", replies[0])
	}
	if m := s.Metrics(); m.Completed != clients || m.Waiting != 0 {
		t.Errorf("metrics %+v", m)
	}
}

// TestCancelMidStream: a client that goes away stops its generation.
func TestCancelMidStream(t *testing.T) {
	done := make(chan Generation, 1)
	s, _, client := newServer(t, Config{OnGeneration: func(g Generation) { done <- g }})
	ctx, cancel := context.WithCancel(context.Background())
	stream := client.Chat.Completions.NewStreaming(ctx, greedyChat(400), option.WithJSONSet("ignore_eos", true))
	for range 4 {
		if !stream.Next() {
			t.Fatalf("stream ended early: %v", stream.Err())
		}
	}
	cancel()
	stream.Close()
	select {
	case g := <-done:
		if !errors.Is(g.Err, context.Canceled) || g.Stats.StoppedBy != "cancelled" {
			t.Errorf("generation ended with %v (%s), want cancelled", g.Err, g.Stats.StoppedBy)
		}
		if g.Stats.GeneratedTokens >= 400 {
			t.Errorf("generated all %d tokens after the client left", g.Stats.GeneratedTokens)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the generation did not stop after the client cancelled")
	}
	waitFor(t, func() bool { return s.Metrics().Cancelled == 1 })
}

// TestQueue: requests wait in order; beyond MaxQueue they get 503, and a
// waiting client that leaves is dropped from the queue.
func TestQueue(t *testing.T) {
	s, hs, client := newServer(t, Config{MaxQueue: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// A long generation holds the model.
	stream := client.Chat.Completions.NewStreaming(ctx, greedyChat(400), option.WithJSONSet("ignore_eos", true))
	defer stream.Close()
	if !stream.Next() {
		t.Fatal(stream.Err())
	}
	// A second request waits.
	waitCtx, leave := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		_, err := client.Chat.Completions.New(waitCtx, greedyChat(2))
		waited <- err
	}()
	waitFor(t, func() bool { return s.Metrics().Waiting == 1 })
	// A third finds the queue full.
	body := post(t, hs.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}],"max_tokens":1}`, http.StatusServiceUnavailable)
	checkError(t, body, "server_error", "", "server_busy", "busy")
	// The waiting client leaves.
	leave()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("waiting client: %v", err)
	}
	waitFor(t, func() bool { return s.Metrics().Waiting == 0 })
	cancel()
	waitFor(t, func() bool { return s.Metrics().Cancelled == 2 })
}

// TestPrefixReuse: a follow-up request reuses the cached prefix and gets
// the same reply as a fresh server would give.
func TestPrefixReuse(t *testing.T) {
	_, _, client := newServer(t, Config{})
	ctx := context.Background()
	first, err := client.Chat.Completions.New(ctx, greedyChat(20))
	if err != nil {
		t.Fatal(err)
	}
	if first.Usage.PromptTokensDetails.CachedTokens != 0 {
		t.Errorf("first request reused %d tokens", first.Usage.PromptTokensDetails.CachedTokens)
	}
	again, err := client.Chat.Completions.New(ctx, greedyChat(20))
	if err != nil {
		t.Fatal(err)
	}
	if again.Usage.PromptTokensDetails.CachedTokens != promptIDs-1 || again.Choices[0].Message.Content != greedyText {
		t.Errorf("repeat: reused %d, reply %q", again.Usage.PromptTokensDetails.CachedTokens, again.Choices[0].Message.Content)
	}
	// A longer prompt: the old prompt and reply are cached.
	long, err := client.Completions.New(ctx, openai.CompletionNewParams{
		Model:       "fortune",
		Prompt:      openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt + greedyText)},
		MaxTokens:   openai.Int(5),
		Temperature: openai.Float(0),
	}, option.WithJSONSet("ignore_eos", true))
	if err != nil {
		t.Fatal(err)
	}
	if long.Usage.PromptTokensDetails.CachedTokens < promptIDs+greedyLen-1 {
		t.Errorf("reused %d tokens of %d", long.Usage.PromptTokensDetails.CachedTokens, long.Usage.PromptTokens)
	}
	// The reference continues "A computer salesman knows when he's
	// lying." with <|endoftext|> and then "It's not the way".
	if long.Choices[0].Text != "It's not the way" {
		t.Errorf("continuation %q", long.Choices[0].Text)
	}
}

func TestAPIKey(t *testing.T) {
	_, hs, client := newServer(t, Config{APIKey: "sekrit"})
	if _, err := client.Models.List(context.Background()); err != nil {
		t.Errorf("with the key: %v", err)
	}
	for _, auth := range []string{"", "Bearer wrong", "sekrit"} {
		req, _ := http.NewRequest("GET", hs.URL+"/v1/models", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d", auth, res.StatusCode)
		}
		checkError(t, string(body), "invalid_request_error", "", "invalid_api_key", "API key")
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestMalformedRequests checks status codes and error bodies.
func TestMalformedRequests(t *testing.T) {
	_, hs, client := newServer(t, Config{MaxBodyBytes: 4096})
	user := `"messages":[{"role":"user","content":"x"}]`
	cases := []struct {
		path, body                string
		status                    int
		typ, param, code, message string
	}{
		{"chat/completions", `{`, 400, "invalid_request_error", "", "invalid_json", "not valid JSON"},
		{"chat/completions", ``, 400, "invalid_request_error", "", "invalid_json", "empty"},
		{"chat/completions", `[1]`, 400, "invalid_request_error", "", "invalid_json", "must be a JSON object"},
		{"chat/completions", `{"messages":[]}`, 400, "invalid_request_error", "messages", "invalid_value", "at least one message"},
		{"chat/completions", `{}`, 400, "invalid_request_error", "messages", "invalid_value", "at least one message"},
		{"chat/completions", `{"messages":[{"role":"wizard","content":"x"}]}`, 400, "invalid_request_error", "messages[0].role", "invalid_value", `unknown role "wizard"`},
		{"chat/completions", `{"messages":[{"role":"tool","content":"x"}]}`, 400, "invalid_request_error", "messages[0].tool_call_id", "missing_required_parameter", "tool_call_id is missing"},
		{"chat/completions", `{"messages":[{"role":"user","content":5}]}`, 400, "invalid_request_error", "messages[0].content", "invalid_type", "string or an array"},
		{"chat/completions", `{"messages":[{"role":"user","content":""}]}`, 400, "invalid_request_error", "messages", "invalid_value", "no text"},
		{"chat/completions", `{"messages":[{"role":"user"}]}`, 400, "invalid_request_error", "messages[0].content", "missing_required_parameter", "missing"},
		{"chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "invalid_request_error", "messages[0].content[0]", "unsupported_value", "only text parts"},
		{"chat/completions", `{` + user + `,"max_tokens":-1}`, 400, "invalid_request_error", "max_tokens", "invalid_value", "at least 1"},
		{"chat/completions", `{` + user + `,"max_completion_tokens":0}`, 400, "invalid_request_error", "max_completion_tokens", "invalid_value", "at least 1"},
		{"chat/completions", `{` + user + `,"max_tokens":"ten"}`, 400, "invalid_request_error", "max_tokens", "invalid_type", "expected an integer"},
		{"chat/completions", `{` + user + `,"temperature":2.5}`, 400, "invalid_request_error", "temperature", "invalid_value", "between 0 and 2"},
		{"chat/completions", `{` + user + `,"temperature":-0.1}`, 400, "invalid_request_error", "temperature", "invalid_value", "between 0 and 2"},
		{"chat/completions", `{` + user + `,"top_p":1.5}`, 400, "invalid_request_error", "top_p", "invalid_value", "between 0 and 1"},
		{"chat/completions", `{` + user + `,"top_k":-3}`, 400, "invalid_request_error", "top_k", "invalid_value", "top_k"},
		{"chat/completions", `{` + user + `,"repeat_penalty":0}`, 400, "invalid_request_error", "repeat_penalty", "invalid_value", "positive"},
		{"chat/completions", `{` + user + `,"frequency_penalty":2.5}`, 400, "invalid_request_error", "frequency_penalty", "invalid_value", "between -2 and 2"},
		{"chat/completions", `{` + user + `,"presence_penalty":-3}`, 400, "invalid_request_error", "presence_penalty", "invalid_value", "between -2 and 2"},
		{"chat/completions", `{` + user + `,"n":9}`, 400, "invalid_request_error", "n", "invalid_value", "between 1 and 8"},
		{"chat/completions", `{` + user + `,"n":0}`, 400, "invalid_request_error", "n", "invalid_value", "between 1 and 8"},
		{"chat/completions", `{` + user + `,"logprobs":true,"top_logprobs":21}`, 400, "invalid_request_error", "top_logprobs", "invalid_value", "between 0 and 20"},
		{"chat/completions", `{` + user + `,"top_logprobs":2}`, 400, "invalid_request_error", "top_logprobs", "invalid_value", "needs logprobs"},
		{"chat/completions", `{` + user + `,"logit_bias":{"abc":1}}`, 400, "invalid_request_error", "logit_bias", "invalid_value", `the key "abc" is not a token id`},
		{"chat/completions", `{` + user + `,"logit_bias":{"5":101}}`, 400, "invalid_request_error", "logit_bias", "invalid_value", "between -100 and 100"},
		{"chat/completions", `{` + user + `,"logit_bias":{"999999":1}}`, 400, "invalid_request_error", "logit_bias", "invalid_value", "outside the vocabulary"},
		{"chat/completions", `{` + user + `,"logit_bias":[1]}`, 400, "invalid_request_error", "logit_bias", "invalid_type", "expected an object"},
		{"chat/completions", `{` + user + `,"audio":{"voice":"alloy"}}`, 400, "invalid_request_error", "audio", "unsupported_parameter", "audio output is not supported"},
		{"chat/completions", `{` + user + `,"modalities":["text","audio"]}`, 400, "invalid_request_error", "modalities", "unsupported_parameter", "only text"},
		{"chat/completions", `{` + user + `,"prediction":{"type":"content","content":"x"}}`, 400, "invalid_request_error", "prediction", "unsupported_parameter", "predicted outputs"},
		{"chat/completions", `{` + user + `,"functions":[{"name":"f"}]}`, 400, "invalid_request_error", "functions", "unsupported_parameter", "use tools"},
		{"completions", `{"prompt":"x","logprobs":21}`, 400, "invalid_request_error", "logprobs", "invalid_value", "between 0 and 20"},
		{"chat/completions", `{` + user + `,"stop":["a","b","c","d","e"]}`, 400, "invalid_request_error", "stop", "invalid_value", "at most 4"},
		{"chat/completions", `{` + user + `,"stop":7}`, 400, "invalid_request_error", "stop", "invalid_type", "string or an array"},
		{"chat/completions", `{` + user + `,"tools":[{"type":"function"}]}`, 400, "invalid_request_error", "tools[0].function", "missing_required_parameter", "tools[0].function is missing"},
		{"chat/completions", `{` + user + `,"reasoning_effort":"max"}`, 400, "invalid_request_error", "reasoning_effort", "invalid_value", "low, medium or high"},
		{"chat/completions", `{` + user + `,"stream_options":{"include_usage":true}}`, 400, "invalid_request_error", "stream_options", "invalid_value", "only allowed when stream"},
		{"chat/completions", `{"model":"gpt-4",` + user + `}`, 404, "invalid_request_error", "model", "model_not_found", `"gpt-4" does not exist`},
		{"chat/completions", `{` + user + `,"max_tokens":600}`, 400, "invalid_request_error", "max_tokens", "context_length_exceeded", "context holds 512"},
		{"chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 700) + `"}]}`, 400, "invalid_request_error", "messages", "context_length_exceeded", "the prompt is more than 512 tokens, but the model's context holds 512"},
		{"completions", `{"prompt":"` + strings.Repeat("word ", 700) + `"}`, 400, "invalid_request_error", "prompt", "context_length_exceeded", "the prompt is more than 512 tokens, but the model's context holds 512"},
		{"chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`, 413, "invalid_request_error", "", "request_too_large", "larger than 4096 bytes"},
		{"completions", `{}`, 400, "invalid_request_error", "prompt", "missing_required_parameter", "prompt is missing"},
		{"completions", `{"prompt":""}`, 400, "invalid_request_error", "prompt", "invalid_value", "empty"},
		{"completions", `{"prompt":["a","b"]}`, 400, "invalid_request_error", "prompt", "invalid_value", "one prompt per request"},
		{"completions", `{"prompt":[41,99999]}`, 400, "invalid_request_error", "prompt", "invalid_value", "outside the vocabulary"},
		{"completions", `{"prompt":"x","echo":true}`, 400, "invalid_request_error", "echo", "unsupported_parameter", "echo"},
		{"completions", `{"prompt":"x","max_tokens":0}`, 400, "invalid_request_error", "max_tokens", "invalid_value", "at least 1"},
		{"nothing", `{}`, 404, "invalid_request_error", "", "unknown_url", "unknown request URL"},
	}
	for _, c := range cases {
		body := post(t, hs.URL+"/v1/"+c.path, c.body, c.status)
		checkError(t, body, c.typ, c.param, c.code, c.message)
	}
	// Wrong methods.
	res, err := http.Get(hs.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/chat/completions: %d", res.StatusCode)
	}
	checkError(t, string(body), "invalid_request_error", "", "method_not_allowed", "POST")
	http.DefaultClient.CloseIdleConnections()

	// The client reports the server's errors.
	_, err = client.Chat.Completions.New(context.Background(), greedyChat(5), option.WithJSONSet("temperature", 5))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "temperature" || apiErr.Type != "invalid_request_error" {
		t.Errorf("client error: %v", err)
	}
}

// TestShutdown: ListenAndServe lets a running request finish, then
// returns.
func TestShutdown(t *testing.T) {
	s, err := New(fortune, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, stop := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	served := make(chan error, 1)
	go func() {
		served <- ListenAndServe(ctx, "127.0.0.1:0", s, 10*time.Second, func(a net.Addr) { addrs <- a })
	}()
	addr := <-addrs
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := openai.NewClient(option.WithBaseURL("http://"+addr.String()+"/v1/"), option.WithAPIKey("x"),
		option.WithHTTPClient(&http.Client{Transport: transport}), option.WithMaxRetries(0))
	reply := make(chan error, 1)
	go func() {
		res, err := client.Chat.Completions.New(context.Background(), greedyChat(30), option.WithJSONSet("ignore_eos", true))
		if err == nil && res.Usage.CompletionTokens != 30 {
			err = fmt.Errorf("%d tokens", res.Usage.CompletionTokens)
		}
		reply <- err
	}()
	waitFor(t, func() bool { return s.Metrics().Requests == 1 })
	stop()
	if err := <-reply; err != nil {
		t.Errorf("request running at shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("ListenAndServe: %v", err)
	}
	if _, err := net.Dial("tcp", addr.String()); err == nil {
		t.Errorf("still listening after shutdown")
	}

	// Past the grace period running generations are cancelled.
	ctx, stop = context.WithCancel(context.Background())
	go func() {
		served <- ListenAndServe(ctx, "127.0.0.1:0", s, 50*time.Millisecond, func(a net.Addr) { addrs <- a })
	}()
	addr = <-addrs
	client = openai.NewClient(option.WithBaseURL("http://"+addr.String()+"/v1/"), option.WithAPIKey("x"),
		option.WithHTTPClient(&http.Client{Transport: transport}), option.WithMaxRetries(0))
	go func() {
		_, err := client.Chat.Completions.New(context.Background(), greedyChat(500), option.WithJSONSet("ignore_eos", true), option.WithJSONSet("max_tokens", 500))
		reply <- err
	}()
	waitFor(t, func() bool { return s.Metrics().Requests == 2 })
	stop()
	if err := <-served; err != nil {
		t.Errorf("ListenAndServe: %v", err)
	}
	if err := <-reply; err == nil {
		t.Errorf("a 500-token request finished within a 50 ms grace period")
	}
	waitFor(t, func() bool { return s.Metrics().Cancelled == 1 })
}

func post(t *testing.T, url, body string, status int) string {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != status {
		t.Errorf("POST %s %.80q: status %d, want %d; body %s", url, body, res.StatusCode, status, b)
	}
	return string(b)
}

// checkError checks an OpenAI-style error body.
func checkError(t *testing.T, body, typ, param, code, message string) {
	t.Helper()
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("error body %q: %v", body, err)
		return
	}
	gotParam, gotCode := "", ""
	if e.Error.Param != nil {
		gotParam = *e.Error.Param
	}
	if e.Error.Code != nil {
		gotCode = *e.Error.Code
	}
	if e.Error.Type != typ || gotParam != param || gotCode != code || !strings.Contains(e.Error.Message, message) {
		t.Errorf("error %+v (param %q, code %q); want type %q param %q code %q, message with %q", e.Error, gotParam, gotCode, typ, param, code, message)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// scriptedBackend plays a fixed reply: the logits at position q make
// script[q+1-promptLen] the most likely token, so greedy decoding after a
// prompt of promptLen tokens writes the script.
type scriptedBackend struct {
	vocab, promptLen int
	script           []int32
}

func (b *scriptedBackend) Forward(tokens []int32, pos int) ([]float32, error) {
	out := make([]float32, len(tokens)*b.vocab)
	for i := range tokens {
		k := pos + i + 1 - b.promptLen
		if k >= 0 && k < len(b.script) {
			out[i*b.vocab+int(b.script[k])] = 10
		}
	}
	return out, nil
}
func (b *scriptedBackend) Batch() int { return 64 }
func (b *scriptedBackend) Ctx() int   { return 256 }
func (b *scriptedBackend) Vocab() int { return b.vocab }
func (b *scriptedBackend) Close()     {}

// TestHarmonyReasoning: for a harmony model the final channel is the
// content and the analysis channel comes apart as reasoning_content,
// whole and streamed; generation stops at <|return|>.
func TestHarmonyReasoning(t *testing.T) {
	tok := fortune.Tokenizer // it has harmony's special tokens
	format, err := chat.New("harmony", tok)
	if err != nil {
		t.Fatal(err)
	}
	opts := chat.Options{CurrentDate: "2025-08-05", ReasoningEffort: "high"}
	msgs := []chat.Message{{Role: chat.RoleUser, Content: "What is 2 + 2?"}}
	promptIDs, err := format.Render(msgs, opts)
	if err != nil {
		t.Fatal(err)
	}
	script := toInt32(tok.Encode("<|channel|>analysis<|message|>Simple arithmetic.<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>"))
	m := fortune
	m.Format = format
	m.Backend = &scriptedBackend{vocab: tok.VocabSize(), promptLen: len(promptIDs), script: script}
	s, err := New(m, Config{Chat: chat.Options{CurrentDate: "2025-08-05"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hs := httptest.NewServer(s)
	defer hs.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	client := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("x"),
		option.WithHTTPClient(&http.Client{Transport: transport}), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{
		Model:           "fortune",
		Messages:        []openai.ChatCompletionMessageParamUnion{openai.UserMessage("What is 2 + 2?")},
		Temperature:     openai.Float(0),
		ReasoningEffort: openai.ReasoningEffortHigh,
	}
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	var reasoning string
	json.Unmarshal([]byte(res.Choices[0].Message.JSON.ExtraFields["reasoning_content"].Raw()), &reasoning)
	if c := res.Choices[0]; c.Message.Content != "2 + 2 = 4." || reasoning != "Simple arithmetic." || c.FinishReason != "stop" {
		t.Errorf("content %q, reasoning %q, finish %s", c.Message.Content, reasoning, c.FinishReason)
	}
	if res.Usage.PromptTokens != int64(len(promptIDs)) || res.Usage.CompletionTokens != int64(len(script)-1) {
		t.Errorf("usage %+v, want %d prompt and %d completion tokens", res.Usage, len(promptIDs), len(script)-1)
	}

	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	defer stream.Close()
	var content, streamed strings.Builder
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			content.WriteString(c.Delta.Content)
			var r string
			if raw := c.Delta.JSON.ExtraFields["reasoning_content"].Raw(); raw != "" {
				json.Unmarshal([]byte(raw), &r)
			}
			streamed.WriteString(r)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if content.String() != "2 + 2 = 4." || streamed.String() != "Simple arithmetic." {
		t.Errorf("streamed content %q, reasoning %q", content.String(), streamed.String())
	}
}
