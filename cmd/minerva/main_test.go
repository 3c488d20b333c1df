package main

import (
	"bytes"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/runtime/weights"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// TestLogitsCommand writes logits for the tiny-random prompt plus its
// greedy continuation and compares the file with transformers' logits_full:
// the first half ran as a prefill, the rest one token at a time.
func TestLogitsCommand(t *testing.T) {
	ref, err := weights.Open("../../testdata/gpt-oss/tiny-random/reference.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	ids := append(readI32(t, ref, "input_ids"), readI32(t, ref, "generated_ids")...)
	var parts []string
	for _, id := range ids {
		parts = append(parts, itoa(int(id)))
	}
	out := filepath.Join(t.TempDir(), "logits.safetensors")
	code, _, stderr := runCLI(t, "", "logits", "../../models/gpt-oss.arch", "--model", "../../testdata/gpt-oss/tiny-random",
		"--ids", strings.Join(parts, ","), "--out", out, "--kv", "f32", "--backend", "cpu")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got, err := weights.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	lt, ok := got.Tensor("logits")
	if !ok || lt.DType != weights.F32 || len(lt.Shape) != 2 || lt.Shape[0] != int64(len(ids)) || lt.Shape[1] != 512 {
		t.Fatalf("logits tensor: %+v", lt)
	}
	g := make([]float32, lt.NumElements())
	weights.F32FromBytes(g, lt.Data)
	rt, _ := ref.Tensor("logits_full")
	w := make([]float32, rt.NumElements())
	weights.F32FromBytes(w, rt.Data)
	var num, den float64
	for i := range w {
		d := float64(g[i] - w[i])
		num += d * d
		den += float64(w[i]) * float64(w[i])
	}
	if e := math.Sqrt(num / den); e > 1e-4 {
		t.Fatalf("relative error %.3e > 1e-4", e)
	}
	if len(got.Names()) != 1 {
		t.Fatalf("the file holds %v; want only logits", got.Names())
	}
}

func readI32(t *testing.T, ck *weights.Checkpoint, name string) []int32 {
	tn, ok := ck.Tensor(name)
	if !ok {
		t.Fatalf("no %s", name)
	}
	out := make([]int32, tn.NumElements())
	for i := range out {
		b := tn.Data[4*i:]
		out[i] = int32(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	}
	return out
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestRunEmbeddedDefault is the README's first command: the embedded model
// continues a prompt greedily to the recorded text.
func TestRunEmbeddedDefault(t *testing.T) {
	code, stdout, stderr := runCLI(t, "", "run", "--prompt", "A computer", "--max-tokens", "7")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := " salesman knows when he's lying."; !strings.HasPrefix(stdout, want) {
		t.Fatalf("stdout %q, want prefix %q", stdout, want)
	}
	if !strings.Contains(stderr, "tok/s") {
		t.Fatalf("no summary on stderr: %q", stderr)
	}
}

// TestCommandErrors: wrong flags and bad input give a clear message on
// stderr and a non-zero exit.
func TestCommandErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"logits", "../../models/gpt-oss.arch", "--model", "../../testdata/gpt-oss/tiny-random", "--ids", "1,x", "--out", "/dev/null"}, `--ids: "x" is not a token id`},
		{[]string{"logits", "../../models/gpt-oss.arch", "--model", "../../testdata/gpt-oss/tiny-random", "--ids", "1,9999", "--out", "/dev/null"}, "token id 9999 is outside the vocabulary (0..511)"},
		{[]string{"logits", "../../models/gpt-oss.arch", "--model", "../../testdata/gpt-oss/tiny-random", "--ids", "1,2,3", "--ctx", "2", "--out", "/dev/null"}, "use a larger --ctx"},
		{[]string{"logits", "../../models/gpt-oss.arch", "--model", "../../testdata", "--ids", "1", "--out", "/dev/null"}, "contains no SafeTensors checkpoint"},
		{[]string{"run", "--prompt", "x", "--kv", "q7"}, "--kv must be one of"},
		{[]string{"run", "--bogus"}, "unknown flag --bogus"},
		{[]string{"run", "--prompt", "x", "--max-tokens", "0"}, "--max-tokens must be at least 1"},
		{[]string{"run"}, "no prompt"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", c.args, code, stderr, c.want)
		}
	}
}

// TestLogitsSet: --set reaches the compiled .arch, and a list value with
// commas is one value (the flag is not split on commas): every layer of
// tiny-random made full attention changes the logits of a prompt longer
// than its window, and an artifact refuses --set.
func TestLogitsSet(t *testing.T) {
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = itoa(i*37%500 + 1)
	}
	logits := func(extra ...string) []float32 {
		out := filepath.Join(t.TempDir(), "logits.safetensors")
		args := append([]string{"logits", "../../models/gpt-oss.arch", "--model", "../../testdata/gpt-oss/tiny-random",
			"--ids", strings.Join(ids, ","), "--out", out, "--kv", "f32", "--backend", "cpu"}, extra...)
		code, _, stderr := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, stderr)
		}
		got, err := weights.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer got.Close()
		lt, _ := got.Tensor("logits")
		g := make([]float32, lt.NumElements())
		weights.F32FromBytes(g, lt.Data)
		return g
	}
	base := logits()
	full := logits("--set", `layer_types=["full_attention", "full_attention", "full_attention", "full_attention"]`)
	same := logits("--set", `layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"]`)
	if fmt.Sprint(base) != fmt.Sprint(same) {
		t.Fatal("--set of the config's own layer_types changed the logits")
	}
	if fmt.Sprint(base) == fmt.Sprint(full) {
		t.Fatal("--set layer_types=[all full attention] did not change the logits")
	}
	code, _, stderr := runCLI(t, "", "logits", "../../examples/fortune/artifact", "--ids", "1,2", "--out", filepath.Join(t.TempDir(), "l.safetensors"), "--set", "layers=2")
	if code == 0 || !strings.Contains(stderr, "is already compiled: recompile it with minervac compile --set") {
		t.Fatalf("--set with an artifact: exit %d: %s", code, stderr)
	}
}
