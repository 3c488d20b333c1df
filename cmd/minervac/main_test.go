package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCheckReportsKernelLimits: check runs through the legalize pass, so a
// head wider than the kernels hold is reported at the attention call, as a
// positioned diagnostic, instead of check saying ok and compile failing
// with "op 9 (cache_kv): heads wider than 256 are not supported".
func TestCheckReportsKernelLimits(t *testing.T) {
	// The expected text names the line of the attention call, wherever
	// the shipped file has it.
	src, err := os.ReadFile("../../models/gpt-oss.arch")
	if err != nil {
		t.Fatal(err)
	}
	line, text := 0, ""
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, "= attention(") {
			line, text = i+1, l
			break
		}
	}
	col := strings.Index(text, "attention(") + 1
	if line == 0 {
		t.Fatal("models/gpt-oss.arch has no attention call")
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", "../../models/gpt-oss.arch", "--set", "head_dim=512"}, &stdout, &stderr)
	want := fmt.Sprintf(`../../models/gpt-oss.arch:%d:%d: heads wider than 256 are not supported (head_dim is 512, v_head_dim 512)
    %s
    %s^
  hint: the Metal KV-cache kernels hold one head in threadgroup memory; use a head_dim and v_head_dim of at most 256
`, line, col, text, strings.Repeat(" ", col-1))
	if code != 1 || stderr.String() != want || stdout.Len() != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s\nwant stderr:\n%s", code, stdout.String(), stderr.String(), want)
	}
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"check", "../../models/gpt-oss.arch"}, &stdout, &stderr); code != 0 {
		t.Fatalf("the shipped gpt-oss.arch: exit %d: %s", code, stderr.String())
	}
	if want := "gpt-oss: ok: 24 layers, 20.91B parameters, 411 weights (459 tensors, 12.82 GiB), 435 ops\n"; stdout.String() != want {
		t.Fatalf("summary %q, want %q", stdout.String(), want)
	}
}

// TestStatsParallel: `stats --parallel N` reports N KV caches. The
// expected bytes are counted by hand from gpt-oss-20b's config: 12
// full-attention layers of 4096 positions and 12 sliding-window layers of
// 128 + 128 - 1 ring positions (--batch 128), 8 KV heads of 64 f16 values
// for keys and for values.
func TestStatsParallel(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"stats", "../../models/gpt-oss.arch", "--ctx", "4096", "--batch", "128", "--kv", "f16", "--parallel", "4"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var st struct {
		KVBytes      int64 `json:"kv_bytes"`
		Parallel     int   `json:"parallel"`
		KVBytesTotal int64 `json:"kv_bytes_total"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	perPosition := int64(8 * 64 * 2 * 2) // heads × head_dim × (k, v) × f16
	want := (12*4096 + 12*(128+128-1)) * perPosition
	if st.KVBytes != want || st.Parallel != 4 || st.KVBytesTotal != 4*want {
		t.Fatalf("kv_bytes %d, parallel %d, kv_bytes_total %d; want %d, 4, %d", st.KVBytes, st.Parallel, st.KVBytesTotal, want, 4*want)
	}
	if code := run([]string{"stats", "../../models/gpt-oss.arch", "--parallel", "0"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "--parallel must be at least 1") {
		t.Fatalf("--parallel 0: exit %d, %q", code, stderr.String())
	}
}

// TestCheckAgainstCheckpoint: `check --model DIR` reads the checkpoint's
// headers and reports a declaration that does not fit at the declaration,
// once for all layers, with a did-you-mean over the checkpoint's names;
// every shipped family passes against its fixture.
func TestCheckAgainstCheckpoint(t *testing.T) {
	for _, c := range []struct{ arch, model string }{
		{"mistral", "../../testdata/families/mistral-tiny"},
		{"qwen3-moe", "../../testdata/families/qwen3-moe-tiny"},
		{"gemma3", "../../testdata/families/gemma3-tiny"},
		{"phi3", "../../testdata/families/phi3-tiny"},
		{"llama", "../../testdata/llama/llama-tiny"},
		{"gpt-oss", "../../testdata/gpt-oss/tiny-random"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"check", "../../models/" + c.arch + ".arch", "--model", c.model}, &stdout, &stderr); code != 0 {
			t.Errorf("%s against %s: exit %d: %s", c.arch, c.model, code, stderr.String())
		}
	}

	// A misspelt name in a copy of mistral.arch.
	src, err := os.ReadFile("../../models/mistral.arch")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "self_attn.k_proj.weight", "self_attn.k_prj.weight", 1)
	arch := t.TempDir() + "/mistral.arch"
	if err := os.WriteFile(arch, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", arch, "--model", "../../testdata/families/mistral-tiny"}, &stdout, &stderr)
	line, text := 0, ""
	for i, l := range strings.Split(bad, "\n") {
		if strings.Contains(l, "k_prj") {
			line, text = i+1, l
		}
	}
	want := fmt.Sprintf(`%s:%d:5: weight k_proj: the checkpoint has no tensor "model.layers.{i}.self_attn.k_prj.weight" (in all 3 layers)
    %s
        ^^^^^^
  hint: did you mean "model.layers.{i}.self_attn.k_proj.weight"?
`, arch, line, text)
	if code != 1 || stderr.String() != want {
		t.Fatalf("exit %d\nstderr:\n%s\nwant:\n%s", code, stderr.String(), want)
	}
}

// TestDumpConfigProvenance: --dump config tells a value config.json gave,
// the declared default, and an `or EXPR` fallback (which may differ from
// the default: llama.arch's rope_factor defaults to 8 but falls back to 1
// for a config.json without RoPE scaling) apart, and names the keys that
// were missing.
func TestDumpConfigProvenance(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"compile", "../../models/llama.arch", "--config", "../../testdata/families/mistral-tiny", "--dump", "config", "--set", "layers=2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{
		"hidden: int = 64  # config.json hidden_size\n",
		"layers: int = 2  # --set\n",
		"attention_bias: bool = false  # default: config.json has no attention_bias\n",
		"rope_factor: float = 1.0  # fallback: config.json has no rope_scaling.factor, rope_parameters.factor\n",
		"q_dim = 64  # derived\n",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("--dump config lacks %q:\n%s", want, stdout.String())
		}
	}
}
