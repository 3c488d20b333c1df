package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/runtime/gguf"
)

// TestExportCommand: `minerva export --gguf` writes the embedded model as
// a GGUF file that reads back under the format's rules with llama.cpp's
// gpt-oss architecture; runtime/gguf checks the contents.
func TestExportCommand(t *testing.T) {
	out := filepath.Join(t.TempDir(), "fortune.gguf")
	code, _, stderr := runCLI(t, "", "export", "--gguf", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Read(data)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := f.Lookup("general.architecture"); v.Str() != "gpt-oss" {
		t.Errorf("general.architecture = %q", v.Str())
	}
	if _, err := os.Stat(out + ".partial"); !os.IsNotExist(err) {
		t.Errorf("the partial file was left behind: %v", err)
	}
}

func TestExportErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export"}, "--gguf"},
		{[]string{"export", "--gguf", filepath.Join(dir, "x.gguf"), "--model", "../../testdata/llama/llama-tiny"}, "tokenizer.json"},
		{[]string{"export", "--gguf", filepath.Join(dir, "x.gguf"), "--model", "../../testdata/gpt-oss/tiny-random"}, "tokenizer.json"},
		{[]string{"export", "--gguf", filepath.Join(dir, "no", "such", "dir", "x.gguf")}, "no such file"},
		{[]string{"export", "--gguf", filepath.Join(dir, "x.gguf"), "--dense", "f64"}, "--dense"},
	} {
		code, _, stderr := runCLI(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want an error that mentions %q", c.args, code, stderr, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.gguf")); !os.IsNotExist(err) {
		t.Errorf("a failed export left %s: %v", filepath.Join(dir, "x.gguf"), err)
	}
}

// TestExportRefusesOtherArchitectures: a llama checkpoint with a
// tokenizer is refused by name, not written as a broken gpt-oss file.
func TestExportRefusesOtherArchitectures(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors"} {
		b, err := os.ReadFile(filepath.Join("../../testdata/llama/llama-tiny", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(`{"model": {"type": "BPE"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "", "export", "--gguf", filepath.Join(t.TempDir(), "x.gguf"), "--model", dir)
	if code == 0 || !strings.Contains(stderr, "GptOssForCausalLM") {
		t.Errorf("exit %d, stderr %q; want a refusal naming GptOssForCausalLM", code, stderr)
	}
}
