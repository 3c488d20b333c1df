package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/sample"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// Turn is one reply on a session: the prompt, the limits and the parser
// that turns the reply's tokens into text. Run does everything a turn
// needs, for `minerva run` and `minerva serve` alike: it reuses the part
// of the prompt the KV cache still holds exactly, generates, routes the
// parser's channels (the answer to Sink.Content, harmony's reasoning to
// Sink.Reasoning, tool calls nowhere), and ends the answer at a stop
// string.
type Turn struct {
	// Prompt is the whole prompt: the session keeps whatever prefix of
	// it the cache can resume from and runs the rest.
	Prompt    []int32
	MaxTokens int
	// StopTokens end the reply (the format's end-of-reply tokens and the
	// model's end-of-sequence ids); nil for none.
	StopTokens map[int32]bool
	// StopStrings end the answer before the first of them.
	StopStrings []string
	// Sampler picks each token; nil is greedy. Its context (the repeat
	// penalty's window, the presence and frequency counts) is set to the
	// prompt.
	Sampler Sampler
	// Parser follows the reply: a Format's parser, or NewTextParser for
	// raw completion. It is required.
	Parser Parser
}

// Sampler picks tokens with a context: *sample.Sampler, or a wrapper
// around one.
type Sampler interface {
	engine.Sampler
	SetContext(prompt []int32)
}

var _ Sampler = (*sample.Sampler)(nil)

// Sink receives a turn's text as it is generated. An error from it ends
// the turn and is returned by Run.
type Sink interface {
	// Content is the answer, with stop strings cut.
	Content(text string) error
	// Reasoning is harmony's analysis channel.
	Reasoning(text string) error
}

// TokenSink is a Sink that also hears each generated token (stop tokens
// excluded) with the delta the parser made of it, before the delta's
// text is routed: a token of the answer has Channel Final and no
// Recipient, even when its text is empty (it ends inside a character).
// serve uses it for logprobs.
type TokenSink interface {
	Sink
	Token(id int32, d Delta) error
}

// TurnResult says how a turn went.
type TurnResult struct {
	engine.Stats
	// Reused is how many prompt tokens came from the KV cache: they were
	// not run again. The prompt's other tokens were (Stats.PromptTokens).
	Reused int
	// StopString says a stop string ended the reply (StoppedBy "stop");
	// otherwise a stop token did.
	StopString bool
}

// FinishReason is OpenAI's finish_reason: "length" when the token limit
// or the end of the context ended the reply, else "stop" (a stop token
// or a stop string).
func (r TurnResult) FinishReason() string {
	if r.StoppedBy == "length" || r.StoppedBy == "context" {
		return "length"
	}
	return "stop"
}

// Run generates the reply on s. It returns the error that ended the turn
// early: ctx's, the backend's or the sink's. A stop string is a normal
// end.
func (t Turn) Run(ctx context.Context, s *engine.Session, sink Sink) (TurnResult, error) {
	if t.Parser == nil || len(t.Prompt) == 0 {
		return TurnResult{}, fmt.Errorf("BUG: a turn needs a prompt and a parser")
	}
	reused := s.Reuse(t.Prompt)
	opts := engine.GenOptions{MaxTokens: t.MaxTokens, Stop: t.StopTokens}
	if t.Sampler != nil {
		t.Sampler.SetContext(t.Prompt)
		opts.Sampler = t.Sampler
	}
	stops := NewStopStrings(t.StopStrings)
	stopped := false // by a stop string
	// calls counts the reply's tool calls: a call is a message of its own.
	calls, callMsg := -1, -1
	route := func(d Delta) error {
		switch {
		case d.Text == "":
			return nil
		case d.Channel == Analysis:
			return sink.Reasoning(d.Text)
		case d.Channel == Commentary && d.Recipient != "":
			// A tool call: the caller runs it, if it takes calls.
			if ts, ok := sink.(ToolSink); ok && strings.HasPrefix(d.Recipient, FunctionRecipient) {
				if calls < 0 || d.Message != callMsg {
					calls, callMsg = calls+1, d.Message
				}
				return ts.ToolCall(calls, strings.TrimPrefix(d.Recipient, FunctionRecipient), d.Text)
			}
			return nil
		}
		text, stop := stops.Push(d.Text)
		if text != "" {
			if err := sink.Content(text); err != nil {
				return err
			}
		}
		if stop {
			stopped = true
			return engine.ErrStopGeneration
		}
		return nil
	}
	tokens, _ := sink.(TokenSink)
	st, err := engine.Generate(ctx, s, t.Prompt[reused:], opts, func(id int32, stop bool) error {
		d := t.Parser.Push(id)
		if tokens != nil && !stop {
			if err := tokens.Token(id, d); err != nil {
				return err
			}
		}
		return route(d)
	})
	res := TurnResult{Stats: st, Reused: reused, StopString: stopped}
	if err != nil || stopped {
		return res, err
	}
	// The text held back at the end: a character's first bytes, or the
	// start of what might have been a stop string.
	if err := route(t.Parser.Flush()); err != nil {
		if errors.Is(err, engine.ErrStopGeneration) {
			res.StoppedBy, res.StopString = "stop", true
			return res, nil
		}
		return res, err
	}
	if rest := stops.Flush(); rest != "" {
		return res, sink.Content(rest)
	}
	return res, nil
}

// NewTextParser follows raw completion: every token's text goes to the
// final channel, except special tokens (structure, not text) and ids the
// tokenizer does not know. It is the plain format's parser.
func NewTextParser(tok *tokenizer.Tokenizer) Parser {
	return newPlain(tok).NewParser()
}
