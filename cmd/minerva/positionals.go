package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/minerva-ml/minerva/runtime/loader"
)

// resolveArgs sorts run's positionals into --arch, --model and --prompt,
// as `ollama run MODEL PROMPT` reads its own: an .arch file or artifact
// directory is the architecture; a model directory, a .safetensors file
// or a Hugging Face id in the local cache is the model; the last argument
// that is neither is the prompt. So `minerva run "Why is the sky blue?"`
// asks the embedded model, and `minerva run openai/gpt-oss-20b "Hi"`
// asks gpt-oss.
func (c *RunCmd) resolveArgs() error {
	c.Arch = "" // not a flag: kong does not reset it between parses
	modelArg := false
	for i, a := range c.Args {
		last := i == len(c.Args)-1
		switch kind := argKind(a); {
		case kind == "arch" && c.Arch == "" && !modelArg:
			c.Arch = a
		case kind == "model" && c.Model == "":
			c.Model, modelArg = a, true
		case kind == "model" || kind == "arch":
			return fmt.Errorf("%q names a second %s; give at most one architecture and one model", a, map[string]string{"arch": "architecture (or an architecture after the model)", "model": "model (or --model and a model argument)"}[kind])
		case last:
			if c.Prompt != "" {
				return fmt.Errorf("two prompts: --prompt and %q; give one", a)
			}
			c.Prompt = a
			if c.Prompt == "" {
				return fmt.Errorf("the prompt argument is empty")
			}
		default:
			return fmt.Errorf("%q is no .arch file, artifact directory, model directory or cached Hugging Face id; only the last argument may be the prompt (quote it: minerva run \"...\")", a)
		}
	}
	return nil
}

// argKind says what a positional names: "arch", "model" or "" (text).
func argKind(a string) string {
	fi, err := os.Stat(a)
	switch {
	case err == nil && fi.IsDir():
		if _, err := os.Stat(filepath.Join(a, "manifest.json")); err == nil {
			return "arch" // a compiled artifact
		}
		return "model"
	case err == nil && strings.HasSuffix(a, ".arch"):
		return "arch"
	case err == nil && strings.HasSuffix(a, ".safetensors"):
		return "model"
	case err == nil:
		return "" // some other file: text that happens to name one
	}
	// org/name only: a prompt with one slash ("yes/no?") is not looked
	// up unless it has that shape and is cached.
	if strings.Count(a, "/") == 1 && !strings.ContainsAny(a, " \t\n") {
		if _, err := loader.ResolveModel(a); err == nil {
			return "model"
		}
	}
	return ""
}
