package serve

import (
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/minerva-ml/minerva/runtime/chat"
	"github.com/minerva-ml/minerva/runtime/jsonschema"
)

// Function calling. The chat format renders the tools and the
// conversation's calls and results (chat/tools.go, chat/llama3tools.go),
// the model calls a function (harmony: on the commentary channel,
// to=functions.NAME, ending with <|call|>; Llama 3.1: a reply that is
// {"name": ..., "parameters": ...}), and the reply returns it as
// tool_calls. A
// strict tool's arguments are constrained by its parameters' schema,
// any other's to a JSON object (structured.go). tool_choice naming a
// function forces the call: harmony's reply starts with the call's
// header, so the model writes only the arguments; Llama 3.1's whole reply
// is constrained to the call object. "required" forces a call to one of
// the tools: harmony's reply starts with the header up to the name,
// which is constrained to one of the names (jsonschema.OneOf), then the
// header's end is written for the model and the chosen tool's arguments
// constrained; Llama 3.1's reply is constrained to a OneOf of the call
// objects, where the name decides the arguments' grammar. Under "auto",
// a Llama 3.1 reply that opens an object is constrained from its '{' to
// that same OneOf.
//
// parallel_tool_calls (default true) lets a harmony reply end a call
// with <|end|> rather than <|call|>, which says another call follows: the
// next message's header is written for the model up to the name, the
// name is constrained to the tools' and the arguments to the tool's.
// false leaves <|call|> (or <|return|>) the only tokens after a call's
// arguments, so the reply holds one call. Llama 3.1's format has one call per reply (its template
// refuses more, and llama.cpp's grammar for it allows one), so the
// field changes nothing there.

type toolJSON struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

type toolCallJSON struct {
	// Index is set in streamed deltas only.
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// OpenAI's rule for function names.
var functionName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// parseTools reads tools and tool_choice into r.
func parseTools(rawTools, rawChoice json.RawMessage, parallel *bool, r *request) *apiError {
	r.OneCall = parallel != nil && !*parallel
	var tools []toolJSON
	if !isNull(rawTools) {
		if err := json.Unmarshal(rawTools, &tools); err != nil {
			return invalid("tools", "invalid_type", "tools must be an array of {\"type\": \"function\", \"function\": {...}}")
		}
	}
	r.ToolGrammars = map[string]*jsonschema.Node{}
	for i, t := range tools {
		p := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return invalid(p+".type", "invalid_value", "%s: only function tools are supported ({\"type\": \"function\", \"function\": {...}}), not type %q", p, t.Type)
		}
		if t.Function == nil {
			return invalid(p+".function", "missing_required_parameter", "%s.function is missing: give the function's name, description and parameters", p)
		}
		f := t.Function
		if !functionName.MatchString(f.Name) {
			return invalid(p+".function.name", "invalid_value", "%s.function.name %q must be 1 to 64 letters, digits, _ or -", p, f.Name)
		}
		if _, dup := r.ToolGrammars[f.Name]; dup {
			return invalid(p+".function.name", "invalid_value", "%s: two tools are named %q", p, f.Name)
		}
		g := jsonschema.AnyObject()
		if f.Strict != nil && *f.Strict && !isNull(f.Parameters) {
			n, err := jsonschema.Compile(f.Parameters)
			if err != nil {
				return invalid(p+".function.parameters", "unsupported_schema", "%s.function.parameters: %v", p, err)
			}
			g = n
		}
		r.ToolGrammars[f.Name] = g
		r.Tools = append(r.Tools, chat.Tool{Name: f.Name, Description: f.Description, Parameters: f.Parameters})
	}
	if isNull(rawChoice) {
		return nil
	}
	var mode string
	if json.Unmarshal(rawChoice, &mode) == nil {
		switch mode {
		case "auto":
		case "none":
			r.Tools = nil // the model is not told of them, so it cannot call
		case "required":
			switch len(r.Tools) {
			case 0:
				return invalid("tool_choice", "invalid_value", "tool_choice \"required\" needs tools: give the functions the model must choose among")
			case 1:
				r.ForceTool = r.Tools[0].Name
			default:
				r.ForceAny = true
			}
		default:
			return invalid("tool_choice", "invalid_value", "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}, not %q", mode)
		}
		return nil
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(rawChoice, &named); err != nil || named.Type != "function" {
		return invalid("tool_choice", "invalid_value", "tool_choice must be none, auto, required or {\"type\": \"function\", \"function\": {\"name\": ...}}")
	}
	if _, ok := r.ToolGrammars[named.Function.Name]; !ok {
		return invalid("tool_choice", "invalid_value", "tool_choice names %q, which is not among the tools", named.Function.Name)
	}
	r.ForceTool = named.Function.Name
	return nil
}

// parseToolCalls reads an assistant message's tool_calls.
func (m messageJSON) parseToolCalls(p string, callNames map[string]string) (chat.Message, *apiError) {
	var calls []toolCallJSON
	if err := json.Unmarshal(m.ToolCalls, &calls); err != nil {
		return chat.Message{}, invalid(p+".tool_calls", "invalid_type", "%s.tool_calls must be an array of {\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}", p)
	}
	msg := chat.Message{Role: chat.RoleAssistant}
	if !isNull(m.Content) {
		text, e := contentText(m.Content, p+".content")
		if e != nil {
			return chat.Message{}, e
		}
		msg.Content = text
	}
	for j, c := range calls {
		if !functionName.MatchString(c.Function.Name) {
			return chat.Message{}, invalid(fmt.Sprintf("%s.tool_calls[%d].function.name", p, j), "invalid_value", "%s.tool_calls[%d]: function name %q is not a function name", p, j, c.Function.Name)
		}
		callNames[c.ID] = c.Function.Name
		msg.ToolCalls = append(msg.ToolCalls, chat.ToolCall{ID: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
	}
	return msg, nil
}

// parseToolResult reads a role tool message: the function it answers is
// the earlier call with its tool_call_id.
func (m messageJSON) parseToolResult(p string, callNames map[string]string) (chat.Message, *apiError) {
	if m.ToolCallID == nil {
		return chat.Message{}, invalid(p+".tool_call_id", "missing_required_parameter", "%s.tool_call_id is missing: a tool message answers an earlier tool call", p)
	}
	name, ok := callNames[*m.ToolCallID]
	if !ok {
		return chat.Message{}, invalid(p+".tool_call_id", "invalid_value", "%s.tool_call_id %q answers no earlier assistant tool call", p, *m.ToolCallID)
	}
	text, e := contentText(m.Content, p+".content")
	if e != nil {
		return chat.Message{}, e
	}
	return chat.Message{Role: chat.RoleTool, ToolName: name, Content: text}, nil
}

// toolParserFormat is a format whose calls are JSON replies (Llama 3.1).
type toolParserFormat interface {
	NewToolParser() chat.Parser
}

// callPrefixer is a format that can start a reply with a call (harmony):
// to a named function, or up to the name (CallOpening) and from after it
// (CallHeaderEnd).
type callPrefixer interface {
	CallPrefix(name string) []int32
	CallOpening() []int32
	NextCallOpening() []int32
	CallHeaderEnd() []int32
}

// llamaCalls is Llama 3.1's call to one of the tools:
// {"name":"NAME","parameters":ARGS}, compact, the name deciding ARGS's
// grammar.
func llamaCalls(tools []chat.Tool, grammars map[string]*jsonschema.Node) *jsonschema.Node {
	heads := make([][]byte, len(tools))
	bodies := make([]*jsonschema.Node, len(tools))
	for i, t := range tools {
		name, _ := json.Marshal(t.Name)
		heads[i] = []byte(`{"name":` + string(name) + `,"parameters":`)
		bodies[i] = grammars[t.Name]
	}
	return jsonschema.OneOf(heads, bodies, []byte("}"))
}

// harmonyNames is one of the tools' names as harmony's header writes it,
// followed by the space before <|constrain|>.
func harmonyNames(tools []chat.Tool) *jsonschema.Node {
	heads := make([][]byte, len(tools))
	for i, t := range tools {
		heads[i] = []byte(t.Name + " ")
	}
	return jsonschema.OneOf(heads, nil, nil)
}
