package loader

import (
	"os"
	"path/filepath"
	"testing"
)

func TestModelName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gpt-oss-20b")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "model.safetensors"), nil, 0o644)
	t.Chdir(filepath.Dir(dir))
	for in, want := range map[string]string{
		dir:                        "gpt-oss-20b",
		dir + "/":                  "gpt-oss-20b",
		"./gpt-oss-20b/":           "gpt-oss-20b",
		"gpt-oss-20b/.":            "gpt-oss-20b",
		".":                        filepath.Base(filepath.Dir(dir)),
		dir + "/model.safetensors": "gpt-oss-20b",
		"openai/gpt-oss-20b":       "openai/gpt-oss-20b", // not a directory: a Hugging Face id
	} {
		if got := ModelName(in); got != want {
			t.Errorf("ModelName(%q) = %q, want %q", in, got, want)
		}
	}
}
