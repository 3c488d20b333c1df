package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/minerva-ml/minerva/runtime/chat"
)

// The Responses API (POST /v1/responses), which gpt-oss's own
// documentation uses: input as a string or a list of items (messages,
// function calls and their outputs), instructions, tools, structured
// output (text.format), and streaming as typed events. It runs on the
// chat machinery; nothing is stored, so previous_response_id is refused.

type responsesRequestJSON struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"`
	Instructions       *string         `json:"instructions"`
	Stream             *bool           `json:"stream"`
	MaxOutputTokens    *int64          `json:"max_output_tokens"`
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"top_p"`
	Tools              json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls"`
	PreviousResponseID *string         `json:"previous_response_id"`
	Background         *bool           `json:"background"`
	Reasoning          *struct {
		Effort *string `json:"effort"`
	} `json:"reasoning"`
	Text *struct {
		Format json.RawMessage `json:"format"`
	} `json:"text"`
}

type responseItemJSON struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
}

func parseResponsesRequest(body []byte) (*request, *apiError) {
	var in responsesRequestJSON
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if e := checkFields(body, refusedResponsesFields); e != nil {
		return nil, e
	}
	r := &request{Model: in.Model, N: 1, Stream: in.Stream != nil && *in.Stream}
	if in.PreviousResponseID != nil && *in.PreviousResponseID != "" {
		return nil, invalid("previous_response_id", "unsupported_parameter", "previous_response_id is not supported: Minerva stores no responses; send the whole conversation as input")
	}
	if in.Background != nil && *in.Background {
		return nil, invalid("background", "unsupported_parameter", "background responses are not supported")
	}
	if in.MaxOutputTokens != nil {
		if e := r.setMaxTokens(*in.MaxOutputTokens, "max_output_tokens"); e != nil {
			return nil, e
		}
	}
	if e := inRange(in.Temperature, "temperature", 0, 2); e != nil {
		return nil, e
	}
	if e := inRange(in.TopP, "top_p", 0, 1); e != nil {
		return nil, e
	}
	r.Sampling.Temperature, r.Sampling.TopP = in.Temperature, in.TopP
	if in.Reasoning != nil && in.Reasoning.Effort != nil {
		r.ReasoningEffort = *in.Reasoning.Effort
		if r.ReasoningEffort == "minimal" {
			r.ReasoningEffort = "low"
		}
		if !contains(chat.ReasoningEfforts, r.ReasoningEffort) {
			return nil, invalid("reasoning.effort", "invalid_value", "reasoning.effort must be low, medium or high, not %q", *in.Reasoning.Effort)
		}
	}
	// Tools are flat here ({"type": "function", "name": ...}); the chat
	// API nests them under "function".
	var tools []map[string]json.RawMessage
	if !isNull(in.Tools) {
		if err := json.Unmarshal(in.Tools, &tools); err != nil {
			return nil, invalid("tools", "invalid_type", "tools must be an array of function tools")
		}
	}
	nested := make([]map[string]any, len(tools))
	for i, t := range tools {
		typ := strings.Trim(string(t["type"]), `"`)
		fn := map[string]json.RawMessage{}
		for _, k := range []string{"name", "description", "parameters", "strict"} {
			if v, ok := t[k]; ok {
				fn[k] = v
			}
		}
		nested[i] = map[string]any{"type": typ, "function": fn}
	}
	toolsJSON, _ := json.Marshal(nested)
	choice := in.ToolChoice
	var named struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if json.Unmarshal(choice, &named) == nil && named.Type == "function" {
		choice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": named.Name}})
	}
	if e := parseTools(toolsJSON, choice, in.ParallelToolCalls, r); e != nil {
		return nil, e
	}
	if in.Text != nil && !isNull(in.Text.Format) {
		var f map[string]json.RawMessage
		json.Unmarshal(in.Text.Format, &f)
		rf := in.Text.Format
		if strings.Trim(string(f["type"]), `"`) == "json_schema" {
			rf, _ = json.Marshal(map[string]any{"type": "json_schema", "json_schema": map[string]json.RawMessage{"name": f["name"], "schema": f["schema"], "strict": f["strict"]}})
		}
		var e *apiError
		if r.Grammar, e = parseResponseFormat(rf); e != nil {
			e.Param = str(strings.Replace(*e.Param, "response_format.json_schema", "text.format", 1))
			return nil, e
		}
	}
	if in.Instructions != nil && *in.Instructions != "" {
		r.Messages = append(r.Messages, chat.Message{Role: chat.RoleDeveloper, Content: *in.Instructions})
	}
	msgs, e := inputMessages(in.Input)
	if e != nil {
		return nil, e
	}
	r.Messages = append(r.Messages, msgs...)
	return r, nil
}

// inputMessages turns input into a conversation.
func inputMessages(raw json.RawMessage) ([]chat.Message, *apiError) {
	if isNull(raw) {
		return nil, invalid("input", "missing_required_parameter", "input is missing")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, invalid("input", "invalid_value", "input is empty")
		}
		return []chat.Message{{Role: chat.RoleUser, Content: s}}, nil
	}
	var items []responseItemJSON
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return nil, invalid("input", "invalid_type", "input must be a string or a non-empty array of items")
	}
	var out []chat.Message
	calls := map[string]string{}
	for i, it := range items {
		p := fmt.Sprintf("input[%d]", i)
		switch it.Type {
		case "", "message":
			switch it.Role {
			case chat.RoleSystem, chat.RoleDeveloper, chat.RoleUser, chat.RoleAssistant:
			default:
				return nil, invalid(p+".role", "invalid_value", "%s.role must be system, developer, user or assistant, not %q", p, it.Role)
			}
			text, e := itemText(it.Content, p+".content")
			if e != nil {
				return nil, e
			}
			out = append(out, chat.Message{Role: it.Role, Content: text})
		case "function_call":
			if !functionName.MatchString(it.Name) {
				return nil, invalid(p+".name", "invalid_value", "%s.name %q is not a function name", p, it.Name)
			}
			calls[it.CallID] = it.Name
			call := chat.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments}
			if n := len(out); n > 0 && out[n-1].Role == chat.RoleAssistant && len(out[n-1].ToolCalls) > 0 {
				out[n-1].ToolCalls = append(out[n-1].ToolCalls, call)
			} else {
				out = append(out, chat.Message{Role: chat.RoleAssistant, ToolCalls: []chat.ToolCall{call}})
			}
		case "function_call_output":
			name, ok := calls[it.CallID]
			if !ok {
				return nil, invalid(p+".call_id", "invalid_value", "%s.call_id %q answers no earlier function_call item", p, it.CallID)
			}
			text, e := itemText(it.Output, p+".output")
			if e != nil {
				return nil, e
			}
			out = append(out, chat.Message{Role: chat.RoleTool, ToolName: name, Content: text})
		case "reasoning":
			// Earlier reasoning is dropped, as harmony drops it.
		default:
			return nil, invalid(p+".type", "unsupported_value", "%s.type %q is not supported; use message, function_call, function_call_output or reasoning", p, it.Type)
		}
	}
	return out, nil
}

// itemText reads a string or a list of input_text/output_text parts.
func itemText(raw json.RawMessage, param string) (string, *apiError) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []struct {
		Type string  `json:"type"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "invalid_type", "%s must be a string or an array of text parts", param)
	}
	var texts []string
	for j, part := range parts {
		if (part.Type != "input_text" && part.Type != "output_text" && part.Type != "text") || part.Text == nil {
			return "", invalid(fmt.Sprintf("%s[%d]", param, j), "unsupported_value", "%s[%d]: only text parts (input_text, output_text) are supported, not %q", param, j, part.Type)
		}
		texts = append(texts, *part.Text)
	}
	return strings.Join(texts, "\n"), nil
}

var refusedResponsesFields = map[string]refusal{
	"conversation": {why: "conversations are not stored; send the whole conversation as input"},
	"prompt":       {why: "stored prompts are not supported"},
}

func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	r, body, leave, e := s.intake(w, r)
	if e == nil {
		defer leave()
		var req *request
		if req, e = parseResponsesRequest(body); e == nil {
			if e = s.checkModel(req.Model); e == nil {
				var j *job
				if j, e = s.chatJob(req, "responses"); e == nil {
					out := &responsesOutput{w: w, stream: req.Stream, sse: newSSE(w), newID: s.newID,
						resp: responseJSON{ID: s.newID("resp"), Object: "response", CreatedAt: time.Now().Unix(), Status: "in_progress", Model: s.m.Name, Output: []map[string]any{}}}
					e = s.generate(r.Context(), j, out, true)
				}
			}
		}
	}
	if e != nil {
		writeError(w, e)
	}
}

type responseJSON struct {
	ID                string `json:"id"`
	Object            string `json:"object"`
	CreatedAt         int64  `json:"created_at"`
	Status            string `json:"status"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Model  string           `json:"model"`
	Output []map[string]any `json:"output"`
	Usage  *responseUsage   `json:"usage,omitempty"`
}

type responseUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// responsesOutput builds the response's output items as the reply comes:
// reasoning, a message, a function call; streaming, it sends the events
// that open, fill and close each item.
type responsesOutput struct {
	w      http.ResponseWriter
	stream bool
	sse    *sse
	newID  func(string) string
	resp   responseJSON
	seq    int
	// The open item: its kind ("reasoning", "message", "function_call"),
	// its index in Output and its text so far.
	kind  string
	index int
	text  strings.Builder
}

func (o *responsesOutput) event(typ string, fields map[string]any) error {
	if !o.stream {
		return nil
	}
	fields["type"] = typ
	fields["sequence_number"] = o.seq
	o.seq++
	b, err := json.Marshal(fields)
	if err != nil {
		panic("BUG: an event does not marshal: " + err.Error())
	}
	if _, err := fmt.Fprintf(o.sse.w, "event: %s\ndata: %s\n\n", typ, b); err != nil {
		return err
	}
	return o.sse.rc.Flush()
}

func (o *responsesOutput) begin() error {
	if !o.stream {
		return nil
	}
	if err := o.sse.begin(); err != nil {
		return err
	}
	if err := o.event("response.created", map[string]any{"response": o.resp}); err != nil {
		return err
	}
	return o.event("response.in_progress", map[string]any{"response": o.resp})
}

func (o *responsesOutput) start(int) error { return nil }

// open closes the open item unless it is of kind, and opens a new one.
func (o *responsesOutput) open(kind string, item map[string]any) (bool, error) {
	if o.kind == kind {
		return false, nil
	}
	if err := o.close(); err != nil {
		return false, err
	}
	o.kind, o.index = kind, len(o.resp.Output)
	o.text.Reset()
	item["status"] = "in_progress"
	o.resp.Output = append(o.resp.Output, item)
	if err := o.event("response.output_item.added", map[string]any{"output_index": o.index, "item": item}); err != nil {
		return true, err
	}
	if kind == "message" {
		return true, o.event("response.content_part.added", map[string]any{"item_id": item["id"], "output_index": o.index, "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
	}
	return true, nil
}

func (o *responsesOutput) item() map[string]any { return o.resp.Output[o.index] }

func (o *responsesOutput) content(_ int, t string, _ []tokenLogprobJSON) error {
	if _, err := o.open("message", map[string]any{"type": "message", "id": o.newID("msg"), "role": "assistant", "content": []any{}}); err != nil {
		return err
	}
	o.text.WriteString(t)
	return o.event("response.output_text.delta", map[string]any{"item_id": o.item()["id"], "output_index": o.index, "content_index": 0, "delta": t})
}

func (o *responsesOutput) reasoning(_ int, t string) error {
	if _, err := o.open("reasoning", map[string]any{"type": "reasoning", "id": o.newID("rs"), "summary": []any{}}); err != nil {
		return err
	}
	o.text.WriteString(t)
	return o.event("response.reasoning_text.delta", map[string]any{"item_id": o.item()["id"], "output_index": o.index, "content_index": 0, "delta": t})
}

func (o *responsesOutput) toolCall(_ int, id, name, args string) error {
	if id != "" {
		if err := o.close(); err != nil {
			return err
		}
		if _, err := o.open("function_call", map[string]any{"type": "function_call", "id": o.newID("fc"), "call_id": id, "name": name, "arguments": ""}); err != nil {
			return err
		}
	}
	o.text.WriteString(args)
	return o.event("response.function_call_arguments.delta", map[string]any{"item_id": o.item()["id"], "output_index": o.index, "delta": args})
}

// close finishes the open item.
func (o *responsesOutput) close() error {
	if o.kind == "" {
		return nil
	}
	item, text := o.item(), o.text.String()
	item["status"] = "completed"
	id := item["id"]
	var err error
	switch o.kind {
	case "message":
		part := map[string]any{"type": "output_text", "text": text, "annotations": []any{}}
		item["content"] = []any{part}
		err = o.event("response.output_text.done", map[string]any{"item_id": id, "output_index": o.index, "content_index": 0, "text": text})
		if err == nil {
			err = o.event("response.content_part.done", map[string]any{"item_id": id, "output_index": o.index, "content_index": 0, "part": part})
		}
	case "reasoning":
		item["content"] = []any{map[string]any{"type": "reasoning_text", "text": text}}
		err = o.event("response.reasoning_text.done", map[string]any{"item_id": id, "output_index": o.index, "content_index": 0, "text": text})
	case "function_call":
		item["arguments"] = text
		err = o.event("response.function_call_arguments.done", map[string]any{"item_id": id, "output_index": o.index, "arguments": text})
	}
	o.kind = ""
	if err != nil {
		return err
	}
	return o.event("response.output_item.done", map[string]any{"output_index": o.index, "item": item})
}

func (o *responsesOutput) finish(_ int, reason string) error {
	if err := o.close(); err != nil {
		return err
	}
	o.resp.Status = "completed"
	if reason == "length" {
		o.resp.Status = "incomplete"
		o.resp.IncompleteDetails = &struct {
			Reason string `json:"reason"`
		}{"max_output_tokens"}
	}
	return nil
}

func (o *responsesOutput) end(u usage) error {
	ru := &responseUsage{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	ru.InputTokensDetails.CachedTokens = u.PromptTokensDetails.CachedTokens
	o.resp.Usage = ru
	if !o.stream {
		return writeJSON(o.w, o.resp)
	}
	typ := "response.completed"
	if o.resp.Status == "incomplete" {
		typ = "response.incomplete"
	}
	return o.event(typ, map[string]any{"response": o.resp})
}

func (o *responsesOutput) fail(e *apiError) {
	if !o.stream {
		writeError(o.w, e)
		return
	}
	o.resp.Status = "failed"
	o.event("response.failed", map[string]any{"response": o.resp})
	o.event("error", map[string]any{"code": e.Code, "message": e.Message, "param": e.Param})
}
