package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestStatsSizeBounds: `minervac stats --ctx 2^62` used to report a KV
// cache of a few megabytes (the size wrapped around); sizes out of bounds
// are now refused, naming the flag. In bounds, kv_bytes grows with the
// context as the layout says: gpt-oss-20b's 12 full-attention layers hold
// 8 kv heads of 64 halves, keys and values, at every position.
func TestStatsSizeBounds(t *testing.T) {
	for _, c := range []struct{ args, want string }{
		{"--ctx 4611686018427387904", "--ctx 4611686018427387904: the context must be from 1 to 16777216"},
		{"--ctx 0", "--ctx 0"},
		{"--batch 0", "--batch 0"},
		{"--batch 1000000000", "--batch 1000000000"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"stats", "../../models/gpt-oss.arch"}, strings.Fields(c.args)...), &out, &errb)
		if code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("stats %s: exit %d, stdout %s, stderr %s; want an error containing %q", c.args, code, out.String(), errb.String(), c.want)
		}
	}
	kvBytes := func(ctx string) int64 {
		var out, errb bytes.Buffer
		if code := run([]string{"stats", "../../models/gpt-oss.arch", "--ctx", ctx}, &out, &errb); code != 0 {
			t.Fatalf("stats --ctx %s: exit %d: %s", ctx, code, errb.String())
		}
		var st struct {
			KV int64 `json:"kv_bytes"`
		}
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		return st.KV
	}
	if d := kvBytes("131072") - kvBytes("65536"); d != 65536*12*8*64*2*2 {
		t.Errorf("kv_bytes grows by %d from ctx 65536 to 131072, want %d", d, 65536*12*8*64*2*2)
	}
}
