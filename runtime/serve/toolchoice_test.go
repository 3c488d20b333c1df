package serve

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
)

// Two small tools, unlike each other in their property (small: Llama
// 3.1's prompt holds the tools indented, and the fortune model's context
// is 512 tokens).
const (
	cityToolParams = `{"type":"object","properties":{"c":{"enum":["Paris","Oslo","Lima"]}},"required":["c"]}`
	zoneToolParams = `{"type":"object","properties":{"z":{"enum":["UTC","CET"]}},"required":["z"]}`
)

func smallTool(name, schema string) openai.ChatCompletionToolUnionParam {
	var params shared.FunctionParameters
	json.Unmarshal([]byte(schema), &params)
	return openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: name, Parameters: params, Strict: openai.Bool(true)})
}

func twoTools() []openai.ChatCompletionToolUnionParam {
	return []openai.ChatCompletionToolUnionParam{smallTool("city", cityToolParams), smallTool("zone", zoneToolParams)}
}

// checkCall checks a call to one of twoTools against its schema.
func checkCall(t *testing.T, call openai.ChatCompletionMessageToolCallUnion) {
	t.Helper()
	var v map[string]string
	err := json.Unmarshal([]byte(call.Function.Arguments), &v)
	ok := err == nil && len(v) == 1
	switch call.Function.Name {
	case "city":
		ok = ok && (v["c"] == "Paris" || v["c"] == "Oslo" || v["c"] == "Lima")
	case "zone":
		ok = ok && (v["z"] == "UTC" || v["z"] == "CET")
	default:
		t.Errorf("a call to %q, which is not a tool", call.Function.Name)
	}
	if !ok {
		t.Errorf("%s's arguments %q do not match its parameters: %v", call.Function.Name, call.Function.Arguments, err)
	}
	if !strings.HasPrefix(call.ID, "call-") || call.Type != "function" {
		t.Errorf("call %+v", call)
	}
}

func fatalAPI(t *testing.T, err error) {
	t.Helper()
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		t.Fatal(apiErr.RawJSON())
	}
	t.Fatal(err)
}

// TestToolChoiceRequiredSeveral: tool_choice "required" with two tools,
// end to end with openai-go, in harmony (the name is constrained after
// the header's opening) and in Llama 3.1 (the reply is one of the call
// objects). The fortune model knows nothing of tools, so every reply
// being a call to one of them, with arguments matching that tool's
// schema, is the server's doing; over several seeds the model's weights
// pick each of the two names at least once, so the choice is the
// model's, not fixed by the server. Streamed, the call is the same.
func TestToolChoiceRequiredSeveral(t *testing.T) {
	_, harmony := harmonyServer(t)
	for _, srv := range []struct {
		name   string
		client openai.Client
	}{{"harmony", harmony}, {"llama3", llamaServer(t)}} {
		t.Run(srv.name, func(t *testing.T) {
			params := openai.ChatCompletionNewParams{
				Messages:          []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris, or the time?")},
				Tools:             twoTools(),
				ToolChoice:        openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
				ParallelToolCalls: openai.Bool(false),
				MaxTokens:         openai.Int(60),
				Temperature:       openai.Float(1),
			}
			names := map[string]int{}
			for seed := int64(1); seed <= 8; seed++ {
				params.Seed = openai.Int(seed)
				res, err := srv.client.Chat.Completions.New(context.Background(), params)
				if err != nil {
					fatalAPI(t, err)
				}
				c := res.Choices[0]
				if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 {
					t.Fatalf("seed %d: finish %q, calls %+v, content %q", seed, c.FinishReason, c.Message.ToolCalls, c.Message.Content)
				}
				checkCall(t, c.Message.ToolCalls[0])
				names[c.Message.ToolCalls[0].Function.Name]++
				if seed == 1 {
					stream := srv.client.Chat.Completions.NewStreaming(context.Background(), params)
					var acc openai.ChatCompletionAccumulator
					for stream.Next() {
						acc.AddChunk(stream.Current())
					}
					if err := stream.Err(); err != nil {
						t.Fatal(err)
					}
					stream.Close()
					sc := acc.Choices[0]
					if sc.FinishReason != "tool_calls" || len(sc.Message.ToolCalls) != 1 ||
						sc.Message.ToolCalls[0].Function.Name != c.Message.ToolCalls[0].Function.Name ||
						sc.Message.ToolCalls[0].Function.Arguments != c.Message.ToolCalls[0].Function.Arguments {
						t.Errorf("streamed %+v, whole %+v", sc.Message.ToolCalls, c.Message.ToolCalls)
					}
				}
			}
			// The name is the model's choice among the tools: a bias on
			// its first letter picks it.
			for _, name := range []string{"city", "zone"} {
				params.LogitBias = map[string]int64{letterID(t, name[:1]): 100}
				expectOneCallTo(t, srv.client, params, name)
			}
			t.Logf("over 8 seeds, the calls went to %v", names)
		})
	}
}

// TestLlamaAutoSeveralTools: under tool_choice auto with two tools, a
// Llama 3.1 reply that opens an object is a call to one of them, its
// name chosen by the model and its arguments constrained by that tool's
// schema. logit_bias pushes the fortune model to open an object.
// parallel_tool_calls is left at its default (true): Llama 3.1's format
// holds one call per reply, so there is exactly one.
func TestLlamaAutoSeveralTools(t *testing.T) {
	client := llamaServer(t)
	params := openai.ChatCompletionNewParams{
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")},
		Tools:       twoTools(),
		MaxTokens:   openai.Int(60),
		Temperature: openai.Float(1),
		LogitBias:   map[string]int64{"99": 100}, // "{" in the fortune vocabulary
	}
	names := map[string]int{}
	for seed := int64(1); seed <= 8; seed++ {
		params.Seed = openai.Int(seed)
		res, err := client.Chat.Completions.New(context.Background(), params)
		if err != nil {
			fatalAPI(t, err)
		}
		c := res.Choices[0]
		if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 || c.Message.Content != "" {
			t.Fatalf("seed %d: finish %q, calls %+v, content %q", seed, c.FinishReason, c.Message.ToolCalls, c.Message.Content)
		}
		checkCall(t, c.Message.ToolCalls[0])
		names[c.Message.ToolCalls[0].Function.Name]++
	}
	for _, name := range []string{"city", "zone"} {
		params.LogitBias = map[string]int64{"99": 100, letterID(t, name[:1]): 30} // less than "{": the reply opens an object
		expectOneCallTo(t, client, params, name)
	}
	t.Logf("over 8 seeds, the calls went to %v", names)
}

// expectOneCallTo sends params, biased towards the tool name, and checks
// that the reply is one well-formed call to it.
func expectOneCallTo(t *testing.T, client openai.Client, params openai.ChatCompletionNewParams, name string) {
	t.Helper()
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		fatalAPI(t, err)
	}
	if calls := res.Choices[0].Message.ToolCalls; len(calls) != 1 || calls[0].Function.Name != name {
		t.Errorf("biased to %q: calls %+v", name, calls)
	} else {
		checkCall(t, calls[0])
	}
}

// letterID is the fortune vocabulary's token for one letter.
func letterID(t *testing.T, letter string) string {
	t.Helper()
	ids := fortune.Tokenizer.EncodeOrdinary(letter)
	if len(ids) != 1 {
		t.Fatalf("%q encodes to %v", letter, ids)
	}
	return strconv.Itoa(int(ids[0]))
}

// TestParallelToolCalls: harmony with parallel_tool_calls. logit_bias
// makes <|end|> the likeliest token wherever it is allowed; the server
// allows it only after a call's arguments, and only when parallel calls
// are on, where it means another call follows. So by default the reply
// holds several calls, each to one of the tools with arguments matching
// its schema and an id of its own (streamed as separate indexes), and
// with parallel_tool_calls false the same request holds exactly one.
func TestParallelToolCalls(t *testing.T) {
	_, client := harmonyServer(t)
	end, ok := fortuneHarmonyToken(t, "<|end|>")
	if !ok {
		t.Fatal("no <|end|>")
	}
	params := openai.ChatCompletionNewParams{
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris and the time?")},
		Tools:       twoTools(),
		ToolChoice:  openai.ChatCompletionToolChoiceOptionUnionParam{OfAuto: openai.String("required")},
		MaxTokens:   openai.Int(120),
		Temperature: openai.Float(1),
		Seed:        openai.Int(3),
		LogitBias:   map[string]int64{strconv.Itoa(end): 100},
	}
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		fatalAPI(t, err)
	}
	calls := res.Choices[0].Message.ToolCalls
	if len(calls) < 2 {
		t.Fatalf("parallel calls on: %d calls (%+v), finish %q", len(calls), calls, res.Choices[0].FinishReason)
	}
	t.Logf("parallel calls on: %d calls, finish %q", len(calls), res.Choices[0].FinishReason)
	ids := map[string]bool{}
	for i, c := range calls {
		if ids[c.ID] {
			t.Errorf("call %d repeats the id %q", i, c.ID)
		}
		ids[c.ID] = true
		// The last call may be cut by max_tokens.
		if i < len(calls)-1 || res.Choices[0].FinishReason != "length" {
			checkCall(t, c)
		}
	}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if got := acc.Choices[0].Message.ToolCalls; len(got) != len(calls) || got[1].Function.Arguments != calls[1].Function.Arguments {
		t.Errorf("streamed calls %+v, whole %+v", got, calls)
	}

	params.ParallelToolCalls = openai.Bool(false)
	res, err = client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		fatalAPI(t, err)
	}
	c := res.Choices[0]
	if c.FinishReason != "tool_calls" || len(c.Message.ToolCalls) != 1 {
		t.Fatalf("parallel calls off: finish %q, calls %+v", c.FinishReason, c.Message.ToolCalls)
	}
	checkCall(t, c.Message.ToolCalls[0])
}

// fortuneHarmonyToken is a harmony special token's id in the fortune
// tokenizer.
func fortuneHarmonyToken(t *testing.T, name string) (int, bool) {
	t.Helper()
	return fortune.Tokenizer.TokenID(name)
}
