package chat

import (
	"encoding/json"
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
