package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestSizeFlagsOutOfBounds: every size flag is checked before anything
// loads, with the flag and the allowed range in the message. --ctx 0 and
// --batch 0 used to be taken as the defaults, --threads 100000 started
// 100000 workers, and --ctx 1000000000 panicked.
func TestSizeFlagsOutOfBounds(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--ctx", "0"}, "--ctx 0: the context must be from 1 to 16777216"},
		{[]string{"--batch", "0"}, "--batch 0: a call must process from 1 to 65536"},
		{[]string{"--ctx", "4611686018427387904"}, "--ctx 4611686018427387904: the context must be from 1 to 16777216"},
		{[]string{"--ctx", "1000000000"}, "--ctx 1000000000"},
		{[]string{"--batch", "1000000000"}, "--batch 1000000000"},
		{[]string{"--threads", "100000"}, "--threads 100000: use 0 (all cores) to"},
		{[]string{"--threads=-1"}, "--threads -1"},
		{[]string{"--ctx", "131073"}, "--ctx 131073: the model's max_positions (config.json max_position_embeddings) is 131072"},
	}
	for _, c := range cases {
		for _, cmd := range []string{"run", "logits"} {
			args := append([]string{cmd, "--backend", "cpu", "--prompt", "hi", "--max-tokens", "1"}, c.args...)
			if cmd == "logits" {
				args = append([]string{cmd, "../../models/gpt-oss.arch", "--backend", "cpu", "--ids", "1", "--out", t.TempDir() + "/l.safetensors"}, c.args...)
			}
			code, _, stderr := runCLI(t, "", args...)
			if code == 0 || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "panic") {
				t.Errorf("%v: exit %d, stderr:\n%s\nwant an error containing %q", args, code, stderr, c.want)
			}
		}
	}
}

// TestRunStopsOnNaNLogits: a checkpoint whose attention matrix is NaN (a
// matrix is not read at load) makes `minerva run` fail with the engine's
// error instead of printing " breakfast breakfast ..." and exiting 0.
func TestRunStopsOnNaNLogits(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config.json", "tokenizer.json"} {
		b, err := os.ReadFile(filepath.Join("../../models/fortune", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("../../models/fortune/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	ck, err := weights.FromBytes("model.safetensors", b)
	if err != nil {
		t.Fatal(err)
	}
	q, ok := ck.Tensor("model.layers.1.self_attn.q_proj.weight")
	if !ok || q.DType != weights.BF16 {
		t.Fatalf("fortune's q_proj: %+v", q)
	}
	edited := append([]byte(nil), b...)
	for i := 0; i < len(q.Data); i += 2 {
		binary.LittleEndian.PutUint16(edited[int(q.Offset)+i:], 0x7fc0) // bf16 NaN
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "run", "--model", dir, "--backend", "cpu", "--prompt", "A computer", "--max-tokens", "5")
	if code != 1 || !strings.Contains(stderr, "the logits are not finite: logit 0 after position 1 is NaN") || strings.TrimSpace(stdout) != "" {
		t.Errorf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}
