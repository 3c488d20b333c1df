// Package chat turns conversations into prompt tokens and a model's reply
// tokens back into text, in the chat format the model was trained on:
// harmony for gpt-oss, the Llama 3 header format, or plain completion for
// base models. The format comes from the model's own files (Detect), so
// callers never hard-code one.
//
// A Format renders a conversation to token ids ending where the
// assistant's reply begins, names the tokens that end a reply, and makes
// Parsers that split a streamed reply into channels: the final answer,
// the reasoning (harmony's analysis channel) and commentary.
package chat

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// Roles of the messages a conversation may hold.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Channels a reply's text goes to.
const (
	// Final is the answer shown to the user; formats without channels
	// put all text here.
	Final = "final"
	// Analysis is harmony's chain of thought: the reasoning.
	Analysis = "analysis"
	// Commentary is harmony's channel for tool calls and preambles.
	Commentary = "commentary"
)

// Message is one turn of a conversation.
type Message struct {
	// Role is RoleSystem, RoleDeveloper, RoleUser or RoleAssistant.
	// System and developer messages are the instructions ("system
	// prompt"); in harmony they become the developer message.
	Role    string
	Content string
	// ToolCalls are an assistant message's calls (harmony).
	ToolCalls []ToolCall
	// ToolName is the function a RoleTool message answers.
	ToolName string
}

// ErrBadConversation is matched (errors.Is) by every error about the
// conversation itself, as opposed to the model.
var ErrBadConversation = errors.New("bad conversation")

// Options are the settings a format may render into the prompt.
type Options struct {
	// ReasoningEffort is harmony's "low", "medium" or "high"; "" is
	// medium, the model's default.
	ReasoningEffort string
	// CurrentDate is harmony's "Current date:" line as YYYY-MM-DD; ""
	// is today, in local time.
	CurrentDate string
	// KnowledgeCutoff is harmony's "Knowledge cutoff:" line; "" is
	// gpt-oss's 2024-06.
	KnowledgeCutoff string
	// ModelIdentity opens harmony's system message; "" is the identity
	// gpt-oss was trained with. Change the assistant's persona with a
	// system or developer message instead.
	ModelIdentity string
	// Tools are the functions the model may call (harmony renders them
	// in the developer message).
	Tools []Tool
	// MaxTokens, when above 0, bounds the rendered prompt (the context):
	// Render stops encoding as soon as the prompt passes it and returns
	// an error matching ErrTooLong, instead of encoding all of a long
	// message first.
	MaxTokens int
}

// ErrTooLong is matched (errors.Is) when a rendered prompt would have
// more than Options.MaxTokens tokens.
var ErrTooLong = errors.New("the prompt is too long")

// ReasoningEfforts lists the accepted ReasoningEffort values.
var ReasoningEfforts = []string{"low", "medium", "high"}

// Validate checks the options.
func (o Options) Validate() error {
	if o.ReasoningEffort != "" && !contains(ReasoningEfforts, o.ReasoningEffort) {
		return fmt.Errorf("%w: reasoning effort %q is not one of %s", ErrBadConversation, o.ReasoningEffort, strings.Join(ReasoningEfforts, ", "))
	}
	if o.CurrentDate != "" {
		if _, err := time.Parse("2006-01-02", o.CurrentDate); err != nil {
			return fmt.Errorf("%w: current date %q is not a YYYY-MM-DD date", ErrBadConversation, o.CurrentDate)
		}
	}
	return nil
}

// Format is a chat format bound to a tokenizer.
type Format interface {
	// Name is "harmony", "llama3" or "plain".
	Name() string
	// Render returns the prompt for a conversation: its messages, then
	// the start of the assistant's reply.
	Render(msgs []Message, opts Options) ([]int32, error)
	// StopTokens are the ids that end a reply.
	StopTokens() []int32
	// NewParser returns a parser for one reply.
	NewParser() Parser
}

// Delta is text a reply's token completed.
type Delta struct {
	// Channel is Final, Analysis or Commentary.
	Channel string
	// Recipient is who a harmony message is addressed to ("" for the
	// user; "functions.name" for a tool call).
	Recipient string
	Text      string
	// Message counts the reply's messages (harmony's headers): two calls
	// to the same function in one reply differ by it.
	Message int
}

// Parser follows one reply as it is generated.
type Parser interface {
	// Push takes the next token (stop tokens included) and returns the
	// text it completes, which may be empty.
	Push(id int32) Delta
	// Flush returns the text held back at the end of the reply: the
	// first bytes of a character that never completed, as U+FFFD.
	Flush() Delta
}

// Formats lists the names New accepts, and "auto" for Detect.
var Formats = []string{"auto", "harmony", "llama3", "plain"}

// New returns the named format for tok.
func New(name string, tok *tokenizer.Tokenizer) (Format, error) {
	switch name {
	case "harmony":
		return newHarmony(tok)
	case "llama3":
		return newLlama3(tok)
	case "plain":
		return newPlain(tok), nil
	}
	return nil, fmt.Errorf("unknown chat format %q: use one of %s", name, strings.Join(Formats, ", "))
}

// Reply collects a whole reply by channel, for callers that do not stream.
type Reply struct {
	Final, Analysis, Commentary strings.Builder
}

// Add appends a delta to its channel.
func (r *Reply) Add(d Delta) {
	switch d.Channel {
	case Analysis:
		r.Analysis.WriteString(d.Text)
	case Commentary:
		r.Commentary.WriteString(d.Text)
	default:
		r.Final.WriteString(d.Text)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// budget encodes the text of a prompt against Options.MaxTokens: once the
// prompt passes it, err is set and later texts are not encoded.
type budget struct {
	tok *tokenizer.Tokenizer
	max int
	err error
}

func newBudget(tok *tokenizer.Tokenizer, opts Options) *budget {
	return &budget{tok: tok, max: opts.MaxTokens}
}

// text appends the tokens of s (special tokens as plain text).
func (b *budget) text(ids []int32, s string) []int32 {
	if b.err != nil {
		return ids
	}
	if b.max <= 0 {
		return toInt32(ids, b.tok.EncodeOrdinary(s))
	}
	enc, err := b.tok.EncodeOrdinaryLimit(s, max(b.max-len(ids), 0))
	if err != nil {
		b.err = fmt.Errorf("%w: it is more than %d tokens", ErrTooLong, b.max)
		return ids
	}
	return toInt32(ids, enc)
}

// done returns the prompt, or the error when it passed the limit (checked
// again for the tokens appended outside text).
func (b *budget) done(ids []int32) ([]int32, error) {
	if b.err == nil && b.max > 0 && len(ids) > b.max {
		b.err = fmt.Errorf("%w: it is more than %d tokens", ErrTooLong, b.max)
	}
	if b.err != nil {
		return nil, b.err
	}
	return ids, nil
}

func toInt32(dst []int32, ids []int) []int32 {
	for _, id := range ids {
		dst = append(dst, int32(id))
	}
	return dst
}

// tokenIDs looks up special tokens a format needs.
func tokenIDs(tok *tokenizer.Tokenizer, format string, names ...string) ([]int32, error) {
	out := make([]int32, len(names))
	for i, n := range names {
		id, ok := tok.TokenID(n)
		if !ok {
			return nil, fmt.Errorf("the %s chat format needs the token %s, which the tokenizer lacks; choose another format (--chat-format plain)", format, n)
		}
		out[i] = int32(id)
	}
	return out, nil
}

// checkRoles rejects conversations a format cannot render.
func checkRoles(msgs []Message) error {
	if len(msgs) == 0 {
		return fmt.Errorf("%w: there are no messages", ErrBadConversation)
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleDeveloper, RoleUser, RoleAssistant, RoleTool:
		default:
			return fmt.Errorf("%w: message %d has role %q; use system, developer, user or assistant", ErrBadConversation, i, m.Role)
		}
	}
	return nil
}

// textDecoder streams one message's text, skipping ids the tokenizer
// does not know: a model's vocabulary can be wider than its tokenizer's
// (gpt-oss has 201,088 rows for 200,019 tokens), and such ids carry no
// text.
type textDecoder struct {
	tok *tokenizer.Tokenizer
	dec *tokenizer.StreamDecoder
}

func newTextDecoder(tok *tokenizer.Tokenizer) textDecoder {
	return textDecoder{tok: tok, dec: tok.NewStreamDecoder()}
}

func (d textDecoder) next(id int32) string {
	s, err := d.dec.Next(int(id))
	if err != nil {
		return ""
	}
	return s
}

func (d textDecoder) flush() string { return d.dec.Flush() }
