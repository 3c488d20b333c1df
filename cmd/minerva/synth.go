package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/synth"
)

// SynthCmd is `minerva synth`.
type SynthCmd struct {
	Arch      string   `arg:"" help:"An .arch file, or the name of a shipped architecture (gpt-oss, llama, qwen3, qwen3-moe, gemma3, phi3, mistral)." name:"ARCH"`
	Out       string   `required:"" help:"Directory to write the checkpoint and config.json to; it must not hold a checkpoint already." placeholder:"DIR"`
	Config    string   `help:"A Hugging Face config.json (or a model directory holding one) that specialises the architecture; it is copied, with every parameter made explicit. Default: the architecture's defaults (gpt-oss: gpt-oss-20b)." placeholder:"FILE"`
	Set       []string `help:"Override one config parameter (repeatable; lists as JSON)." placeholder:"NAME=VALUE" sep:"none"`
	Seed      uint64   `help:"Seed of the random values: the same seed gives the same files." default:"1"`
	ShardSize int64    `help:"Largest shard in bytes; a larger checkpoint is split into model-0000N-of-0000M.safetensors with an index." default:"5000000000" placeholder:"BYTES"`
	Tokenizer string   `help:"A tokenizer.json to copy into the directory, so that 'minerva run' can read prompts." type:"existingfile" placeholder:"FILE"`
	Threads   int      `help:"Tensors generated at once (0: all cores)." default:"0"`
}

// Validate bounds --threads as for the other commands (kong calls it).
func (c *SynthCmd) Validate() error { return cpu.CheckWorkers("--threads", c.Threads) }

// Run writes a synthetic checkpoint.
func (c *SynthCmd) Run(env *Env) error {
	opts, err := synthSource(c.Arch, c.Config, c.Set)
	if err != nil {
		return err
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		return err
	}
	var base map[string]any
	if opts.JSON != nil {
		base = opts.JSON.Data
	}
	threads := c.Threads
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	res, err := synth.Write(c.Out, u, base, synth.Options{Seed: c.Seed, ShardBytes: c.ShardSize, Workers: threads, Progress: env.Stderr})
	if err != nil {
		return err
	}
	if c.Tokenizer != "" {
		b, err := os.ReadFile(c.Tokenizer)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(c.Out, "tokenizer.json"), b, 0o644); err != nil {
			return fmt.Errorf("cannot copy the tokenizer: %w", err)
		}
		res.Files = append(res.Files, "tokenizer.json")
	}
	fmt.Fprintf(env.Stdout, "%s: %s\n", res.Dir, strings.Join(res.Files, ", "))
	return nil
}

// synthSource reads ARCH as a file, or else as a shipped architecture's
// name.
func synthSource(arch, configPath string, sets []string) (compiler.Options, error) {
	if _, err := os.Stat(arch); err == nil {
		return compiler.SourceOptions(arch, configPath, sets)
	}
	var names []string
	for _, a := range models.Archs() {
		base := strings.TrimSuffix(filepath.Base(a.File), ".arch")
		names = append(names, base)
		if arch == base || arch == base+".arch" || arch == a.File {
			js, err := compiler.ReadConfig(configPath)
			if err != nil {
				return compiler.Options{}, err
			}
			return compiler.Options{File: a.File, Source: a.Source, JSON: js, Sets: sets}, nil
		}
	}
	return compiler.Options{}, fmt.Errorf("%s is neither an .arch file nor a shipped architecture (%s)", arch, strings.Join(names, ", "))
}
