package main

import (
	"fmt"

	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// TokenizeCmd is `minerva tokenize`.
type TokenizeCmd struct {
	Tokenizer string `required:"" help:"A Hugging Face tokenizer.json." type:"existingfile" placeholder:"FILE"`
	JSONL     bool   `name:"jsonl" help:"Each input line is a JSON string; each output line is the JSON array of its ids (with --decode: the reverse)."`
	Decode    bool   `help:"Read JSON arrays of ids and write text."`
}

// Run encodes or decodes stdin.
func (c *TokenizeCmd) Run(env *Env) error {
	tok, err := tokenizer.Load(c.Tokenizer)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Tokenizer, err)
	}
	return tokenizer.RunTokenize(env.Stdin, env.Stdout, tok, tokenizer.TokenizeOptions{JSONL: c.JSONL, Decode: c.Decode})
}
