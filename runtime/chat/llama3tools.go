package chat

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"
)

// Llama 3.1's JSON tool calls, as its chat template renders them (with
// tools in the first user message, the template's default):
//
//	<|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n{system}<|eot_id|>
//	<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, ...\n\n{tool as JSON, indented}\n\n{first user message}<|eot_id|>
//	<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "f", "parameters": {...}}<|eot_id|>
//	<|start_header_id|>ipython<|end_header_id|>\n\n{result}<|eot_id|>
//
// The model calls a function by answering with that JSON object alone.

const llama3ToolsPrompt = "Given the following functions, please respond with a JSON for a function call " +
	"with its proper arguments that best answers the given prompt.\n\n" +
	`Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.` +
	"Do not use variables.\n\n"

// renderTools renders a conversation with tools.
func (f *llama3) renderTools(msgs []Message, opts Options) ([]int32, error) {
	b := newBudget(f.tok, opts)
	ids := []int32{f.bos}
	var system []string
	for _, m := range msgs {
		if m.Role == RoleSystem || m.Role == RoleDeveloper {
			system = append(system, strings.TrimSpace(m.Content))
		}
	}
	date := time.Now()
	if opts.CurrentDate != "" {
		date, _ = time.Parse("2006-01-02", opts.CurrentDate)
	}
	ids = f.header(ids, RoleSystem)
	ids = b.text(ids, "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: "+date.Format("02 Jan 2006")+"\n\n"+strings.Join(system, "\n\n"))
	ids = append(ids, f.eot)
	toolsDone := false
	for _, m := range msgs {
		switch m.Role {
		case RoleUser:
			ids = f.header(ids, RoleUser)
			text := strings.TrimSpace(m.Content)
			if !toolsDone && len(opts.Tools) > 0 {
				text = llama3ToolsPrompt + llama3ToolList(opts.Tools) + text
				toolsDone = true
			}
			ids = b.text(ids, text)
		case RoleAssistant:
			ids = f.header(ids, RoleAssistant)
			if len(m.ToolCalls) > 0 {
				c := m.ToolCalls[0] // the format has one call per message
				name, _ := json.Marshal(c.Name)
				ids = b.text(ids, `{"name": `+string(name)+`, "parameters": `+c.Arguments+"}")
			} else {
				ids = b.text(ids, strings.TrimSpace(m.Content))
			}
		case RoleTool:
			ids = f.header(ids, "ipython")
			ids = b.text(ids, m.Content)
		default:
			continue
		}
		ids = append(ids, f.eot)
	}
	return b.done(f.header(ids, RoleAssistant))
}

// llama3ToolList is each tool as the template's tojson(indent=4) writes
// it, followed by a blank line.
func llama3ToolList(tools []Tool) string {
	var sb strings.Builder
	for _, t := range tools {
		type fn struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Parameters  json.RawMessage `json:"parameters,omitempty"`
		}
		v := struct {
			Type     string `json:"type"`
			Function fn     `json:"function"`
		}{"function", fn{t.Name, t.Description, t.Parameters}}
		// transformers' tojson is json.dumps(ensure_ascii=False): no
		// HTML escaping of '<', '>', '&'.
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		enc.Encode(v)
		sb.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
		sb.WriteString("\n\n")
	}
	return sb.String()
}

// NewToolParser follows a reply that may be a tool call: text that opens
// with '{' is held back, and at the end, if it is {"name": ...,
// "parameters": {...}}, it becomes a call (Delta on the commentary
// channel to functions.NAME); otherwise it is the answer.
func (f *llama3) NewToolParser() Parser {
	return &llama3ToolParser{text: &textParser{tok: f.tok, dec: newTextDecoder(f.tok)}}
}

type llama3ToolParser struct {
	text    *textParser
	held    strings.Builder
	holding bool
	decided bool // the reply is text
}

func (p *llama3ToolParser) Push(id int32) Delta {
	d := p.text.Push(id)
	return p.route(d)
}

func (p *llama3ToolParser) route(d Delta) Delta {
	if p.decided || d.Text == "" {
		if p.holding {
			return Delta{}
		}
		return d
	}
	if !p.holding {
		t := strings.TrimLeft(d.Text, " \n\t")
		if t == "" {
			p.held.WriteString(d.Text)
			return Delta{}
		}
		if t[0] != '{' {
			p.decided = true
			d.Text = p.held.String() + d.Text
			p.held.Reset()
			return d
		}
		p.holding = true
	}
	p.held.WriteString(d.Text)
	return Delta{}
}

func (p *llama3ToolParser) Flush() Delta {
	d := p.route(p.text.Flush())
	if !p.holding {
		if rest := p.held.String(); rest != "" {
			d.Channel, d.Text = Final, rest+d.Text
		}
		return d
	}
	text := p.held.String()
	var call struct {
		Name       string          `json:"name"`
		Parameters json.RawMessage `json:"parameters"`
		Arguments  json.RawMessage `json:"arguments"`
	}
	dec := json.NewDecoder(strings.NewReader(text))
	if dec.Decode(&call) == nil && call.Name != "" && !dec.More() {
		args := call.Parameters
		if args == nil {
			args = call.Arguments
		}
		if args == nil {
			args = json.RawMessage("{}")
		}
		var compact bytes.Buffer
		if json.Compact(&compact, args) == nil {
			args = compact.Bytes()
		}
		return Delta{Channel: Commentary, Recipient: FunctionRecipient + call.Name, Text: string(args)}
	}
	return Delta{Channel: Final, Text: text}
}
