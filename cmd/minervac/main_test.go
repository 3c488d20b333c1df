package main

import (
	"bytes"
	"testing"
)

// TestCheckReportsKernelLimits: check runs through the legalize pass, so a
// head wider than the kernels hold is reported at the attention call, as a
// positioned diagnostic, instead of check saying ok and compile failing
// with "op 9 (cache_kv): heads wider than 256 are not supported".
func TestCheckReportsKernelLimits(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", "../../models/gpt-oss.arch", "--set", "head_dim=512"}, &stdout, &stderr)
	want := `../../models/gpt-oss.arch:92:9: heads wider than 256 are not supported (head_dim is 512, v_head_dim 512)
        a = attention(q, k, v, heads=heads, kv_heads=kv_heads, head_dim=head_dim, sinks=sinks[i],
            ^
  hint: the Metal KV-cache kernels hold one head in threadgroup memory; use a head_dim and v_head_dim of at most 256
`
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
