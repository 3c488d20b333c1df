package chat

import (
	"strings"

	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// llama3 is the Llama 3 instruct format, as its chat template renders it:
//
//	<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{text}<|eot_id|>
//	<|start_header_id|>user<|end_header_id|>\n\n{text}<|eot_id|>
//	<|start_header_id|>assistant<|end_header_id|>\n\n
//
// (without the line breaks after <|eot_id|>). The template trims each
// message's text. Developer messages are rendered as system messages.
// Replies end with <|eot_id|> (or <|eom_id|>, <|end_of_text|>).
type llama3 struct {
	tok                              *tokenizer.Tokenizer
	bos, startHeader, endHeader, eot int32
	stops                            []int32
}

func newLlama3(tok *tokenizer.Tokenizer) (*llama3, error) {
	ids, err := tokenIDs(tok, "llama3", "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")
	if err != nil {
		return nil, err
	}
	f := &llama3{tok: tok, bos: ids[0], startHeader: ids[1], endHeader: ids[2], eot: ids[3], stops: []int32{ids[3]}}
	for _, name := range []string{"<|eom_id|>", "<|end_of_text|>"} {
		if id, ok := tok.TokenID(name); ok {
			f.stops = append(f.stops, int32(id))
		}
	}
	return f, nil
}

func (f *llama3) Name() string { return "llama3" }

func (f *llama3) StopTokens() []int32 { return f.stops }

func (f *llama3) Render(msgs []Message, opts Options) ([]int32, error) {
	if err := checkRoles(msgs); err != nil {
		return nil, err
	}
	if checkTools("llama3", msgs, opts) != nil {
		return f.renderTools(msgs, opts) // Llama 3.1's tool format
	}
	b := newBudget(f.tok, opts)
	ids := []int32{f.bos}
	for _, m := range msgs {
		role := m.Role
		if role == RoleDeveloper {
			role = RoleSystem
		}
		ids = f.header(ids, role)
		ids = b.text(ids, strings.TrimSpace(m.Content))
		ids = append(ids, f.eot)
	}
	return b.done(f.header(ids, RoleAssistant))
}

func (f *llama3) header(ids []int32, role string) []int32 {
	ids = append(ids, f.startHeader)
	ids = toInt32(ids, f.tok.EncodeOrdinary(role))
	ids = append(ids, f.endHeader)
	return toInt32(ids, f.tok.EncodeOrdinary("\n\n"))
}

func (f *llama3) NewParser() Parser {
	return &textParser{tok: f.tok, dec: newTextDecoder(f.tok)}
}
