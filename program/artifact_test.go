package program

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestDecodeArtifactRefusesUndeclaredKernels edits the shipped fortune
// artifact's manifest so that a dispatch, or a stage of one, launches a
// kernel the manifest does not declare, and expects an error naming the
// op, the kernel and the fix, not a failure inside a backend's load.
func TestDecodeArtifactRefusesUndeclaredKernels(t *testing.T) {
	const dir = "../examples/fortune/artifact"
	mb, err := os.ReadFile(dir + "/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	metal, err := os.ReadFile(dir + "/kernels.metal")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecodeArtifact(mb, string(metal), dir); err != nil {
		t.Fatalf("the shipped artifact: %v", err)
	}
	edit := func(t *testing.T, change func(m map[string]any)) error {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(mb, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = DecodeArtifact(out, string(metal), dir)
		return err
	}
	first := func(m map[string]any) map[string]any { return m["dispatches"].([]any)[0].(map[string]any) }
	cases := []struct {
		name   string
		change func(m map[string]any)
		want   string
	}{
		{"kernel", func(m map[string]any) {
			ks := first(m)["kernels"].(map[string]any)
			for v := range ks {
				ks[v] = "no_such_kernel"
			}
		}, `op 0 (embedding) launches kernel "no_such_kernel"`},
		{"stage", func(m map[string]any) {
			first(m)["then"] = []any{map[string]any{"variant": "decode", "kernel": "no_such_stage"}}
		}, `op 0 (embedding) has a decode stage launching kernel "no_such_stage"`},
		{"null dispatch", func(m map[string]any) { m["dispatches"].([]any)[1] = nil }, "dispatch 1 is null"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := edit(t, c.change)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "minervac compile") {
				t.Fatalf("error %q does not say %q and the fix", err, c.want)
			}
		})
	}
}
