package chat

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestHarmonyTools: tool definitions, a call and its result render as
// the harmony format's documentation shows them (github.com/openai/
// harmony, docs/format.md, "Function calling"): the developer message's
// "# Tools" section of TypeScript-like declarations in the functions
// namespace, the system message's note on the commentary channel, the
// call on the commentary channel to=functions.NAME ending <|call|>, and
// the result from functions.NAME to=assistant.
func TestHarmonyTools(t *testing.T) {
	tok := fortuneTokenizer(t)
	h := harmonyFormat(t, tok)
	tools := []Tool{
		{Name: "get_location", Description: "Gets the location of the user."},
		{Name: "get_current_weather", Description: "Gets the current weather in the provided location.", Parameters: json.RawMessage(`{
			"type": "object",
			"properties": {
				"location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
				"format": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"}
			},
			"required": ["location"]
		}`)},
	}
	msgs := []Message{
		{Role: RoleSystem, Content: "Always respond in riddles"},
		{Role: RoleUser, Content: "What is the weather like in SF?"},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{Name: "get_current_weather", Arguments: `{"location":"San Francisco"}`}}},
		{Role: RoleTool, ToolName: "get_current_weather", Content: `{"sunny": true, "temperature": 20}`},
	}
	ids, err := h.Render(msgs, Options{Tools: tools, CurrentDate: "2025-06-28"})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, id := range ids {
		b, _ := tok.TokenBytes(int(id))
		sb.Write(b)
	}
	want := "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n" +
		"Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: medium\n\n" +
		"# Valid channels: analysis, commentary, final. Channel must be included for every message.\n" +
		"Calls to these tools must go to the commentary channel: 'functions'.<|end|>" +
		"<|start|>developer<|message|># Instructions\n\nAlways respond in riddles\n\n" +
		"# Tools\n\n## functions\n\nnamespace functions {\n\n" +
		"// Gets the location of the user.\ntype get_location = () => any;\n\n" +
		"// Gets the current weather in the provided location.\ntype get_current_weather = (_: {\n" +
		"// The city and state, e.g. San Francisco, CA\nlocation: string,\n" +
		"format?: \"celsius\" | \"fahrenheit\", // default: celsius\n}) => any;\n\n" +
		"} // namespace functions<|end|>" +
		"<|start|>user<|message|>What is the weather like in SF?<|end|>" +
		"<|start|>assistant<|channel|>commentary to=functions.get_current_weather <|constrain|>json<|message|>{\"location\":\"San Francisco\"}<|call|>" +
		"<|start|>functions.get_current_weather to=assistant<|channel|>commentary<|message|>{\"sunny\": true, \"temperature\": 20}<|end|>" +
		"<|start|>assistant"
	if got := sb.String(); got != want {
		t.Errorf("rendered\n%s\nwant\n%s", got, want)
	}
	// The other formats refuse tools rather than drop them.
	if _, err := newPlain(tok).Render(msgs[:2], Options{Tools: tools}); err == nil || !strings.Contains(err.Error(), "does not render tools") {
		t.Errorf("plain with tools: %v", err)
	}
}

// TestTurnToolCall: a reply that calls a function reaches a ToolSink
// with the name and the arguments.
func TestHarmonyParserToolCall(t *testing.T) {
	tok := fortuneTokenizer(t)
	h := harmonyFormat(t, tok)
	p := h.NewParser()
	var name, args strings.Builder
	for _, id := range encode(tok, "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\":\"Paris\"}<|call|>") {
		d := p.Push(int32(id))
		if d.Channel == Commentary && d.Recipient != "" && d.Text != "" {
			if name.Len() == 0 {
				name.WriteString(strings.TrimPrefix(d.Recipient, FunctionRecipient))
			}
			args.WriteString(d.Text)
		}
	}
	if name.String() != "get_weather" || args.String() != `{"city":"Paris"}` {
		t.Errorf("call %q(%q)", name.String(), args.String())
	}
}

// TestLlama3Tools compares with the prompt Llama 3.1's chat template
// renders for tools (tools_in_user_message, its default), a call and its
// result.
func TestLlama3Tools(t *testing.T) {
	tok := llama3Tokenizer(t)
	f, err := New("llama3", tok)
	if err != nil {
		t.Fatal(err)
	}
	tools := []Tool{{Name: "get_weather", Description: "Weather for a city.", Parameters: json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`)}}
	msgs := []Message{
		{Role: RoleSystem, Content: "Be brief."},
		{Role: RoleUser, Content: "Weather in Paris?"},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{Name: "get_weather", Arguments: `{"city": "Paris"}`}}},
		{Role: RoleTool, ToolName: "get_weather", Content: `{"temperature": 21}`},
	}
	got, err := f.Render(msgs, Options{Tools: tools, CurrentDate: "2024-07-26"})
	if err != nil {
		t.Fatal(err)
	}
	want := "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n" +
		"Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>" +
		"<|start_header_id|>user<|end_header_id|>\n\n" +
		"Given the following functions, please respond with a JSON for a function call with its proper arguments that best answers the given prompt.\n\n" +
		"Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n" +
		"{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n        \"description\": \"Weather for a city.\",\n" +
		"        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"city\": {\n                    \"type\": \"string\"\n                }\n            },\n" +
		"            \"required\": [\n                \"city\"\n            ]\n        }\n    }\n}\n\n" +
		"Weather in Paris?<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|>" +
		"<|start_header_id|>ipython<|end_header_id|>\n\n{\"temperature\": 21}<|eot_id|>" +
		"<|start_header_id|>assistant<|end_header_id|>\n\n"
	if s := string(mustDecode(t, tok, got)); s != want {
		t.Errorf("render:\n got %q\nwant %q", s, want)
	}

	// The reply: a JSON call becomes a call; other text is the answer.
	tp := f.(interface{ NewToolParser() Parser })
	for _, c := range []struct{ reply, call, args, text string }{
		{` {"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>`, "get_weather", `{"city":"Paris"}`, ""},
		{`It is sunny.<|eot_id|>`, "", "", "It is sunny."},
		{`{not json<|eot_id|>`, "", "", "{not json"},
	} {
		p := tp.NewToolParser()
		var call, args, text strings.Builder
		add := func(d Delta) {
			if d.Channel == Commentary && d.Recipient != "" {
				call.WriteString(strings.TrimPrefix(d.Recipient, FunctionRecipient))
				args.WriteString(d.Text)
			} else {
				text.WriteString(d.Text)
			}
		}
		for _, id := range encode(tok, c.reply) {
			add(p.Push(int32(id)))
		}
		add(p.Flush())
		if call.String() != c.call || args.String() != c.args || strings.TrimSpace(text.String()) != c.text {
			t.Errorf("%q: call %q(%q), text %q", c.reply, call.String(), args.String(), text.String())
		}
	}
}

// TestHarmonyToolsVector renders the conversation of the published
// vector harmony_17 (openai-harmony's tool-calling example, with the
// gpt-oss tokenizer's ids) and compares token ids. The vector also holds
// the reply's analysis message, which a conversation of Messages cannot
// carry (earlier reasoning is dropped), and the final answer after the
// result: those are cut from the expected text.
func TestHarmonyToolsVector(t *testing.T) {
	tok := gptOSSTokenizer(t)
	h := harmonyFormat(t, tok)
	v := harmonyVectors(t)["harmony_17"]
	want := strings.Replace(v.Text, "<|start|>assistant<|channel|>analysis<|message|>Need to use function get_current_weather.<|end|>", "", 1)
	i := strings.Index(want, "<|start|>assistant<|channel|>final")
	if i < 0 {
		t.Fatalf("the vector changed: %q", v.Text)
	}
	want = want[:i] + "<|start|>assistant"
	tools := []Tool{
		{Name: "get_location", Description: "Gets the location of the user."},
		{Name: "get_current_weather", Description: "Gets the current weather in the provided location.", Parameters: json.RawMessage(`{"type":"object","properties":{"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},"format":{"type":"string","enum":["celsius","fahrenheit"],"default":"celsius"}},"required":["location"]}`)},
	}
	msgs := []Message{
		{Role: RoleDeveloper, Content: "Always respond in riddles"},
		{Role: RoleUser, Content: "What is the weather like in SF?"},
		{Role: RoleAssistant, ToolCalls: []ToolCall{{Name: "get_current_weather", Arguments: `{"location":"San Francisco, CA"}`}}},
		{Role: RoleTool, ToolName: "get_current_weather", Content: `{"sunny": true, "temperature": 20}`},
	}
	opts := fixtureOptions
	opts.Tools = tools
	got, err := h.Render(msgs, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, encode(tok, want)) {
		t.Errorf("render:\n got %q\nwant %q", mustDecode(t, tok, got), want)
	}
	// The vector's ids agree with the text (the rendering's tokens are
	// the published ones up to the analysis message).
	n := len(encode(tok, v.Text[:strings.Index(v.Text, "<|start|>assistant<|channel|>analysis")]))
	if !slices.Equal(got[:n], v.IDs[:n]) {
		t.Errorf("the first %d ids differ from the vector's", n)
	}
}

// TestLlama3ToolJSONAsTemplate: Llama 3.1's chat template
// (meta-llama/Llama-3.1-8B-Instruct's tokenizer_config.json) writes each
// tool with `t | tojson(indent=4)`, which transformers runs as
// json.dumps(ensure_ascii=False, indent=4): '<', '>', '&' and non-ASCII
// text stay as they are, where Go's encoder would write \u003c.
func TestLlama3ToolJSONAsTemplate(t *testing.T) {
	got := llama3ToolList([]Tool{{Name: "f", Description: "Temperature in °C for <city> & country", Parameters: json.RawMessage(`{"type":"object","properties":{"q":{"description":"a <b>"}}}`)}})
	want := "{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"f\",\n        \"description\": \"Temperature in °C for <city> & country\",\n" +
		"        \"parameters\": {\n            \"type\": \"object\",\n            \"properties\": {\n                \"q\": {\n                    \"description\": \"a <b>\"\n                }\n            }\n        }\n    }\n}\n\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
