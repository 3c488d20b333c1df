package chat

import (
	"strings"

	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// plain is completion without a chat format, for base models: the
// prompt is the messages' text joined by newlines, roles dropped, and
// the reply is the continuation. Stop tokens come from the model's
// end-of-sequence ids, which the caller adds.
type plain struct{ tok *tokenizer.Tokenizer }

func newPlain(tok *tokenizer.Tokenizer) *plain { return &plain{tok: tok} }

func (f *plain) Name() string { return "plain" }

func (f *plain) StopTokens() []int32 { return nil }

func (f *plain) Render(msgs []Message, opts Options) ([]int32, error) {
	if err := checkRoles(msgs); err != nil {
		return nil, err
	}
	if err := checkTools("plain", msgs, opts); err != nil {
		return nil, err
	}
	texts := make([]string, len(msgs))
	for i, m := range msgs {
		texts[i] = m.Content
	}
	b := newBudget(f.tok, opts)
	return b.done(b.text(nil, strings.Join(texts, "\n")))
}

func (f *plain) NewParser() Parser { return &textParser{tok: f.tok, dec: newTextDecoder(f.tok)} }

// textParser sends every token's text to the final channel, except
// special tokens, which are structure (headers, end of text), not text.
type textParser struct {
	tok *tokenizer.Tokenizer
	dec textDecoder
}

func (p *textParser) Push(id int32) Delta {
	if p.tok.IsSpecial(int(id)) {
		return Delta{}
	}
	// A token that ends inside a character still belongs to the answer.
	return Delta{Channel: Final, Text: p.dec.next(id)}
}

func (p *textParser) Flush() Delta {
	if s := p.dec.flush(); s != "" {
		return Delta{Channel: Final, Text: s}
	}
	return Delta{}
}
