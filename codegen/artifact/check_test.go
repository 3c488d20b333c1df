package artifact

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEditedManifestIsRefused: every figure the manifest derives from its
// IR is recomputed on reading; an edit is refused with the field and the
// command to recompile. Setting arena.Bytes to -1 or 16, or kv.Bytes to
// 16, used to make `minerva run DIR` panic.
func TestEditedManifestIsRefused(t *testing.T) {
	dir := t.TempDir()
	u := compileTiny(t)
	if err := Write(dir, Build(u, u.Generated), u.Generated.Metal, "tinyrandom"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Read(dir); err != nil {
		t.Fatalf("the artifact as written: %v", err)
	}
	orig, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		edit func(m map[string]any)
		want string
	}{
		{func(m map[string]any) { obj(m, "arena")["Bytes"] = -1 }, "arena.Bytes is -1, but the program it describes needs"},
		{func(m map[string]any) { obj(m, "arena")["Bytes"] = 16 }, "arena.Bytes is 16, but"},
		{func(m map[string]any) { obj(m, "kv")["Bytes"] = 16 }, "kv.Bytes is 16, but"},
		{func(m map[string]any) { obj(m, "arena")["Scratch"] = 1 << 62 }, "arena.Scratch is 4611686018427387904, but"},
		{func(m map[string]any) {
			obj(obj(m, "arena")["Slots"].(map[string]any), "3")["Offset"] = 1 << 40
		}, "arena.Slots[3].Offset is 1099511627776, but"},
		{func(m map[string]any) {
			obj(m, "kv")["Layers"].([]any)[1].(map[string]any)["Capacity"] = 1
		}, "kv.Layers[1].Capacity is 1, but"},
		{func(m map[string]any) { obj(m, "plan")["ctx"] = 0 }, "plan: --ctx 0"},
		{func(m map[string]any) { obj(m, "plan")["ctx"] = 8192 }, "kv.Ctx is 4096, but the program it describes needs 8192"},
		{func(m map[string]any) {
			m["dispatches"].([]any)[0].(map[string]any)["bindings"].([]any)[2].(map[string]any)["value"] = 12345
		}, "dispatches[0].bindings[2].value is 12345"},
		{func(m map[string]any) { m["weights"].([]any)[0].(map[string]any)["shape"] = []any{1} }, "weights[0].shape length is 1"},
	}
	for _, c := range cases {
		var m map[string]any
		if err := json.Unmarshal(orig, &m); err != nil {
			t.Fatal(err)
		}
		c.edit(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, _, err = Read(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "recompile with minervac compile models/gpt-oss.arch -o "+dir) {
			t.Errorf("got %v\nwant an error containing %q and the command to recompile", err, c.want)
		}
	}
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }
