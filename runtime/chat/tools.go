package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// RoleTool is a tool's result, answering an assistant's tool call.
const RoleTool = "tool"

// Tool is a function the model may call.
type Tool struct {
	Name, Description string
	// Parameters is the JSON Schema of the arguments (an object); nil
	// for none.
	Parameters json.RawMessage
}

// ToolCall is a call an assistant message made.
type ToolCall struct {
	ID, Name string
	// Arguments is the JSON text of the arguments.
	Arguments string
}

// ToolSink is a Sink that receives tool calls: the call's index in the
// reply (a reply may hold several: parallel_tool_calls), the function's
// name and its arguments' text as it is generated. Without it, tool
// calls are dropped.
type ToolSink interface {
	Sink
	ToolCall(call int, name, arguments string) error
}

// FunctionRecipient is the harmony recipient of a call to a function.
const FunctionRecipient = "functions."

// checkTools refuses tools for a format that cannot render them.
func checkTools(format string, msgs []Message, opts Options) error {
	if len(opts.Tools) > 0 {
		return fmt.Errorf("%w: the %s format does not render tools in Minerva (harmony does)", ErrBadConversation, format)
	}
	for i, m := range msgs {
		if m.Role == RoleTool || len(m.ToolCalls) > 0 {
			return fmt.Errorf("%w: message %d holds a tool call or result, which the %s format does not render in Minerva (harmony does)", ErrBadConversation, i, format)
		}
	}
	return nil
}

// harmonyTools renders the tools as harmony's developer message section
// (TypeScript-like declarations in the functions namespace).
func harmonyTools(tools []Tool) string {
	var b strings.Builder
	b.WriteString("# Tools\n\n## functions\n\nnamespace functions {\n\n")
	for _, t := range tools {
		if t.Description != "" {
			for _, line := range strings.Split(t.Description, "\n") {
				b.WriteString("// " + line + "\n")
			}
		}
		var params map[string]any
		if len(t.Parameters) > 0 {
			dec := json.NewDecoder(bytes.NewReader(t.Parameters))
			dec.UseNumber()
			dec.Decode(&params)
		}
		props, _ := params["properties"].(map[string]any)
		if len(props) == 0 {
			b.WriteString("type " + t.Name + " = () => any;\n\n")
			continue
		}
		b.WriteString("type " + t.Name + " = (_: ")
		b.WriteString(tsObject(params, t.Parameters))
		b.WriteString(") => any;\n\n")
	}
	b.WriteString("} // namespace functions")
	return b.String()
}

// tsObject writes an object schema's properties, one a line, in the
// order of the schema's text.
func tsObject(schema map[string]any, raw json.RawMessage) string {
	props, _ := schema["properties"].(map[string]any)
	required := map[string]bool{}
	if list, ok := schema["required"].([]any); ok {
		for _, r := range list {
			if s, ok := r.(string); ok {
				required[s] = true
			}
		}
	}
	var b strings.Builder
	b.WriteString("{\n")
	for _, name := range propertyOrder(props, raw) {
		p, _ := props[name].(map[string]any)
		if d, ok := p["description"].(string); ok && d != "" {
			b.WriteString("// " + d + "\n")
		}
		b.WriteString(name)
		if !required[name] {
			b.WriteString("?")
		}
		b.WriteString(": " + tsType(p) + ",")
		if d, ok := p["default"]; ok {
			dj, _ := json.Marshal(d)
			b.WriteString(" // default: " + strings.Trim(string(dj), `"`))
		}
		b.WriteString("\n")
	}
	b.WriteString("}")
	return b.String()
}

func tsType(p map[string]any) string {
	if enum, ok := p["enum"].([]any); ok && len(enum) > 0 {
		parts := make([]string, len(enum))
		for i, v := range enum {
			j, _ := json.Marshal(v)
			parts[i] = string(j)
		}
		return strings.Join(parts, " | ")
	}
	switch p["type"] {
	case "string":
		return "string"
	case "number", "integer":
		return "number"
	case "boolean":
		return "boolean"
	case "null":
		return "null"
	case "array":
		items, _ := p["items"].(map[string]any)
		return tsType(items) + "[]"
	case "object":
		if props, ok := p["properties"].(map[string]any); ok && len(props) > 0 {
			return tsObject(p, nil)
		}
		return "object"
	}
	return "any"
}

// propertyOrder lists props' names in the order they appear in raw (the
// schema's text), or sorted when raw does not say.
func propertyOrder(props map[string]any, raw json.RawMessage) []string {
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	pos := map[string]int{}
	for _, n := range names {
		k, _ := json.Marshal(n)
		pos[n] = bytes.Index(raw, append(k, ':'))
		if pos[n] < 0 {
			pos[n] = bytes.Index(raw, k)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if pos[names[i]] != pos[names[j]] {
			return pos[names[i]] < pos[names[j]]
		}
		return names[i] < names[j]
	})
	return names
}
