package main

import (
	"bytes"
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
