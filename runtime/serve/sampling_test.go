package serve

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/minerva-ml/minerva/runtime/weights"
)

// referenceLogprobs reads transformers' logits for the fortune model's
// first reference prompt ("The meaning of life is" and its greedy
// continuation) and returns the prompt ids, the greedy ids and, for each
// greedy token, log_softmax of the row that predicted it.
func referenceLogprobs(t *testing.T) (prompt, greedy []int32, rows [][]float64) {
	t.Helper()
	ref, err := weights.Open("../../testdata/gpt-oss/fortune/reference.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	read := func(name string) *weights.Tensor {
		tt, ok := ref.Tensor(name)
		if !ok {
			t.Fatalf("reference lacks %s", name)
		}
		return tt
	}
	in, gen := read("input_ids"), read("generated_ids")
	prompt = make([]int32, in.NumElements())
	greedy = make([]int32, gen.NumElements())
	for i := range prompt {
		prompt[i] = int32(int32le(in.Data[4*i:]))
	}
	for i := range greedy {
		greedy[i] = int32(int32le(gen.Data[4*i:]))
	}
	lt := read("logits_full")
	vocab := int(lt.Shape[1])
	all := make([]float32, lt.NumElements())
	weights.F32FromBytes(all, lt.Data)
	for i := range greedy {
		row := all[(len(prompt)-1+i)*vocab : (len(prompt)+i)*vocab]
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v))
		}
		out := make([]float64, vocab)
		for j, v := range row {
			out[j] = float64(v) - math.Log(z)
		}
		rows = append(rows, out)
	}
	return prompt, greedy, rows
}

func int32le(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// TestCompletionLogprobsMatchTransformers: the legacy logprobs of a
// greedy completion are log_softmax of transformers' logits.
func TestCompletionLogprobsMatchTransformers(t *testing.T) {
	prompt, greedy, rows := referenceLogprobs(t)
	_, hs, _ := newServer(t, Config{})
	ids, _ := json.Marshal(prompt)
	const n = 8
	body := post(t, hs.URL+"/v1/completions", `{"prompt":`+string(ids)+`,"max_tokens":8,"temperature":0,"logprobs":5,"ignore_eos":true}`, http.StatusOK)
	var res struct {
		Choices []struct {
			Text     string                 `json:"text"`
			Logprobs completionLogprobsJSON `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	lp := res.Choices[0].Logprobs
	if len(lp.Tokens) != n || len(lp.TokenLogprobs) != n || len(lp.TopLogprobs) != n || len(lp.TextOffset) != n {
		t.Fatalf("logprobs of %d tokens: %s", n, body)
	}
	if strings.Join(lp.Tokens, "") != res.Choices[0].Text {
		t.Errorf("tokens %q do not make the text %q", lp.Tokens, res.Choices[0].Text)
	}
	offset := 0
	for i := range n {
		want := rows[i][greedy[i]]
		if math.Abs(float64(lp.TokenLogprobs[i])-want) > 2e-3 {
			t.Errorf("token %d (%q): logprob %v, transformers %v", i, lp.Tokens[i], lp.TokenLogprobs[i], want)
		}
		if got, ok := lp.TopLogprobs[i][lp.Tokens[i]]; !ok || got != lp.TokenLogprobs[i] {
			t.Errorf("token %d: the greedy token %q is not among the top logprobs %v", i, lp.Tokens[i], lp.TopLogprobs[i])
		}
		if len(lp.TopLogprobs[i]) != 5 {
			t.Errorf("token %d: %d alternatives, want 5", i, len(lp.TopLogprobs[i]))
		}
		if lp.TextOffset[i] != offset {
			t.Errorf("token %d: text_offset %d, want %d", i, lp.TextOffset[i], offset)
		}
		offset += len(lp.Tokens[i])
	}
}

// TestChatLogprobs: the chat format, whole and streamed, through the
// OpenAI client. Greedy picks the most likely token, so each token is
// the first of its alternatives, and the tokens spell the content.
func TestChatLogprobs(t *testing.T) {
	_, _, client := newServer(t, Config{})
	params := greedyChat(20)
	params.Logprobs = openai.Bool(true)
	params.TopLogprobs = openai.Int(3)
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	check := func(how, content string, lps []openai.ChatCompletionTokenLogprob) {
		t.Helper()
		if content != greedyText {
			t.Errorf("%s: content %q, want %q", how, content, greedyText)
		}
		var sb strings.Builder
		for i, lp := range lps {
			sb.WriteString(lp.Token)
			if string(bytesOf(lp.Bytes)) != lp.Token {
				t.Errorf("%s: token %d %q has bytes %v", how, i, lp.Token, lp.Bytes)
			}
			if len(lp.TopLogprobs) != 3 || lp.TopLogprobs[0].Token != lp.Token || lp.TopLogprobs[0].Logprob != lp.Logprob {
				t.Errorf("%s: token %d %q (%v): alternatives %+v", how, i, lp.Token, lp.Logprob, lp.TopLogprobs)
			}
			if lp.Logprob > 0 || lp.TopLogprobs[1].Logprob > lp.Logprob {
				t.Errorf("%s: token %d: logprob %v, next %v", how, i, lp.Logprob, lp.TopLogprobs[1].Logprob)
			}
		}
		if sb.String() != content {
			t.Errorf("%s: tokens spell %q, content is %q", how, sb.String(), content)
		}
		if len(lps) != greedyLen {
			t.Errorf("%s: %d logprobs, want %d", how, len(lps), greedyLen)
		}
	}
	check("whole", res.Choices[0].Message.Content, res.Choices[0].Logprobs.Content)

	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	defer stream.Close()
	var content strings.Builder
	var lps []openai.ChatCompletionTokenLogprob
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			content.WriteString(c.Delta.Content)
			lps = append(lps, c.Logprobs.Content...)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	check("streamed", content.String(), lps)
	// The second request reuses the cached prompt and runs its last
	// token alone, not in a batch: the sums may round differently.
	for i := range lps {
		if math.Abs(lps[i].Logprob-res.Choices[0].Logprobs.Content[i].Logprob) > 1e-5 {
			t.Errorf("token %d: streamed logprob %v, whole %v", i, lps[i].Logprob, res.Choices[0].Logprobs.Content[i].Logprob)
		}
	}
}

func bytesOf(b []int64) []byte {
	out := make([]byte, len(b))
	for i, v := range b {
		out[i] = byte(v)
	}
	return out
}

// TestChoices: n choices, each drawn with seed+index, so choice i is
// what a single request with that seed gives; usage adds them up.
func TestChoices(t *testing.T) {
	_, _, client := newServer(t, Config{})
	params := openai.ChatCompletionNewParams{
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
		MaxTokens:   openai.Int(12),
		Temperature: openai.Float(1),
		Seed:        openai.Int(7),
		N:           openai.Int(3),
	}
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Choices) != 3 {
		t.Fatalf("%d choices, want 3", len(res.Choices))
	}
	total := 0
	for i, c := range res.Choices {
		if c.Index != int64(i) {
			t.Errorf("choice %d has index %d", i, c.Index)
		}
		one := params
		one.N = openai.Int(1)
		one.Seed = openai.Int(int64(7 + i))
		single, err := client.Chat.Completions.New(context.Background(), one)
		if err != nil {
			t.Fatal(err)
		}
		if single.Choices[0].Message.Content != c.Message.Content {
			t.Errorf("choice %d %q; seed %d alone gives %q", i, c.Message.Content, 7+i, single.Choices[0].Message.Content)
		}
		total += int(single.Usage.CompletionTokens)
	}
	if res.Choices[0].Message.Content == res.Choices[1].Message.Content && res.Choices[1].Message.Content == res.Choices[2].Message.Content {
		t.Errorf("three samples at temperature 1 are identical: %q", res.Choices[0].Message.Content)
	}
	if int(res.Usage.CompletionTokens) != total || res.Usage.PromptTokens != promptIDs {
		t.Errorf("usage %+v; the choices hold %d tokens", res.Usage, total)
	}

	// Streamed: chunks carry their choice's index.
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	defer stream.Close()
	texts := make([]strings.Builder, 3)
	finished := 0
	for stream.Next() {
		for _, c := range stream.Current().Choices {
			texts[c.Index].WriteString(c.Delta.Content)
			if c.FinishReason != "" {
				finished++
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range texts {
		if texts[i].String() != res.Choices[i].Message.Content {
			t.Errorf("streamed choice %d %q, whole %q", i, texts[i].String(), res.Choices[i].Message.Content)
		}
	}
	if finished != 3 {
		t.Errorf("%d finish reasons, want 3", finished)
	}
}

// TestLogitBias: -100 bans the greedy token, +100 forces another.
func TestLogitBias(t *testing.T) {
	_, greedy, rows := referenceLogprobs(t)
	_, hs, _ := newServer(t, Config{})
	first := func(bias string) int32 {
		body := post(t, hs.URL+"/v1/completions", `{"prompt":"The meaning of life is","max_tokens":1,"temperature":0,"logprobs":0,"logit_bias":`+bias+`}`, http.StatusOK)
		var res struct {
			Choices []struct {
				Logprobs completionLogprobsJSON `json:"logprobs"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(body), &res); err != nil || len(res.Choices[0].Logprobs.Tokens) != 1 {
			t.Fatalf("%s: %v", body, err)
		}
		ids := fortune.Tokenizer.EncodeOrdinary(res.Choices[0].Logprobs.Tokens[0])
		return int32(ids[0])
	}
	if got := first(`{}`); got != greedy[0] {
		t.Fatalf("no bias: first token %d, want %d", got, greedy[0])
	}
	// Banned, the runner-up of transformers' logits wins.
	second, best := int32(-1), math.Inf(-1)
	for id, v := range rows[0] {
		if int32(id) != greedy[0] && v > best {
			second, best = int32(id), v
		}
	}
	if got := first(`{"` + itoa32(greedy[0]) + `":-100}`); got != second {
		t.Errorf("greedy token banned: first token %d, want the runner-up %d", got, second)
	}
	if got := first(`{"41":100}`); got != 41 {
		t.Errorf("token 41 raised by 100: first token %d", got)
	}
}

func itoa32(v int32) string { b, _ := json.Marshal(v); return string(b) }

// TestPenalties: a frequency penalty changes a greedy reply that
// repeats itself; out-of-range values were checked in
// TestMalformedRequests and the formula in runtime/sample.
func TestPenalties(t *testing.T) {
	_, _, client := newServer(t, Config{})
	plain, err := client.Chat.Completions.New(context.Background(), greedyChat(40), option.WithJSONSet("ignore_eos", true))
	if err != nil {
		t.Fatal(err)
	}
	p := greedyChat(40)
	p.FrequencyPenalty = openai.Float(2)
	p.PresencePenalty = openai.Float(0.5)
	pen, err := client.Chat.Completions.New(context.Background(), p, option.WithJSONSet("ignore_eos", true))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Choices[0].Message.Content == pen.Choices[0].Message.Content {
		t.Errorf("penalties changed nothing: %q", pen.Choices[0].Message.Content)
	}
}
