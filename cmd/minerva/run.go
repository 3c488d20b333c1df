package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/loader"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// RunCmd is `minerva run`.
type RunCmd struct {
	Arch string `arg:"" optional:"" help:"An .arch file or a compiled artifact directory. Default: the shipped architecture named by the model's config.json." name:"ARCH_OR_ARTIFACT"`
	ModelFlags
	Prompt    string `help:"The prompt. Without it, the prompt is read from stdin." placeholder:"TEXT"`
	MaxTokens int    `help:"Most tokens to generate." default:"128"`
}

// Run generates text and streams it to stdout.
func (c *RunCmd) Run(env *Env) error {
	if c.MaxTokens < 1 {
		return fmt.Errorf("--max-tokens must be at least 1, not %d", c.MaxTokens)
	}
	prompt := c.Prompt
	if prompt == "" {
		b, err := io.ReadAll(env.Stdin)
		if err != nil {
			return err
		}
		prompt = string(b)
		if prompt == "" {
			return fmt.Errorf("no prompt: pass --prompt TEXT or pipe text to stdin")
		}
	}
	m, err := loader.Load(c.spec(c.Arch, env))
	if err != nil {
		return err
	}
	defer m.Close()
	if m.Tokenizer == nil {
		return fmt.Errorf("the model directory has no tokenizer.json: `minerva run` needs one to read the prompt (use `minerva logits --ids` for token ids)")
	}
	tok, err := tokenizer.Parse(m.Tokenizer)
	if err != nil {
		return fmt.Errorf("tokenizer.json: %w", err)
	}
	ids := toInt32(tok.Encode(prompt))
	if len(ids) == 0 {
		return fmt.Errorf("the prompt encodes to no tokens")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	dec := tok.NewStreamDecoder()
	s := engine.NewSession(m.Backend)
	st, err := engine.Generate(ctx, s, ids, engine.GenOptions{MaxTokens: c.MaxTokens, Stop: stopIDs(m)}, func(id int32, stopped bool) error {
		if stopped {
			return nil
		}
		text, err := dec.Next(int(id))
		if err != nil {
			return err
		}
		_, err = io.WriteString(env.Stdout, text)
		return err
	})
	io.WriteString(env.Stdout, dec.Flush())
	fmt.Fprintln(env.Stdout)
	if err != nil && ctx.Err() == nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "prefill: %d tokens in %s (%.1f tok/s); decode: %d tokens in %s (%.1f tok/s); stopped by %s\n",
		st.PromptTokens, st.Prefill.Round(1e5), st.PrefillRate(), st.GeneratedTokens, st.Decode.Round(1e5), st.DecodeRate(), st.StoppedBy)
	return nil
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// stopIDs collects eos_token_id from config.json and generation_config.json
// (an int or a list in either).
func stopIDs(m *loader.Model) map[int32]bool {
	out := map[int32]bool{}
	add := func(v any) {
		switch x := v.(type) {
		case float64:
			out[int32(x)] = true
		case []any:
			for _, e := range x {
				if f, ok := e.(float64); ok {
					out[int32(f)] = true
				}
			}
		}
	}
	add(m.HFConfig["eos_token_id"])
	add(m.GenerationConfig["eos_token_id"])
	return out
}
