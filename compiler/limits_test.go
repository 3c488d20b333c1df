package compiler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/dsl/budget"
)

// A 50 MB .arch file is neither read whole nor lexed: ReadSource stops one
// byte past the limit and the parser refuses it at that byte.
func TestFiftyMegabyteSourceRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.arch")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	head := "model \"big\"\nconfig {\n  a = [" + strings.Repeat("1, ", 100) + "\n"
	if _, err := f.WriteString(head); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 20); err != nil { // the rest reads as zero bytes
		t.Fatal(err)
	}
	f.Close()
	opts, err := SourceOptions(path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Source) != budget.DefaultSourceBytes+1 {
		t.Fatalf("read %d bytes of a 50 MB file, want %d", len(opts.Source), budget.DefaultSourceBytes+1)
	}
	opts.StopAfter = "legalize"
	_, err = Compile(opts)
	// Line 4 starts after the header; byte 1048576 is on it.
	col := budget.DefaultSourceBytes - len(head) + 1
	want := path + ":4:" + itoa(col) + ": the file goes on past the limit of 1048576 bytes for an .arch file"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// atLimits are inputs that spend (nearly) all of one default limit: what
// `minervac check` can be made to do at worst. BenchmarkCheckAtLimits
// measures them; docs/limits.md reports the figures.
var atLimits = map[string]string{
	// 16378 tokens: a list of 8181 ints.
	"tokens": "model \"t\"\nconfig {\n  a = [" + strings.Repeat("1,", 8180) + "1]\n}\n",
	// The same, with two syntax errors: error recovery parses it twice.
	"tokens-recovery": "model \"t\"\nconfig {\n  a = [" + strings.Repeat("1,", 8175) + "1]\n  b = )\n  c = )\n}\n",
	// 260,000 evaluation steps in nested loops.
	"steps": limitModel("", "  for i in 0..500 {\n    for j in 0..520 {\n    }\n  }\n"),
	// 262,000 list elements.
	"elements": "model \"t\"\nconfig {\n  a = [0] * 262000\n  check len(a) == 262000\n}\n",
	// 16 MiB of strings: 8 + 4 + 2 + ... MiB.
	"string-bytes": limitModel("", "  s = \"ab\"\n  for i in 0..22 {\n    s = s + s\n  }\n"),
	// 16384 unrolled ops.
	"unrolled": limitModel("", "  for i in 0..16380 {\n    x = x + x\n  }\n"),
	// 16202 unrolled ops that the fusion rules rewrite: a sweep per match
	// over every op made this take seconds.
	"unrolled-fusing": "model \"t\"\nconfig {\n  vocab: int = 16\n}\nweights {\n  embed: f32[vocab, 64] = \"embed\"\n" +
		"  norm: f32[64] = \"norm\"\n  w: f32[64, 64] = \"w\"\n  wq: f32[64, 64] = \"wq\"\n}\nforward(tokens) {\n  x = embedding(embed, tokens)\n" +
		"  for i in 0..2700 {\n    h = rmsnorm(x, norm, eps=1e-5)\n    q = rope(linear(h, wq), head_dim=16, theta=10000.0)\n" +
		"    a = attention(q, q, q, heads=4, kv_heads=4, head_dim=16)\n    x = x + linear(a, w)\n  }\n  return linear(x, embed)\n}\n",
	// 100 errors, then evaluation stops.
	"errors": "model \"t\"\nconfig {\n" + strings.Repeat("  a = b\n", 2700) + "}\n",
}

func limitModel(cfg, body string) string {
	return "model \"t\"\nconfig {\n  vocab: int = 16\n" + cfg + "}\nweights {\n  embed: f32[vocab, 8] = \"embed\"\n}\n" +
		"forward(tokens) {\n  x = embedding(embed, tokens)\n" + body + "  return linear(x, embed)\n}\n"
}

func BenchmarkCheckAtLimits(b *testing.B) {
	for _, name := range []string{"tokens", "tokens-recovery", "steps", "elements", "string-bytes", "unrolled", "unrolled-fusing", "errors"} {
		src := atLimits[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_, _ = Compile(Options{File: "t.arch", Source: src, StopAfter: "legalize"})
			}
		})
	}
}

// TestAtLimitsStayWithin: each input of BenchmarkCheckAtLimits ends in
// success or in the diagnostic of the limit it is built to reach, so the
// benchmark measures what it says.
func TestAtLimitsStayWithin(t *testing.T) {
	want := map[string]string{
		"tokens":          "the file has no forward block",
		"tokens-recovery": "unexpected ')'",
		"steps":           "",
		"elements":        "the file has no forward block",
		"string-bytes":    "",
		"unrolled":        "",
		"unrolled-fusing": "",
		"errors":          "too many errors: only the first 100 are shown",
	}
	for name, src := range atLimits {
		_, err := Compile(Options{File: "t.arch", Source: src, StopAfter: "legalize"})
		switch {
		case want[name] == "" && err != nil:
			t.Errorf("%s: %v", name, firstLine(err.Error()))
		case want[name] != "" && (err == nil || !strings.Contains(err.Error(), want[name])):
			t.Errorf("%s: got %v, want %q", name, err, want[name])
		case err != nil && strings.Contains(err.Error(), "past the limit"):
			t.Errorf("%s went past a limit: %v", name, firstLine(err.Error()))
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
