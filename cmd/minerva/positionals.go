package main

import (
	"fmt"
	"io"
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
//
// Two traps are closed: a file that is neither (a .gguf, a config.json)
// is refused rather than sent as the prompt, and a last argument shaped
// like a Hugging Face id that is not in the cache is the prompt with a
// note on stderr (w) saying so, since the user likely meant the model.
func (c *RunCmd) resolveArgs(w io.Writer) error {
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
		case kind == "file":
			return fmt.Errorf("%q is a file, but not an .arch file or a .safetensors checkpoint; give a model directory, or -p %q to send the text as the prompt", a, a)
		case last:
			if c.Prompt != "" {
				return fmt.Errorf("two prompts: --prompt and %q; give one", a)
			}
			if looksLikeModelID(a) {
				_, err := loader.ResolveModel(a)
				fmt.Fprintf(w, "minerva: note: %q is taken as the prompt: %v\n", a, err)
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

// argKind says what a positional names: "arch", "model", "file" (an
// existing file that is neither) or "" (text).
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
		return "file"
	}
	// org/name only: a prompt with one slash ("yes/no?") is not looked
	// up unless it has that shape and is cached.
	if looksLikeModelID(a) {
		if _, err := loader.ResolveModel(a); err == nil {
			return "model"
		}
	}
	return ""
}

// looksLikeModelID reports whether a has a Hugging Face id's shape,
// ORG/NAME of letters, digits, '-', '_' and '.'.
func looksLikeModelID(a string) bool {
	org, name, ok := strings.Cut(a, "/")
	return ok && idPart(org) && idPart(name)
}

func idPart(s string) bool {
	if s == "" || s[0] == '.' || s[0] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
