package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// ModelFiles is what Detect reads from a model.
type ModelFiles struct {
	Tokenizer *tokenizer.Tokenizer
	// ChatTemplate is the Jinja chat template from tokenizer_config.json
	// or chat_template.jinja; "" when the model has none.
	ChatTemplate string
	// EOS holds the end-of-sequence ids of config.json and
	// generation_config.json.
	EOS []int32
	// Warnings name the optional settings that were invalid and ignored
	// (generation_config.json's, the chat template), each with its file;
	// callers print them on stderr.
	Warnings []string
}

// ReadModelFiles gathers ModelFiles from a model directory (dir may be ""
// for a model with no directory, such as the embedded one) and the
// already parsed config.json and generation_config.json.
//
// An eos_token_id of config.json that is not a token id (or a list of
// them) is an error; one of generation_config.json, or a temperature there
// that is not a number >= 0, is a warning, and the setting is dropped from
// generationConfig so that the defaults apply.
func ReadModelFiles(dir string, tok *tokenizer.Tokenizer, config, generationConfig map[string]any) (ModelFiles, error) {
	f := ModelFiles{Tokenizer: tok}
	vocab := 0
	if tok != nil {
		vocab = tok.VocabSize()
	}
	eos, err := eosIDs(config, vocab)
	if err != nil {
		return f, fmt.Errorf("config.json: %v", err)
	}
	genEOS, err := eosIDs(generationConfig, vocab)
	if err != nil {
		f.Warnings = append(f.Warnings, fmt.Sprintf("generation_config.json: %v; it is ignored", err))
		delete(generationConfig, "eos_token_id")
	}
	for _, id := range genEOS {
		if !slices.Contains(eos, id) {
			eos = append(eos, id)
		}
	}
	f.EOS = eos
	if t, ok := generationConfig["temperature"]; ok && t != nil {
		if x, isNum := t.(float64); !isNum || x < 0 || math.IsInf(x, 0) {
			f.Warnings = append(f.Warnings, fmt.Sprintf("generation_config.json: \"temperature\" is %s; expected a number >= 0; it is ignored", jsonText(t)))
			delete(generationConfig, "temperature")
		}
	}
	if dir == "" {
		return f, nil
	}
	jinja := filepath.Join(dir, "chat_template.jinja")
	if b, err := os.ReadFile(jinja); err == nil {
		if len(strings.TrimSpace(string(b))) > 0 && utf8.Valid(b) {
			f.ChatTemplate = string(b)
			return f, nil
		}
		f.Warnings = append(f.Warnings, fmt.Sprintf("%s is empty or not UTF-8 text; it is ignored", jinja))
	} else if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	path := filepath.Join(dir, "tokenizer_config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	var cfg struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return f, fmt.Errorf("%s: %v", path, err)
	}
	if len(cfg.ChatTemplate) == 0 || string(cfg.ChatTemplate) == "null" {
		return f, nil
	}
	if f.ChatTemplate = templateText(cfg.ChatTemplate); f.ChatTemplate == "" {
		f.Warnings = append(f.Warnings, fmt.Sprintf("%s: \"chat_template\" is %s; expected a string or a list of {\"name\", \"template\"} objects; it is ignored", path, shorten(string(cfg.ChatTemplate))))
	}
	return f, nil
}

// templateText reads chat_template, which is a string or a list of
// {"name", "template"} objects (the one named "default" is used).
func templateText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []struct{ Name, Template string }
	if json.Unmarshal(raw, &list) != nil || len(list) == 0 {
		return ""
	}
	for _, t := range list {
		if t.Name == "default" {
			return t.Template
		}
	}
	return list[0].Template
}

// eosIDs reads eos_token_id (an int or a list of them, as
// encoding/json decodes it) from a config; absent or null is none. Each
// id must be an integer in 0..vocab-1 (vocab 0: any int32 >= 0).
func eosIDs(c map[string]any, vocab int) ([]int32, error) {
	v, ok := c["eos_token_id"]
	if !ok || v == nil {
		return nil, nil
	}
	list, isList := v.([]any)
	if !isList {
		list = []any{v}
	}
	limit := float64(math.MaxInt32)
	if vocab > 0 {
		limit = float64(vocab - 1)
	}
	expected := fmt.Sprintf("expected a token id (an integer from 0 to %d) or a list of them", int64(limit))
	var out []int32
	for i, e := range list {
		f, isNum := e.(float64)
		if !isNum || f != math.Trunc(f) || f < 0 || f > limit {
			what := ""
			if isList {
				what = fmt.Sprintf(" element %d", i)
			}
			return nil, fmt.Errorf("\"eos_token_id\"%s is %s; %s", what, jsonText(e), expected)
		}
		if !slices.Contains(out, int32(f)) {
			out = append(out, int32(f))
		}
	}
	return out, nil
}

// jsonText writes a decoded JSON value back for a message.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return shorten(string(b))
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// Detection says which format Detect chose and why.
type Detection struct {
	Format Format
	Reason string
	// Warning is set when the model's chat template was not used (it is
	// not one Minerva reads); callers print it on stderr.
	Warning string
}

// The tokens that identify each format, and the token that ends a reply
// in it.
var signatures = []struct {
	name   string
	tokens []string
	endOf  []string
}{
	{"harmony", []string{"<|start|>", "<|channel|>", "<|message|>"}, []string{"<|return|>", "<|call|>"}},
	{"llama3", []string{"<|start_header_id|>", "<|end_header_id|>"}, []string{"<|eot_id|>"}},
}

// Detect chooses the chat format from the model's files:
//
//  1. A chat template that uses harmony's <|channel|> and <|message|>
//     tokens is harmony; one that uses <|start_header_id|> is llama3.
//  2. A chat template Minerva cannot read falls back on the tokenizer:
//     harmony's tokens give harmony, Llama 3's header tokens llama3,
//     neither plain completion.
//  3. With no chat template, a model is a chat model only if it ends its
//     output with a format's end-of-reply token (config.json's or
//     generation_config.json's eos_token_id holds <|return|> or
//     <|eot_id|>), and that format's tokens are in the tokenizer.
//     Otherwise it is a base model, run as plain completion, even when
//     its tokenizer carries chat tokens: the embedded fortune model has
//     all of harmony's tokens but was never trained on conversations,
//     and stops at <|endoftext|>; Llama 3 base models likewise have the
//     header tokens and stop at <|end_of_text|>.
func Detect(f ModelFiles) (Detection, error) {
	if f.Tokenizer == nil {
		return Detection{}, fmt.Errorf("the model has no tokenizer.json, which chat needs")
	}
	has := func(names []string) bool {
		for _, n := range names {
			if id, ok := f.Tokenizer.TokenID(n); !ok || !f.Tokenizer.IsSpecial(id) {
				return false
			}
		}
		return true
	}
	pick := func(name, reason string) (Detection, error) {
		format, err := New(name, f.Tokenizer)
		return Detection{Format: format, Reason: reason}, err
	}
	if f.ChatTemplate != "" {
		switch {
		case strings.Contains(f.ChatTemplate, "<|channel|>") && strings.Contains(f.ChatTemplate, "<|message|>") && has(signatures[0].tokens):
			return pick("harmony", "the chat template is harmony's")
		case strings.Contains(f.ChatTemplate, "<|start_header_id|>") && has(signatures[1].tokens):
			return pick("llama3", "the chat template is Llama 3's")
		}
		name, reason := "plain", "the chat template is not one Minerva reads and the tokenizer has no chat tokens it knows"
		for _, s := range signatures {
			if has(s.tokens) {
				name, reason = s.name, "the chat template is not one Minerva reads, but the tokenizer has "+s.name+"'s tokens"
				break
			}
		}
		d, err := pick(name, reason)
		d.Warning = "the model's chat template is not harmony's or Llama 3's, the formats Minerva renders, so it is not used; "
		if name == "plain" {
			d.Warning += "the prompt is plain completion (--chat-format chooses a format)"
		} else {
			d.Warning += "the " + name + " format is, as the tokenizer has its tokens (--chat-format chooses another)"
		}
		return d, err
	}
	base := "a base model: no chat template and no chat tokens"
	for _, s := range signatures {
		if !has(s.tokens) {
			continue
		}
		for _, end := range s.endOf {
			id, _ := f.Tokenizer.TokenID(end)
			for _, e := range f.EOS {
				if e == int32(id) {
					return pick(s.name, fmt.Sprintf("the tokenizer has %s's tokens and the model stops at %s", s.name, end))
				}
			}
		}
		base = fmt.Sprintf("a base model: the tokenizer has %s's tokens, but there is no chat template and the model does not stop at %s", s.name, strings.Join(s.endOf, " or "))
	}
	return pick("plain", base)
}
