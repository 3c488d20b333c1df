package main

import (
	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/loader"
)

// ModelFlags choose a model, its compiled shape and a backend; every
// command that runs a model takes them.
type ModelFlags struct {
	Model   string `short:"m" help:"Model directory (config.json, *.safetensors, tokenizer.json) or a Hugging Face id in the local cache. Default: the embedded fortune model." placeholder:"DIR_OR_ID"`
	Backend string `help:"Where to run: auto (Metal on a Mac with a GPU, else cpu), cpu, mslemu (the emitted Metal, run on the CPU), metal, cuda (the emitted Metal on an NVIDIA GPU)." default:"auto" enum:"auto,cpu,mslemu,metal,cuda"`
	Ctx     int    `help:"Context length: positions the KV cache holds." default:"4096"`
	KV      string `name:"kv" help:"KV-cache format and its typical relative error in the logits (docs/arch-language.md): f16 (about 4e-4), q8 (about 1e-2), q4 (about 1e-1; head_dim of 32 or more) or f32 (exact)." default:"f16" enum:"f16,q8,q4,f32"`
	Batch   int    `help:"Most tokens one prefill call processes." default:"128"`
	Threads int    `help:"CPU threads (0: all cores)." default:"0"`
	// sep:"none": a list value (--set 'layer_types=["a", "b"]') holds
	// commas, so the flag is not split on them; repeat it instead.
	Set []string `help:"Override one config parameter when an .arch file is compiled (repeatable; lists as JSON)." placeholder:"NAME=VALUE" sep:"none"`
}

// Validate refuses sizes out of bounds before anything loads (kong calls
// it after parsing): --ctx 0 is an error, not the default.
func (f ModelFlags) Validate() error {
	if err := (compiler.PlanOptions{Ctx: f.Ctx, KV: f.KV, Batch: f.Batch}).Check(); err != nil {
		return err
	}
	return cpu.CheckWorkers("--threads", f.Threads)
}

func (f ModelFlags) spec(arch string, env *Env) loader.Spec {
	return loader.Spec{
		Arch:     arch,
		Model:    f.Model,
		Plan:     compiler.PlanOptions{Ctx: f.Ctx, KV: f.KV, Batch: f.Batch},
		Sets:     f.Set,
		Backend:  f.Backend,
		Workers:  f.Threads,
		Progress: env.Stderr,
	}
}
