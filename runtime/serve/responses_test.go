package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
)

// TestResponses: /v1/responses through openai-go's Responses client:
// text, streamed events, and a function call with its output sent back.
func TestResponses(t *testing.T) {
	_, _, client := newServer(t, Config{})
	params := responses.ResponseNewParams{
		Model:           "fortune",
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String(prompt)},
		MaxOutputTokens: openai.Int(20),
		Temperature:     openai.Float(0),
	}
	res, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputText() != greedyText || res.Status != "completed" || !strings.HasPrefix(res.ID, "resp-") {
		t.Errorf("response %q (%s, %s)", res.OutputText(), res.Status, res.ID)
	}
	if res.Usage.InputTokens != promptIDs || res.Usage.OutputTokens != greedyLen {
		t.Errorf("usage %+v", res.Usage)
	}

	stream := client.Responses.NewStreaming(context.Background(), params)
	var text strings.Builder
	var types []string
	var completed responses.Response
	for stream.Next() {
		ev := stream.Current()
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.AsResponseOutputTextDelta().Delta)
		case "response.completed":
			completed = ev.AsResponseCompleted().Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if text.String() != greedyText || completed.OutputText() != greedyText {
		t.Errorf("streamed %q, completed %q", text.String(), completed.OutputText())
	}
	want := []string{"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added", "response.output_text.delta"}
	for i, w := range want {
		if i >= len(types) || types[i] != w {
			t.Fatalf("events %v, want them to start %v", types, want)
		}
	}
	end := []string{"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"}
	if len(types) < len(end) || strings.Join(types[len(types)-len(end):], " ") != strings.Join(end, " ") {
		t.Errorf("events %v, want them to end %v", types, end)
	}

	// A cut reply is incomplete.
	params.MaxOutputTokens = openai.Int(2)
	res, err = client.Responses.New(context.Background(), params)
	if err != nil || res.Status != "incomplete" || res.IncompleteDetails.Reason != "max_output_tokens" {
		t.Errorf("max_output_tokens 2: %v %s %+v", err, res.Status, res.IncompleteDetails)
	}
}

func TestResponsesTools(t *testing.T) {
	_, client := harmonyServer(t)
	var schema map[string]any
	json.Unmarshal([]byte(cityParams), &schema)
	params := responses.ResponseNewParams{
		Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather in Paris?")},
		Instructions:    openai.String("Use the tools."),
		Tools:           []responses.ToolUnionParam{responses.ToolParamOfFunction("get_weather", schema, true)},
		ToolChoice:      responses.ResponseNewParamsToolChoiceUnion{OfFunctionTool: &responses.ToolChoiceFunctionParam{Name: "get_weather"}},
		MaxOutputTokens: openai.Int(200),
		Temperature:     openai.Float(1),
	}
	res, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	var call responses.ResponseFunctionToolCall
	for _, item := range res.Output {
		if item.Type == "function_call" {
			call = item.AsFunctionCall()
		}
	}
	if call.Name != "get_weather" || call.CallID == "" {
		t.Fatalf("no call in %+v", res.Output)
	}
	checkCityArgs(t, call.Arguments)

	// Streamed: each call's item, its argument deltas and their end. At
	// temperature 1 the model may call the tool more than once (parallel
	// calls), so the deltas are matched to their item by output index.
	stream := client.Responses.NewStreaming(context.Background(), params)
	args := map[int64]*strings.Builder{}
	doneArgs := map[int64]string{}
	var kinds []string
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.output_item.added":
			kinds = append(kinds, ev.Item.Type)
		case "response.function_call_arguments.delta":
			d := ev.AsResponseFunctionCallArgumentsDelta()
			if args[d.OutputIndex] == nil {
				args[d.OutputIndex] = &strings.Builder{}
			}
			args[d.OutputIndex].WriteString(d.Delta)
		case "response.function_call_arguments.done":
			d := ev.AsResponseFunctionCallArgumentsDone()
			doneArgs[d.OutputIndex] = d.Arguments
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if len(kinds) == 0 || len(doneArgs) != len(kinds) {
		t.Errorf("streamed items %v, %d of them with their arguments done", kinds, len(doneArgs))
	}
	for _, k := range kinds {
		if k != "function_call" {
			t.Errorf("streamed items %v, want only function calls (tool_choice names the function)", kinds)
			break
		}
	}
	for i, done := range doneArgs {
		if args[i] == nil || args[i].String() != done {
			t.Errorf("item %d: argument deltas %v, done %q", i, args[i], done)
		}
		checkCityArgs(t, done)
	}

	// The call and its output go back as input items.
	output := responses.ResponseInputItemParamOfFunctionCallOutput(`{"temperature": 21}`)
	output.OfFunctionCallOutput.CallID = openai.String(call.CallID)
	params.Input = responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{
		responses.ResponseInputItemParamOfMessage("Weather in Paris?", responses.EasyInputMessageRoleUser),
		responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
		output,
	}}
	params.ToolChoice = responses.ResponseNewParamsToolChoiceUnion{OfToolChoiceMode: openai.Opt(responses.ToolChoiceOptionsNone)}
	params.MaxOutputTokens = openai.Int(5)
	if _, err := client.Responses.New(context.Background(), params); err != nil {
		t.Errorf("the call and its output as input: %v", err)
	}
}

func TestResponsesErrors(t *testing.T) {
	_, hs, _ := newServer(t, Config{})
	for _, c := range []struct{ body, param, code, msg string }{
		{`{"input":"x","previous_response_id":"resp_1"}`, "previous_response_id", "unsupported_parameter", "stores no responses"},
		{`{}`, "input", "missing_required_parameter", "input is missing"},
		{`{"input":[{"type":"function_call_output","call_id":"c","output":"1"}]}`, "input[0].call_id", "invalid_value", "answers no earlier function_call"},
		{`{"input":[{"type":"image_generation_call"}]}`, "input[0].type", "unsupported_value", "not supported"},
		{`{"input":"x","text":{"format":{"type":"json_schema","name":"a","schema":{"type":"string","pattern":"x"}}}}`, "text.format.schema", "unsupported_schema", `keyword "pattern"`},
	} {
		body := post(t, hs.URL+"/v1/responses", c.body, http.StatusBadRequest)
		checkError(t, body, "invalid_request_error", c.param, c.code, c.msg)
	}
}
