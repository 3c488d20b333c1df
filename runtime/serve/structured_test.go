package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
)

const weatherSchema = `{
  "type": "object",
  "properties": {
    "city": {"type": "string"},
    "unit": {"enum": ["celsius", "fahrenheit"]},
    "days": {"type": "integer"},
    "rain": {"type": "boolean"},
    "hours": {"type": "array", "items": {"$ref": "#/$defs/hour"}}
  },
  "required": ["city", "unit", "days", "rain"],
  "additionalProperties": false,
  "$defs": {"hour": {"type": "object", "properties": {"t": {"type": "number"}}, "required": ["t"]}}
}`

// checkWeather is the oracle: encoding/json, strict about fields, and
// the schema's rules by hand.
func checkWeather(t *testing.T, text string) {
	t.Helper()
	var v struct {
		City  *string `json:"city"`
		Unit  *string `json:"unit"`
		Days  *int64  `json:"days"`
		Rain  *bool   `json:"rain"`
		Hours []struct {
			T *float64 `json:"t"`
		} `json:"hours"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || dec.More() {
		t.Errorf("%q does not decode as the schema: %v", text, err)
		return
	}
	if v.City == nil || v.Unit == nil || v.Days == nil || v.Rain == nil || (*v.Unit != "celsius" && *v.Unit != "fahrenheit") {
		t.Errorf("%q misses a required field or the enum", text)
	}
	for _, h := range v.Hours {
		if h.T == nil {
			t.Errorf("%q: an hour lacks t", text)
		}
	}
}

// TestStructuredOutput: the fortune model knows nothing of JSON, yet
// sampled at temperature 1 its answers parse and match the schema.
func TestStructuredOutput(t *testing.T) {
	_, _, client := newServer(t, Config{})
	params := openai.ChatCompletionNewParams{
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.UserMessage("The weather:")},
		MaxTokens:   openai.Int(400),
		Temperature: openai.Float(1),
		Seed:        openai.Int(11),
		N:           openai.Int(4),
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
			JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "weather", Strict: openai.Bool(true), Schema: json.RawMessage(weatherSchema)},
		}},
	}
	res, err := client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range res.Choices {
		if c.FinishReason != "stop" {
			t.Errorf("choice %d: finish %s: %q", i, c.FinishReason, c.Message.Content)
			continue
		}
		checkWeather(t, c.Message.Content)
	}

	// Streamed, the deltas make the same kind of document.
	params.N = openai.Int(1)
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	defer stream.Close()
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	checkWeather(t, acc.Choices[0].Message.Content)

	// json_object: any JSON object.
	params.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &shared.ResponseFormatJSONObjectParam{}}
	params.N = openai.Int(3)
	res, err = client.Chat.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range res.Choices {
		var obj map[string]any
		if c.FinishReason == "stop" && json.Unmarshal([]byte(c.Message.Content), &obj) != nil {
			t.Errorf("json_object choice %d: %q is no JSON object", i, c.Message.Content)
		}
		if c.FinishReason != "stop" && !bytes.HasPrefix([]byte(c.Message.Content), []byte("{")) {
			t.Errorf("json_object choice %d (%s): %q", i, c.FinishReason, c.Message.Content)
		}
	}
}

func TestStructuredOutputRefused(t *testing.T) {
	_, hs, _ := newServer(t, Config{})
	user := `"messages":[{"role":"user","content":"x"}]`
	for _, c := range []struct{ body, param, code, msg string }{
		{`{` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"string","minLength":2}}}}`, "response_format.json_schema.schema", "unsupported_schema", `keyword "minLength"`},
		{`{` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"object","properties":{"x":{"oneOf":[]}}}}}}`, "response_format.json_schema.schema", "unsupported_schema", `#/properties/x: keyword "oneOf"`},
		{`{` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"a"}}}`, "response_format.json_schema.schema", "missing_required_parameter", "needs json_schema.schema"},
		{`{` + user + `,"response_format":{"type":"yaml"}}`, "response_format.type", "invalid_value", `not "yaml"`},
		{`{` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"$ref":"#/$defs/no"}}}}`, "response_format.json_schema.schema", "invalid_value", "names no definition"},
	} {
		body := post(t, hs.URL+"/v1/chat/completions", c.body, 400)
		checkError(t, body, "invalid_request_error", c.param, c.code, c.msg)
	}
}
