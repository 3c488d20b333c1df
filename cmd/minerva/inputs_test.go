package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// copyModel copies a model directory's files into a temporary one.
func copyModel(t *testing.T, from string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(from, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLogitsRefusesToOverwriteInputs: --out naming the model's checkpoint
// (by its path, another spelling of it or a link to it), its config.json
// or the architecture is refused before anything is written, and the file
// is left as it was.
func TestLogitsRefusesToOverwriteInputs(t *testing.T) {
	dir := copyModel(t, "../../testdata/gpt-oss/tiny-random", "config.json", "model.safetensors")
	arch := filepath.Join(t.TempDir(), "gpt-oss.arch")
	src, err := os.ReadFile("../../models/gpt-oss.arch")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(arch, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, "model.safetensors")
	link := filepath.Join(t.TempDir(), "logits.safetensors")
	if err := os.Symlink(ckpt, link); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(ckpt)
	for _, out := range []string{ckpt, filepath.Join(dir, ".", "model.safetensors"), link, filepath.Join(dir, "config.json"), arch} {
		code, _, stderr := runCLI(t, "", "logits", arch, "--model", dir, "--ids", "1,2,3", "--out", out, "--backend", "cpu")
		if code == 0 || !strings.Contains(stderr, "--out "+out+" is ") || !strings.Contains(stderr, "would overwrite it; choose another file") {
			t.Errorf("--out %s: exit %d, stderr %q; want a refusal", out, code, stderr)
		}
	}
	if after, _ := os.ReadFile(ckpt); !bytes.Equal(before, after) {
		t.Fatal("the checkpoint was overwritten")
	}
	if after, _ := os.ReadFile(arch); !bytes.Equal(src, after) {
		t.Fatal("the architecture was overwritten")
	}
	// Another file in the same directory is fine.
	out := filepath.Join(dir, "logits.safetensors")
	if code, _, stderr := runCLI(t, "", "logits", arch, "--model", dir, "--ids", "1,2,3", "--out", out, "--backend", "cpu"); code != 0 {
		t.Fatalf("--out %s: exit %d: %s", out, code, stderr)
	}
}

// TestWarnsOnInvalidOptionalFiles: an invalid generation_config.json or
// chat template is not ignored silently: a warning on stderr names the
// file and the problem, and the run goes on with the defaults.
func TestWarnsOnInvalidOptionalFiles(t *testing.T) {
	cases := []struct {
		file, text string
		want       string
	}{
		{"generation_config.json", `{"temperature": 0.5,`, "generation_config.json is not a valid JSON object ("},
		{"generation_config.json", `{"temperature": 0.5,`, "); it is ignored and the default generation settings are used"},
		{"generation_config.json", `[1, 2]`, "generation_config.json is not a valid JSON object"},
		{"generation_config.json", `{"eos_token_id": "x"}`, `generation_config.json: "eos_token_id" is "x"; expected a token id (an integer from 0 to 4095) or a list of them; it is ignored`},
		{"generation_config.json", `{"eos_token_id": [1, 1e9]}`, `generation_config.json: "eos_token_id" element 1 is 1000000000; expected a token id (an integer from 0 to 4095) or a list of them; it is ignored`},
		{"generation_config.json", `{"temperature": "hot"}`, `generation_config.json: "temperature" is "hot"; expected a number >= 0; it is ignored`},
		{"tokenizer_config.json", `{"chat_template": 5}`, `tokenizer_config.json: "chat_template" is 5; expected a string or a list of {"name", "template"} objects; it is ignored`},
		{"chat_template.jinja", "", "chat_template.jinja is empty or not UTF-8 text; it is ignored"},
		{"chat_template.jinja", "{{ messages }}", "the model's chat template is not harmony's or Llama 3's, the formats Minerva renders, so it is not used; the harmony format is, as the tokenizer has its tokens (--chat-format chooses another)"},
	}
	for _, c := range cases {
		dir := copyModel(t, "../../models/fortune", "config.json", "model.safetensors", "tokenizer.json")
		if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCLI(t, "", "run", "--model", dir, "--prompt", "A computer", "--max-tokens", "7", "--backend", "cpu")
		if code != 0 {
			t.Errorf("%s %s: exit %d: %s", c.file, c.text, code, stderr)
			continue
		}
		if !strings.Contains(stderr, "minerva: warning: ") || !strings.Contains(stderr, c.want) {
			t.Errorf("%s %s: stderr %q; want a warning saying %q", c.file, c.text, stderr, c.want)
		}
		if c.file == "chat_template.jinja" && c.text != "" {
			continue // the template is not used, but the tokenizer has harmony's tokens
		}
		if want := " salesman knows when he's lying."; !strings.HasPrefix(stdout, want) {
			t.Errorf("%s %s: stdout %q, want the defaults' %q", c.file, c.text, stdout, want)
		}
	}
}

// TestConfigEOSErrors: an eos_token_id in config.json that is not a token
// id is an error naming the key, before any generation.
func TestConfigEOSErrors(t *testing.T) {
	for _, c := range []struct{ val, want string }{
		{`"x"`, `"eos_token_id" is "x"; expected an integer or a list of integers`},
		{`-1`, `"eos_token_id" is -1; expected an integer from 0 to 4095`},
		{`1e9`, `"eos_token_id" is 1000000000; expected an integer from 0 to 4095`},
	} {
		dir := copyModel(t, "../../models/fortune", "config.json", "model.safetensors", "tokenizer.json")
		cfg, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		edited := strings.Replace(string(cfg), `"eos_token_id": 1,`, `"eos_token_id": `+c.val+`,`, 1)
		if edited == string(cfg) {
			t.Fatal("the test's edit of config.json no longer applies")
		}
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(edited), 0o644)
		code, _, stderr := runCLI(t, "", "run", "--model", dir, "--prompt", "A computer", "--max-tokens", "1", "--backend", "cpu")
		if code == 0 || !strings.Contains(stderr, "config.json:8:3: "+c.want) {
			t.Errorf("eos_token_id %s: exit %d, stderr %q; want %q", c.val, code, stderr, c.want)
		}
	}
}

// repeatReader yields n bytes of a repeated text without holding them.
type repeatReader struct {
	text   string
	n, off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := 0
	for k < len(p) && r.n > 0 {
		c := copy(p[k:min(len(p), k+r.n)], r.text[r.off:])
		k += c
		r.n -= c
		r.off = (r.off + c) % len(r.text)
	}
	return k, nil
}

// TestOversizedPrompt: a 50 MB prompt on stdin is refused after reading
// what the context could hold (4096 tokens of at most the longest token's
// bytes), not read and encoded whole (1.7 GB before); a prompt under that
// but over the context stops encoding at the context. Both errors name
// the context and --ctx.
func TestOversizedPrompt(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var out, errb bytes.Buffer
	code := run([]string{"run", "--max-tokens", "1", "--backend", "cpu"},
		&Env{Stdin: &repeatReader{text: "hello world, ", n: 50 << 20}, Stdout: &out, Stderr: &errb})
	runtime.ReadMemStats(&after)
	want := "the prompt on stdin is more than 65536 bytes, more than a context of 4096 tokens can hold (a token is at most 16 bytes); shorten it or use a larger --ctx"
	if code == 0 || !strings.Contains(errb.String(), want) {
		t.Errorf("50 MB on stdin: exit %d, stderr %q; want %q", code, errb.String(), want)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("refusing a 50 MB prompt allocated %.1f MB", float64(alloc)/(1<<20))
	if alloc > 64<<20 {
		t.Errorf("refusing a 50 MB prompt allocated %d MB", alloc>>20)
	}

	// Under the byte bound, over the context in tokens.
	code, _, stderr := runCLI(t, strings.Repeat("a b ", 100), "run", "--ctx", "64", "--max-tokens", "1", "--backend", "cpu")
	if want := "context full: the prompt is more than 64 tokens, the context; shorten it or use a larger --ctx"; code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("200 tokens in a context of 64: exit %d, stderr %q; want %q", code, stderr, want)
	}
	// A chat line that does not fit is reported and the chat goes on.
	code, stdout, stderr := runCLI(t, strings.Repeat("a b ", 100)+"\nA computer\n", "run", "--chat", "--ctx", "64", "--max-tokens", "7", "--backend", "cpu")
	if want := "the conversation is more than 63 tokens and no longer fits the context of 64"; code != 0 || !strings.Contains(stderr, want) || !strings.Contains(stdout, "salesman") {
		t.Errorf("a chat line of 200 tokens in a context of 64: exit %d, stdout %q, stderr %q; want %q and then a reply", code, stdout, stderr, want)
	}
	code, _, stderr = runCLI(t, "", "run", "--prompt", strings.Repeat("a b ", 100), "--ctx", "64", "--max-tokens", "1", "--backend", "cpu")
	if want := "the prompt is more than 64 tokens, the context"; code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("--prompt of 200 tokens in a context of 64: exit %d, stderr %q; want %q", code, stderr, want)
	}
}
