package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/gguf"
	"github.com/minerva-ml/minerva/runtime/loader"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// ExportCmd writes a model in another engine's format.
type ExportCmd struct {
	Model   string `help:"Model directory (config.json, *.safetensors, tokenizer.json) or a Hugging Face id in the local cache. Default: the embedded fortune model." placeholder:"DIR_OR_ID"`
	GGUF    string `name:"gguf" required:"" help:"Write llama.cpp's gpt-oss GGUF to this file (MXFP4 experts stay MXFP4), for llama.cpp, Ollama or LM Studio." placeholder:"FILE"`
	Experts string `help:"GGML type of the experts: mxfp4 (the checkpoint's blocks, repacked) or f32 (decoded; tells llama.cpp's MXFP4 arithmetic apart when comparing logits)." default:"mxfp4" enum:"mxfp4,f32"`
	Dense   string `help:"GGML type of the dense matrices: bf16 (the checkpoint's bytes) or f32 (llama.cpp then multiplies them in float32; used to compare logits)." default:"bf16" enum:"bf16,f32"`
}

func (c *ExportCmd) Run(env *Env) error {
	src := gguf.GptOss{Dense: gguf.BF16, Experts: gguf.MXFP4, Progress: env.Stderr}
	if c.Experts == "f32" {
		src.Experts = gguf.F32
	}
	if c.Dense == "f32" {
		src.Dense = gguf.F32
	}
	if c.Model == "" {
		src.Name = loader.DefaultName
		src.Config = models.FortuneFile("config.json")
		src.Tokenizer = models.FortuneFile("tokenizer.json")
		ck, err := weights.FromBytes("models/fortune/model.safetensors", models.FortuneFile("model.safetensors"))
		if err != nil {
			return fmt.Errorf("BUG: the embedded model does not load: %w", err)
		}
		src.Checkpoint = ck
	} else {
		dir, err := loader.ResolveModel(c.Model)
		if err != nil {
			return err
		}
		src.Name = filepath.Base(filepath.Clean(c.Model))
		if src.Config, err = os.ReadFile(filepath.Join(dir, "config.json")); err != nil {
			return fmt.Errorf("%v: a model directory needs its config.json", err)
		}
		if src.Tokenizer, err = os.ReadFile(filepath.Join(dir, "tokenizer.json")); err != nil {
			return fmt.Errorf("%v: llama.cpp needs the vocabulary, from the model's tokenizer.json", err)
		}
		src.ChatTemplate, err = chatTemplate(dir)
		if err != nil {
			return err
		}
		if src.Checkpoint, err = weights.Open(dir); err != nil {
			return err
		}
	}
	defer src.Checkpoint.Close()
	var arch struct {
		Architectures []string `json:"architectures"`
	}
	if err := json.Unmarshal(src.Config, &arch); err != nil {
		return fmt.Errorf("config.json: %v", err)
	}
	if !slices.Contains(arch.Architectures, "GptOssForCausalLM") {
		return fmt.Errorf("config.json names architectures %v; --gguf exports gpt-oss (GptOssForCausalLM) checkpoints only", arch.Architectures)
	}
	tmp := c.GGUF + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = src.Export(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.GGUF)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", c.GGUF, err)
	}
	st, _ := os.Stat(c.GGUF)
	fmt.Fprintf(env.Stderr, "wrote %s (%d bytes)\n", c.GGUF, st.Size())
	return nil
}

// chatTemplate reads the model's Jinja chat template, from
// chat_template.jinja or tokenizer_config.json, or "" when it has none.
func chatTemplate(dir string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		return string(b), nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	var tc struct {
		ChatTemplate json.RawMessage `json:"chat_template"`
	}
	if err := json.Unmarshal(b, &tc); err != nil {
		return "", fmt.Errorf("tokenizer_config.json: %v", err)
	}
	var s string
	if json.Unmarshal(tc.ChatTemplate, &s) == nil {
		return s, nil
	}
	return "", nil
}
