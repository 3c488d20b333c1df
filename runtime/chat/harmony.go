package chat

import (
	"fmt"
	"strings"
	"time"

	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// Harmony is OpenAI's chat format for gpt-oss, rendered as
// github.com/openai/harmony renders it (docs/format.md):
//
//	<|start|>system<|message|>{identity}
//	Knowledge cutoff: {cutoff}
//	Current date: {date}
//
//	Reasoning: {effort}
//
//	# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>
//	<|start|>developer<|message|># Instructions
//
//	{system and developer messages}<|end|>
//	<|start|>user<|message|>{text}<|end|>
//	<|start|>assistant<|channel|>final<|message|>{earlier reply}<|end|>
//	...
//	<|start|>assistant
//
// (without the line breaks between messages). Earlier assistant turns
// keep only their final answer: harmony drops the chain of thought once a
// reply has ended in the final channel, and a stored reply ends with
// <|end|>, not the <|return|> it was sampled with. Message text is
// encoded with special tokens off, so a user cannot forge a header.
//
// The reply opens with a header (<|channel|>analysis<|message|>); the
// model may write several messages, each closed by <|end|> and opened by
// <|start|>assistant, and ends with <|return|> (done) or <|call|> (a
// tool call).
type harmony struct {
	tok                                                *tokenizer.Tokenizer
	start, message, end, channel, ret, call, constrain int32
}

const (
	harmonyIdentity = "You are ChatGPT, a large language model trained by OpenAI."
	harmonyCutoff   = "2024-06"
	harmonyChannels = "# Valid channels: analysis, commentary, final. Channel must be included for every message."
)

func newHarmony(tok *tokenizer.Tokenizer) (*harmony, error) {
	ids, err := tokenIDs(tok, "harmony", "<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|return|>", "<|call|>", "<|constrain|>")
	if err != nil {
		return nil, err
	}
	return &harmony{tok: tok, start: ids[0], message: ids[1], end: ids[2], channel: ids[3], ret: ids[4], call: ids[5], constrain: ids[6]}, nil
}

func (h *harmony) Name() string { return "harmony" }

func (h *harmony) StopTokens() []int32 { return []int32{h.ret, h.call} }

// SystemText is the body of the system message for opts.
func harmonySystemText(opts Options) string {
	identity := opts.ModelIdentity
	if identity == "" {
		identity = harmonyIdentity
	}
	cutoff := opts.KnowledgeCutoff
	if cutoff == "" {
		cutoff = harmonyCutoff
	}
	date := opts.CurrentDate
	if date == "" {
		date = time.Now().Format("2006-01-02")
	}
	effort := opts.ReasoningEffort
	if effort == "" {
		effort = "medium"
	}
	// Sections are joined by a blank line, lines within one by a newline
	// (harmony's Render<SystemContent>).
	text := identity + "\nKnowledge cutoff: " + cutoff + "\nCurrent date: " + date +
		"\n\nReasoning: " + effort +
		"\n\n" + harmonyChannels
	if len(opts.Tools) > 0 {
		text += "\nCalls to these tools must go to the commentary channel: 'functions'."
	}
	return text
}

func (h *harmony) Render(msgs []Message, opts Options) ([]int32, error) {
	if err := checkRoles(msgs); err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var instructions []string
	for i, m := range msgs {
		if m.Role == RoleSystem || m.Role == RoleDeveloper {
			instructions = append(instructions, m.Content)
		}
		if m.Role == RoleTool && m.ToolName == "" {
			return nil, fmt.Errorf("%w: message %d is a tool result that names no function", ErrBadConversation, i)
		}
	}
	b := newBudget(h.tok, opts)
	ids := make([]int32, 0, 64)
	ids = h.header(ids, "system")
	ids = h.text(ids, harmonySystemText(opts))
	ids = append(ids, h.end)
	var developer []string
	if len(instructions) > 0 {
		developer = append(developer, "# Instructions\n\n"+strings.Join(instructions, "\n\n"))
	}
	if len(opts.Tools) > 0 {
		developer = append(developer, harmonyTools(opts.Tools))
	}
	if len(developer) > 0 {
		ids = h.header(ids, "developer")
		ids = b.text(ids, strings.Join(developer, "\n\n"))
		ids = append(ids, h.end)
	}
	for _, m := range msgs {
		switch m.Role {
		case RoleUser:
			ids = h.header(ids, "user")
		case RoleAssistant:
			if len(m.ToolCalls) > 0 {
				// The text that came with calls is their preamble, on
				// the commentary channel; each call ends with <|call|>.
				if m.Content != "" {
					ids = h.assistantHeader(ids, Commentary, "")
					ids = b.text(ids, m.Content)
					ids = append(ids, h.end)
				}
				for _, c := range m.ToolCalls {
					ids = h.assistantHeader(ids, Commentary, FunctionRecipient+c.Name)
					ids = b.text(ids, c.Arguments)
					ids = append(ids, h.call)
				}
				continue
			}
			ids = h.assistantHeader(ids, Final, "")
		case RoleTool:
			// <|start|>functions.NAME to=assistant<|channel|>commentary<|message|>
			ids = append(ids, h.start)
			ids = h.text(ids, FunctionRecipient+m.ToolName+" to=assistant")
			ids = append(ids, h.channel)
			ids = h.text(ids, Commentary)
			ids = append(ids, h.message)
		default:
			continue
		}
		ids = b.text(ids, m.Content)
		ids = append(ids, h.end)
	}
	ids = append(ids, h.start)
	return b.done(h.text(ids, "assistant"))
}

// assistantHeader appends <|start|>assistant<|channel|>CHANNEL<|message|>,
// or for a call <|start|>assistant<|channel|>commentary to=RECIPIENT
// <|constrain|>json<|message|>.
func (h *harmony) assistantHeader(ids []int32, channel, recipient string) []int32 {
	ids = append(ids, h.start)
	ids = h.text(ids, "assistant")
	ids = append(ids, h.channel)
	if recipient == "" {
		ids = h.text(ids, channel)
		return append(ids, h.message)
	}
	ids = h.text(ids, channel+" to="+recipient+" ")
	ids = append(ids, h.constrain)
	ids = h.text(ids, "json")
	return append(ids, h.message)
}

// CallPrefix is the start of a reply that calls the function name: what
// follows is its arguments. Serve appends it to a prompt to force a call
// (tool_choice naming a function).
func (h *harmony) CallPrefix(name string) []int32 {
	ids := []int32{h.channel}
	ids = h.text(ids, Commentary+" to="+FunctionRecipient+name+" ")
	ids = append(ids, h.constrain)
	ids = h.text(ids, "json")
	return append(ids, h.message)
}

// CallOpening is the start of a reply that calls one of the functions,
// up to the name, and CallHeaderEnd what follows the name and a space:
// serve forces a call among several tools (tool_choice required) by
// ending the prompt with the opening and constraining the name.
func (h *harmony) CallOpening() []int32 {
	return h.text([]int32{h.channel}, Commentary+" to="+FunctionRecipient)
}

// NextCallOpening opens another call after a call closed with <|end|>
// (parallel calls): a new assistant message, up to the name.
func (h *harmony) NextCallOpening() []int32 {
	ids := h.text([]int32{h.start}, "assistant")
	return append(ids, h.CallOpening()...)
}

func (h *harmony) CallHeaderEnd() []int32 {
	ids := h.text([]int32{h.constrain}, "json")
	return append(ids, h.message)
}

// header appends <|start|>{role}<|message|>.
func (h *harmony) header(ids []int32, role string) []int32 {
	ids = append(ids, h.start)
	ids = h.text(ids, role)
	return append(ids, h.message)
}

func (h *harmony) text(ids []int32, s string) []int32 {
	return toInt32(ids, h.tok.EncodeOrdinary(s))
}

// maxHeaderTokens bounds a reply header: a model that never writes
// <|message|> has its header shown as text instead of waiting forever.
const maxHeaderTokens = 64

func (h *harmony) NewParser() Parser {
	return &harmonyParser{h: h, state: inHeader, dec: newTextDecoder(h.tok)}
}

type harmonyState int

const (
	inHeader    harmonyState = iota // after <|start|> (the prompt ends in one)
	inContent                       // after <|message|>
	expectStart                     // after <|end|>
	done                            // after <|return|> or <|call|>
)

// harmonyParser is a streaming parser of an assistant's reply, like
// openai_harmony's StreamableParser started with role assistant, but
// lenient: a malformed reply degrades to text rather than an error.
type harmonyParser struct {
	h      *harmony
	state  harmonyState
	header []int
	// The current message's channel and recipient, and how many
	// messages the reply has opened.
	channel, recipient string
	messages           int
	dec                textDecoder
}

func (p *harmonyParser) Push(id int32) Delta {
	h := p.h
	switch p.state {
	case done:
		return Delta{}
	case expectStart:
		p.header = p.header[:0]
		switch id {
		case h.start:
			p.state = inHeader
		case h.ret, h.call:
			p.state = done
		default:
			// Not harmony: read it as a header, which falls back to text
			// if no <|message|> comes.
			p.state = inHeader
			return p.pushHeader(id)
		}
		return Delta{}
	case inHeader:
		return p.pushHeader(id)
	}
	// inContent
	switch id {
	case h.end, h.ret, h.call:
		d := p.delta(p.dec.flush())
		p.state = expectStart
		if id != h.end {
			p.state = done
		}
		return d
	}
	if h.tok.IsSpecial(int(id)) {
		// Another special token (the model's end of sequence, a stop
		// token): structure, not text, as in the plain format.
		return p.delta("")
	}
	return p.delta(p.dec.next(id))
}

func (p *harmonyParser) pushHeader(id int32) Delta {
	h := p.h
	switch id {
	case h.message:
		p.channel, p.recipient = parseHarmonyHeader(p.headerText())
		p.messages++
		p.state = inContent
		p.dec = newTextDecoder(h.tok)
		return Delta{}
	case h.end, h.ret, h.call:
		// A header with no content: nothing to show.
		p.state = expectStart
		if id != h.end {
			p.state = done
		}
		return Delta{}
	}
	p.header = append(p.header, int(id))
	if len(p.header) > maxHeaderTokens {
		// Treat what came as the answer's text.
		p.channel, p.recipient = Final, ""
		p.state = inContent
		p.dec = newTextDecoder(h.tok)
		var sb strings.Builder
		for _, t := range p.header {
			sb.WriteString(p.dec.next(int32(t)))
		}
		return p.delta(sb.String())
	}
	return Delta{}
}

func (p *harmonyParser) headerText() string {
	var sb strings.Builder
	for _, t := range p.header {
		if b, ok := p.h.tok.TokenBytes(t); ok {
			sb.Write(b)
		}
	}
	return sb.String()
}

// delta is text of the current message; a token that ends inside a
// character still carries its channel.
func (p *harmonyParser) delta(text string) Delta {
	return Delta{Channel: p.channel, Recipient: p.recipient, Text: text, Message: p.messages}
}

func (p *harmonyParser) Flush() Delta {
	if p.state != inContent {
		return Delta{}
	}
	return p.delta(p.dec.flush())
}

// parseHarmonyHeader reads a message header such as
// "assistant<|channel|>commentary to=functions.f <|constrain|>json": the
// channel follows <|channel|> up to a space or '<'; "to=X" names the
// recipient, which may also stand in the role position. A header without
// a channel is the final answer.
func parseHarmonyHeader(s string) (channel, recipient string) {
	channel = Final
	if i := strings.Index(s, "<|channel|>"); i >= 0 {
		rest := s[i+len("<|channel|>"):]
		end := strings.IndexFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '<' })
		if end < 0 {
			end = len(rest)
		}
		if rest[:end] != "" {
			channel = rest[:end]
		}
		s = s[:i] + " " + rest[end:]
	}
	for _, f := range strings.Fields(s) {
		if r, ok := strings.CutPrefix(f, "to="); ok {
			recipient = r
		}
	}
	return channel, recipient
}
