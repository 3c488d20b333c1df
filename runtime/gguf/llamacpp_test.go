package gguf

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/loader"
)

// llamaModules finds node-llama-cpp (pinned at 3.21.1; scripts/install-llama.sh
// installs it into .llama/), or skips the test.
func llamaModules(t *testing.T) (node, modules string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("llama.cpp oracle skipped: node is not installed")
	}
	modules = os.Getenv("MINERVA_LLAMA_MODULES")
	if modules == "" {
		modules, _ = filepath.Abs("../../.llama/node_modules")
	}
	if _, err := os.Stat(filepath.Join(modules, "node-llama-cpp", "package.json")); err != nil {
		t.Skipf("llama.cpp oracle skipped: node-llama-cpp is not in %s; run scripts/install-llama.sh (or set MINERVA_LLAMA_MODULES to a node_modules folder that has it)", modules)
	}
	return node, modules
}

type oracleOut struct {
	Tokens   [][]int32     `json:"tokens"`
	Greedy   [][]int32     `json:"greedy"`
	Text     []string      `json:"text"`
	LogProbs [][][]float64 `json:"logprobs"`
}

func runOracle(t *testing.T, node, modules, model string, req any) *oracleOut {
	t.Helper()
	reqFile := filepath.Join(t.TempDir(), "req.json")
	b, _ := json.Marshal(req)
	if err := os.WriteFile(reqFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "../../scripts/llama-oracle.mjs", model, reqFile)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "KV=F32")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("llama-oracle.mjs: %v\n%s", err, stderr.String())
	}
	var o oracleOut
	if err := json.Unmarshal(out, &o); err != nil {
		t.Fatalf("llama-oracle.mjs output: %v", err)
	}
	return &o
}

// centred turns log-probabilities (or logits) into logits less their mean:
// llama.cpp reports probabilities, which fix the logits up to a constant.
func centred(v []float64) []float32 {
	var mean float64
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x - mean)
	}
	return out
}

func centred32(v []float32) []float32 {
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = float64(x)
	}
	return centred(w)
}

// TestLlamaCppOracle runs llama.cpp (node-llama-cpp's prebuilt CPU
// build) on fortune exported as GGUF: a second, independent
// implementation reads Minerva's file.
//
//   - An all-F32 export (F32 KV cache in llama.cpp, so that nothing is
//     rounded on either side) gives, at every position of the reference
//     sequence, the logits of Minerva run with YaRN's correction range
//     truncated to whole dimensions, which is what llama.cpp always does
//     (ggml_rope_yarn_corr_dims floors and ceils it) and gpt-oss's
//     config.json turns off (rope_scaling.truncate = false): within 1e-5,
//     and the same greedy continuations. At position 0, where the rotation
//     is the identity, it gives transformers' logits within 1e-5.
//   - llama.cpp's tokenizer, built from the exported vocabulary and
//     merges, encodes the reference prompts to transformers' ids.
//   - The MXFP4 export, as llama.cpp runs it (it rounds the activations
//     that meet MXFP4 weights to 8 bits, GGML's Q8_0), stays within 3e-2
//     of transformers' logits and agrees on the top token at 85% of the
//     positions or more.
func TestLlamaCppOracle(t *testing.T) {
	node, modules := llamaModules(t)
	ref := fixtures.Load(t, "../../testdata/gpt-oss/fortune")
	dir := t.TempDir()
	write := func(name string, dense, experts TensorType) string {
		_, data := fortune(t, dense, experts)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	seq := ref.Sequence()
	var prompts []string
	type greedyReq struct {
		IDs []int32 `json:"ids"`
		N   int     `json:"n"`
	}
	var greedy []greedyReq
	for _, p := range ref.Prompts {
		prompts = append(prompts, p.Prompt)
		greedy = append(greedy, greedyReq{p.PromptIDs, len(p.GreedyIDs)})
	}
	exact := runOracle(t, node, modules, write("f32.gguf", F32, F32), map[string]any{
		"tokenize": prompts, "greedy": greedy, "logprobs": [][]int32{seq}})

	for i, p := range ref.Prompts {
		if !slices.Equal(exact.Tokens[i], p.PromptIDs) {
			t.Errorf("llama.cpp encodes %q to %v, transformers to %v", p.Prompt, exact.Tokens[i], p.PromptIDs)
		}
	}

	// Minerva with truncate = true, the same program llama.cpp runs.
	mdir := filepath.Join(dir, "fortune-truncated")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(models.FortuneFile("config.json"), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["rope_scaling"].(map[string]any)["truncate"] = true
	cb, _ := json.Marshal(cfg)
	for name, data := range map[string][]byte{"config.json": cb, "tokenizer.json": models.FortuneFile("tokenizer.json"), "model.safetensors": models.FortuneFile("model.safetensors")} {
		if err := os.WriteFile(filepath.Join(mdir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := loader.Load(loader.Spec{Model: mdir, Backend: "cpu", Plan: compiler.PlanOptions{KV: "f32", Ctx: 256}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	logits, err := engine.NewSession(m.Backend).AllLogits(seq, len(seq)/2)
	if err != nil {
		t.Fatal(err)
	}
	V := ref.Vocab
	var worst float64
	for pos := range seq {
		got := centred(exact.LogProbs[0][pos])
		e := fixtures.RelErr(got, centred32(logits[pos*V:(pos+1)*V]))
		worst = max(worst, e)
		if e > 1e-5 {
			t.Errorf("position %d: llama.cpp's logits are %.2e from Minerva's (truncated YaRN), want within 1e-5", pos, e)
		}
	}
	t.Logf("all-F32 export: llama.cpp vs Minerva (truncated YaRN), worst of %d positions: %.2e", len(seq), worst)
	if e := fixtures.RelErr(centred(exact.LogProbs[0][0]), centred32(ref.LogitsFull[:V])); e > 1e-5 {
		t.Errorf("position 0: llama.cpp's logits are %.2e from transformers', want within 1e-5", e)
	}
	for i, p := range ref.Prompts {
		s := engine.NewSession(m.Backend)
		var want []int32
		_, err := engine.Generate(context.Background(), s, p.PromptIDs, engine.GenOptions{MaxTokens: len(p.GreedyIDs)}, func(id int32, _ bool) error {
			want = append(want, id)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(exact.Greedy[i], want) {
			t.Errorf("%q: llama.cpp continues greedily with\n%v\nMinerva (truncated YaRN) with\n%v", p.Prompt, exact.Greedy[i], want)
		}
	}

	mx := runOracle(t, node, modules, write("mxfp4.gguf", BF16, MXFP4), map[string]any{"logprobs": [][]int32{seq}})
	agree, worst := 0, 0.0
	for pos := range seq {
		got := centred(mx.LogProbs[0][pos])
		want := centred32(ref.LogitsFull[pos*V : (pos+1)*V])
		e := fixtures.RelErr(got, want)
		worst = max(worst, e)
		if e > 3e-2 {
			t.Errorf("MXFP4 export, position %d: llama.cpp's logits are %.2e from transformers', want within 3e-2", pos, e)
		}
		if fixtures.Argmax(got) == fixtures.Argmax(want) {
			agree++
		}
	}
	t.Logf("MXFP4 export: llama.cpp vs transformers, worst %.2e, top-1 agreement %d/%d", worst, agree, len(seq))
	if agree*100 < 85*len(seq) {
		t.Errorf("MXFP4 export: top-1 agreement with transformers %d/%d, want 85%% or more", agree, len(seq))
	}
}
