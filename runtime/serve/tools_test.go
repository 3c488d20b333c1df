package serve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"

	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// cityParams has no free string: the fortune model may write one until
// max_tokens (TestStructuredOutput covers strings), and the test wants
// whole calls.
const cityParams = `{"type":"object","properties":{"city":{"enum":["Paris","Oslo","Lima"]},"unit":{"enum":["celsius","fahrenheit"]},"days":{"type":"integer"}},"required":["city","unit","days"],"additionalProperties":false}`

// harmonyServer serves the fortune model in the harmony format (its
// tokenizer has harmony's tokens): the model knows nothing of tools, so
// only what the server enforces can make its calls well-formed.
func harmonyServer(t *testing.T) (*httptest.Server, openai.Client) {
	t.Helper()
	h, err := chat.New("harmony", fortune.Tokenizer)
	if err != nil {
		t.Fatal(err)
	}
	m := fortune
	m.Format = h
	s, err := New(m, Config{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	client := openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	return hs, client
}

func weatherTool(strict bool) openai.ChatCompletionToolUnionParam {
	var params shared.FunctionParameters
	json.Unmarshal([]byte(cityParams), &params)
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{
		Name: "get_weather", Description: openai.String("Weather for a city."), Parameters: params, Strict: openai.Bool(strict),
	})
}

func checkCityArgs(t *testing.T, args string) {
	t.Helper()
	var v struct {
		City *string `json:"city"`
		Unit *string `json:"unit"`
		Days *int    `json:"days"`
	}
	dec := json.NewDecoder(strings.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v.City == nil || v.Unit == nil || v.Days == nil || (*v.Unit != "celsius" && *v.Unit != "fahrenheit") {
		t.Errorf("arguments %q do not match the parameters: %v", args, err)
	}
}

// TestToolCalls: end to end with openai-go. A named tool_choice makes
// the model call the function; a strict tool's arguments match its
// schema; streamed, the call comes as tool-call deltas; the call and its
// result then go back into the conversation.
func TestToolCalls(t *testing.T) {
	_, client := harmonyServer(t)
	params := openai.ChatCompletionNewParams{
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:       []openai.ChatCompletionToolUnionParam{weatherTool(true)},
		ToolChoice:  openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"}),
		MaxTokens:   openai.Int(200),
		Temperature: openai.Float(1),
		Seed:        openai.Int(5),
	}
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			t.Fatal(apiErr.RawJSON())
		}
		t.Fatal(err)
	}
	c := res.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 {
		t.Fatalf("finish %q, calls %+v, content %q", c.FinishReason, c.Message.ToolCalls, c.Message.Content)
	}
	call := c.Message.ToolCalls[0]
	if call.Function.Name != "get_weather" || !strings.HasPrefix(call.ID, "call-") || call.Type != "function" {
		t.Errorf("call %+v", call)
	}
	checkCityArgs(t, call.Function.Arguments)

	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	deltas := 0
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		if len(chunk.Choices) > 0 && len(chunk.Choices[0].Delta.ToolCalls) > 0 {
			deltas++
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	sc := acc.Choices[0]
	if sc.FinishReason != "tool_calls" || len(sc.Message.ToolCalls) != 1 || sc.Message.ToolCalls[0].Function.Name != "get_weather" || deltas < 2 {
		t.Fatalf("streamed: finish %q, calls %+v, %d deltas", sc.FinishReason, sc.Message.ToolCalls, deltas)
	}
	if sc.Message.ToolCalls[0].Function.Arguments != call.Function.Arguments {
		t.Errorf("streamed arguments %q, whole %q", sc.Message.ToolCalls[0].Function.Arguments, call.Function.Arguments)
	}

	// The result goes back; tool_choice none lets the model answer.
	params.Messages = append(params.Messages, c.Message.ToParam(), openai.ToolMessage(`{"temperature": 21}`, call.ID))
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("none")}
	params.MaxTokens = openai.Int(8)
	if _, err := client.Chat.Completions.New(context.Background(), params); err != nil {
		t.Errorf("the conversation with the call and its result: %v", err)
	}

	// tool_choice required with one tool forces it too.
	params.Messages = params.Messages[:1]
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
	params.MaxTokens = openai.Int(200)
	res, err = client.Chat.Completions.New(context.Background(), params)
	if err != nil || res.Choices[0].FinishReason != "tool_calls" {
		t.Fatalf("required: %v %+v", err, res)
	}
	checkCityArgs(t, res.Choices[0].Message.ToolCalls[0].Function.Arguments)
}

func TestToolErrors(t *testing.T) {
	hs, _ := harmonyServer(t)
	tool := `{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}`
	user := `"messages":[{"role":"user","content":"x"}]`
	for _, c := range []struct{ body, param, code, msg string }{
		{`{` + user + `,"tools":[` + tool + `],"tool_choice":{"type":"function","function":{"name":"g"}}}`, "tool_choice", "invalid_value", `names "g", which is not among the tools`},
		{`{` + user + `,"tool_choice":"required"}`, "tool_choice", "invalid_value", "needs tools"},
		{`{` + user + `,"tools":[` + tool + `],"parallel_tool_calls":"yes"}`, "parallel_tool_calls", "invalid_type", "expected a boolean"},
		{`{` + user + `,"tools":[{"type":"function","function":{"name":"bad name"}}]}`, "tools[0].function.name", "invalid_value", "letters, digits"},
		{`{` + user + `,"tools":[{"type":"code_interpreter"}]}`, "tools[0].type", "invalid_value", "only function tools"},
		{`{` + user + `,"tools":[{"type":"function","function":{"name":"f","strict":true,"parameters":{"type":"object","properties":{"a":{"type":"string","format":"date"}}}}}]}`, "tools[0].function.parameters", "unsupported_schema", `keyword "format"`},
		{`{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"nope","content":"1"}]}`, "messages[1].tool_call_id", "invalid_value", `"nope" answers no earlier assistant tool call`},
		{`{"messages":[{"role":"tool","content":"1"}]}`, "messages[0].tool_call_id", "missing_required_parameter", "tool_call_id is missing"},
	} {
		body := post(t, hs.URL+"/v1/chat/completions", c.body, 400)
		checkError(t, body, "invalid_request_error", c.param, c.code, c.msg)
	}
	// The plain format (the fortune model's own) renders no tools.
	_, plainHS, _ := newServer(t, Config{})
	body := post(t, plainHS.URL+"/v1/chat/completions", `{`+user+`,"tools":[`+tool+`]}`, 400)
	checkError(t, body, "invalid_request_error", "tools", "unsupported_parameter", "harmony")
}

// llamaServer serves the fortune model in the llama3 format.
// testdata/llama/llama-tiny has no tokenizer (and a 384-token
// vocabulary), so the test model is the fortune model's weights with
// its tokenizer's special tokens renamed to Llama 3's (ids 0-5, inside
// the model's vocabulary): the model knows nothing of tools or of this
// format, so only what the server enforces can make its calls
// well-formed.
func llamaServer(t *testing.T) openai.Client {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(models.FortuneFile("tokenizer.json"), &doc); err != nil {
		t.Fatal(err)
	}
	var added []any
	for i, name := range []string{"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>"} {
		added = append(added, map[string]any{"id": i, "content": name, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
	}
	doc["added_tokens"] = added
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	f, err := chat.New("llama3", tok)
	if err != nil {
		t.Fatal(err)
	}
	m := fortune
	m.Tokenizer, m.Format, m.EOS = tok, f, []int32{1}
	s, err := New(m, Config{Chat: chat.Options{CurrentDate: "2024-07-26"}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return openai.NewClient(option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
}

// TestLlamaToolCalls: Llama 3.1's JSON tool calls end to end with
// openai-go. A named tool_choice (or required) forces the whole reply to
// be {"name": ..., "parameters": ...} with the strict tool's arguments
// matching its schema; streamed, the call comes as a tool-call delta;
// the call and its role tool result then go back into the conversation.
func TestLlamaToolCalls(t *testing.T) {
	client := llamaServer(t)
	params := openai.ChatCompletionNewParams{
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:       []openai.ChatCompletionToolUnionParam{weatherTool(true)},
		ToolChoice:  openai.ToolChoiceOptionFunctionToolChoice(openai.ChatCompletionNamedToolChoiceFunctionParam{Name: "get_weather"}),
		MaxTokens:   openai.Int(100),
		Temperature: openai.Float(1),
		Seed:        openai.Int(5),
	}
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			t.Fatal(apiErr.RawJSON())
		}
		t.Fatal(err)
	}
	c := res.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.Content != "" {
		t.Fatalf("finish %q, calls %+v, content %q", c.FinishReason, c.Message.ToolCalls, c.Message.Content)
	}
	call := c.Message.ToolCalls[0]
	if call.Function.Name != "get_weather" || !strings.HasPrefix(call.ID, "call-") || call.Type != "function" {
		t.Errorf("call %+v", call)
	}
	checkCityArgs(t, call.Function.Arguments)

	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	deltas, text := 0, ""
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		if len(chunk.Choices) > 0 {
			if len(chunk.Choices[0].Delta.ToolCalls) > 0 {
				deltas++
			}
			text += chunk.Choices[0].Delta.Content
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	sc := acc.Choices[0]
	if sc.FinishReason != "tool_calls" || len(sc.Message.ToolCalls) != 1 || sc.Message.ToolCalls[0].Function.Name != "get_weather" || deltas < 1 || text != "" {
		t.Fatalf("streamed: finish %q, calls %+v, %d deltas, text %q", sc.FinishReason, sc.Message.ToolCalls, deltas, text)
	}
	if sc.Message.ToolCalls[0].Function.Arguments != call.Function.Arguments || sc.Message.ToolCalls[0].ID == "" {
		t.Errorf("streamed call %+v, whole arguments %q", sc.Message.ToolCalls[0], call.Function.Arguments)
	}

	// The call and its result go back (rendered as the assistant's JSON
	// and an ipython message); tool_choice none lets the model answer in
	// text, and auto leaves it free: the fortune model writes prose.
	params.Messages = append(params.Messages, c.Message.ToParam(), openai.ToolMessage(`{"temperature": 21}`, call.ID))
	params.MaxTokens = openai.Int(8)
	for _, choice := range []string{"none", "auto"} {
		params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String(choice)}
		res, err := client.Chat.Completions.New(context.Background(), params)
		if err != nil {
			t.Fatalf("%s: the conversation with the call and its result: %v", choice, err)
		}
		if res.Choices[0].FinishReason == "tool_calls" || len(res.Choices[0].Message.ToolCalls) != 0 {
			t.Errorf("%s: %+v", choice, res.Choices[0])
		}
	}
	// tool_choice required with one tool forces it too, here with a
	// non-strict tool: the arguments are a JSON object.
	params.Messages = params.Messages[:1]
	params.Tools = []openai.ChatCompletionToolUnionParam{weatherTool(false)}
	params.ToolChoice = openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")}
	params.MaxTokens = openai.Int(100)
	res, err = client.Chat.Completions.New(context.Background(), params)
	if err != nil || res.Choices[0].FinishReason != "tool_calls" || res.Choices[0].Message.ToolCalls[0].Function.Name != "get_weather" {
		t.Fatalf("required: %v %+v", err, res)
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(res.Choices[0].Message.ToolCalls[0].Function.Arguments), &obj); err != nil {
		t.Errorf("required, not strict: arguments %q: %v", res.Choices[0].Message.ToolCalls[0].Function.Arguments, err)
	}
}

// TestLlamaAutoToolCall: under tool_choice auto, a Llama 3.1 reply that
// opens with '{' is the call, constrained from its first byte: with
// logit_bias pushing the fortune model to open an object, the reply is
// a call to the one tool whose strict arguments match its schema.
func TestLlamaAutoToolCall(t *testing.T) {
	client := llamaServer(t)
	params := openai.ChatCompletionNewParams{
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:       []openai.ChatCompletionToolUnionParam{weatherTool(true)},
		MaxTokens:   openai.Int(100),
		Temperature: openai.Float(1),
		LogitBias:   map[string]int64{"99": 100}, // "{" in the fortune vocabulary
	}
	for seed := int64(1); seed <= 3; seed++ {
		params.Seed = openai.Int(seed)
		res, err := client.Chat.Completions.New(context.Background(), params)
		if err != nil {
			t.Fatal(err)
		}
		c := res.Choices[0]
		if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.ToolCalls[0].Function.Name != "get_weather" {
			t.Fatalf("seed %d: finish %q, calls %+v, content %q", seed, c.FinishReason, c.Message.ToolCalls, c.Message.Content)
		}
		checkCityArgs(t, c.Message.ToolCalls[0].Function.Arguments)
	}
}
