package loader

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
)

// TestEmbeddedFortunePrompts: the embedded default model, tokenised with
// its own tokenizer.json, continues each of reference.json's three prompts
// greedily to exactly the ids and text transformers recorded.
func TestEmbeddedFortunePrompts(t *testing.T) {
	ref := fixtures.Load(t, "../../testdata/gpt-oss/fortune")
	// q8 and q4 are checked in runtime/cpu (TestQuantizedKVGreedy).
	for _, kv := range []string{"f32", "f16"} {
		m, err := Load(Spec{Plan: compiler.PlanOptions{KV: kv, Ctx: 256}, Tokenizer: true})
		if err != nil {
			t.Fatal(err)
		}
		tok := m.Tokenizer
		for _, p := range ref.Prompts {
			ids := tok.Encode(p.Prompt)
			if !equalInts(ids, toInts(p.PromptIDs)) {
				t.Fatalf("%q encodes to %v, reference %v", p.Prompt, ids, p.PromptIDs)
			}
			s := engine.NewSession(m.Backend)
			var got []int
			_, err := engine.Generate(context.Background(), s, toInt32(ids), engine.GenOptions{MaxTokens: len(p.GreedyIDs)}, func(id int32, _ bool) error {
				got = append(got, int(id))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !equalInts(got, toInts(p.GreedyIDs)) {
				t.Fatalf("kv %s, %q: greedy ids\n got %v\nwant %v", kv, p.Prompt, got, p.GreedyIDs)
			}
			// reference.json's text was decoded the way the tokenizers
			// library does by default: skipping special tokens.
			var plain []int
			for _, id := range got {
				if !tok.IsSpecial(id) {
					plain = append(plain, id)
				}
			}
			text, err := tok.Decode(plain)
			if err != nil {
				t.Fatal(err)
			}
			if string(text) != p.Text {
				t.Fatalf("kv %s, %q: text %q, want %q", kv, p.Prompt, text, p.Text)
			}
		}
		m.Close()
	}
}

func toInts(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLoadErrors: bad input gets an error that names the problem and the
// fix.
func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	mixed := t.TempDir()
	copyFile(t, "../../models/fortune/config.json", filepath.Join(mixed, "config.json"))
	copyFile(t, "../../testdata/gpt-oss/tiny-random/model.safetensors", filepath.Join(mixed, "model.safetensors"))
	truncated := t.TempDir()
	copyFile(t, "../../testdata/gpt-oss/tiny-random/config.json", filepath.Join(truncated, "config.json"))
	data, err := os.ReadFile("../../testdata/gpt-oss/tiny-random/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(truncated, "model.safetensors"), data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec Spec
		want []string
	}{
		{"no checkpoint", Spec{Arch: "../../models/gpt-oss.arch", Model: empty}, []string{"contains no SafeTensors checkpoint"}},
		{"no such directory", Spec{Model: filepath.Join(empty, "nope")}, []string{"no such directory"}},
		{"weights of another config", Spec{Arch: "../../models/gpt-oss.arch", Model: mixed},
			[]string{`../../models/gpt-oss.arch:60:3: weight embed is declared [4096, 256] but the checkpoint's "model.embed_tokens.weight" is [512, 64]`, "hint: check the dimensions against config.json"}},
		{"truncated checkpoint", Spec{Arch: "../../models/gpt-oss.arch", Model: truncated}, []string{"truncated"}},
		{"unknown hugging face id", Spec{Model: "nobody/nothing"}, []string{"not in the Hugging Face cache", "huggingface-cli download nobody/nothing"}},
		{"not an arch", Spec{Arch: "../../README.md"}, []string{"neither an .arch file nor a compiled artifact"}},
	}
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Load(c.spec)
			if err == nil {
				m.Close()
				t.Fatal("loaded without error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestContextAndVocabularyErrors(t *testing.T) {
	m, err := Load(Spec{Plan: compiler.PlanOptions{Ctx: 8}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := engine.NewSession(m.Backend)
	_, err = engine.Generate(context.Background(), s, make([]int32, 9), engine.GenOptions{MaxTokens: 1}, func(int32, bool) error { return nil })
	if !errors.Is(err, engine.ErrContextFull) || !strings.Contains(err.Error(), "the prompt has 9 tokens") || !strings.Contains(err.Error(), "--ctx") {
		t.Fatalf("long prompt: %v", err)
	}
	if _, err := s.Prefill([]int32{4096}); err == nil || !strings.Contains(err.Error(), "token id 4096 is outside the vocabulary (0..4095)") {
		t.Fatalf("out of vocabulary: %v", err)
	}
	// Generation past the context stops there instead of failing.
	st, err := engine.Generate(context.Background(), engine.NewSession(m.Backend), []int32{1, 2, 3}, engine.GenOptions{MaxTokens: 100}, func(int32, bool) error { return nil })
	if err != nil || st.StoppedBy != "context" && st.StoppedBy != "stop" {
		t.Fatalf("generation to the end of the context: %+v, %v", st, err)
	}
}

func TestHuggingFaceCacheResolution(t *testing.T) {
	hub := t.TempDir()
	snap := filepath.Join(hub, "models--org--model", "snapshots", "0123456789abcdef0123456789abcdef01234567")
	if err := os.MkdirAll(snap, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(hub, "models--org--model", "refs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hub, "models--org--model", "refs", "main"), []byte("0123456789abcdef0123456789abcdef01234567\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_CACHE", hub)
	dir, err := ResolveModel("org/model")
	if err != nil || dir != snap {
		t.Fatalf("got %q, %v; want %q", dir, err, snap)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBackendLoadErrorIsReturned: when the backend cannot allocate what
// the plans ask for, Load returns that error. It used to return a nil
// *cpu.Model inside a non-nil engine.Backend, and Load's clean-up then
// panicked calling Close through it.
func TestBackendLoadErrorIsReturned(t *testing.T) {
	m, err := Load(Spec{Plan: compiler.PlanOptions{Ctx: 64}, Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	huge := *m.Program
	kv := *huge.KV
	kv.Bytes = plan.MaxBytes // a PiB: no machine can map this
	huge.KV = &kv
	b, name, err := newBackend(Spec{Backend: "cpu"}, &huge, m.Checkpoint)
	if err == nil || !strings.Contains(err.Error(), "cannot allocate") {
		t.Fatalf("got backend %q, error %v; want the allocation error", name, err)
	}
	if b != nil {
		t.Fatalf("the backend is %#v, not a nil interface, beside the error", b)
	}
}

// TestPlansLargerThanMemoryAreRefused: a KV cache and activations larger
// than the machine's memory are refused at load, naming the flags; mapped
// lazily, they would load and the process be killed later.
func TestPlansLargerThanMemoryAreRefused(t *testing.T) {
	defer func(f func() (int64, bool)) { machineMemory = f }(machineMemory)
	machineMemory = func() (int64, bool) { return 1 << 20, true }
	m, err := Load(Spec{Plan: compiler.PlanOptions{Ctx: 4096, Batch: 128}, Backend: "cpu"})
	if err == nil {
		m.Close()
		t.Fatal("loaded")
	}
	if !strings.Contains(err.Error(), "--ctx 4096 and --batch 128 need") || !strings.Contains(err.Error(), "more than this machine's 1.00 MiB of memory") {
		t.Errorf("%v", err)
	}
	// This machine's own figure is what Load compares with.
	machineMemory = physicalMemory
	if n, ok := physicalMemory(); ok && n < 1<<28 {
		t.Errorf("physicalMemory says %d bytes", n)
	}
	m, err = Load(Spec{Plan: compiler.PlanOptions{Ctx: 4096, Batch: 128}, Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

// TestTokenizerIsLoadedWithTheModel: with Spec.Tokenizer, Load parses the
// model's tokenizer.json before reporting ready, and a broken one is an
// error naming the file; without it (minerva logits), the file is not
// read.
func TestTokenizerIsLoadedWithTheModel(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, "../../testdata/gpt-oss/tiny-random/config.json", filepath.Join(dir, "config.json"))
	copyFile(t, "../../testdata/gpt-oss/tiny-random/model.safetensors", filepath.Join(dir, "model.safetensors"))
	copyFile(t, "../../models/fortune/tokenizer.json", filepath.Join(dir, "tokenizer.json"))
	spec := Spec{Model: dir, Backend: "cpu", Plan: compiler.PlanOptions{Ctx: 64}, Tokenizer: true}
	m, err := Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	want, err := tokenizer.Load("../../models/fortune/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	text := "Hello, world! <|endoftext|> café"
	if m.Tokenizer == nil || !slices.Equal(m.Tokenizer.Encode(text), want.Encode(text)) {
		t.Errorf("the loaded tokenizer does not encode %q as tokenizer.Load's does", text)
	}
	m.Close()

	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "WordPiece"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(spec); err == nil || !strings.Contains(err.Error(), "tokenizer.json") || !strings.Contains(err.Error(), "WordPiece") {
		t.Errorf("a broken tokenizer.json: got %v, want an error naming the file and the problem", err)
	}
	spec.Tokenizer = false
	m, err = Load(spec)
	if err != nil {
		t.Fatalf("without Spec.Tokenizer, a broken tokenizer.json must not matter: %v", err)
	}
	if m.Tokenizer != nil {
		t.Error("a tokenizer was loaded without Spec.Tokenizer")
	}
	m.Close()
}
