package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minerva-ml/minerva/internal/testcache"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestSynthCommand writes tiny-random's and llama-tiny's layouts, sharded,
// and runs each through `minerva logits` on the CPU.
func TestSynthCommand(t *testing.T) {
	for _, c := range []struct{ arch, config, archFile string }{
		{"gpt-oss", "../../testdata/gpt-oss/tiny-random/config.json", "../../models/gpt-oss.arch"},
		{"../../models/llama.arch", "../../testdata/llama/llama-tiny", "../../models/llama.arch"},
	} {
		dir := filepath.Join(t.TempDir(), "synth")
		code, stdout, stderr := runCLI(t, "", "synth", c.arch, "--config", c.config, "--out", dir, "--shard-size", "100000", "--seed", "5")
		if code != 0 {
			t.Fatalf("synth %s: exit %d: %s", c.arch, code, stderr)
		}
		if !strings.Contains(stdout, "model-00001-of-") || !strings.Contains(stdout, "model.safetensors.index.json") || !strings.Contains(stderr, "wrote ") {
			t.Errorf("synth %s: stdout %q, stderr %q", c.arch, stdout, stderr)
		}
		out := filepath.Join(t.TempDir(), "logits.safetensors")
		code, _, stderr = runCLI(t, "", "logits", c.archFile, "--model", dir, "--ids", "1,2,3", "--out", out, "--backend", "cpu")
		if code != 0 {
			t.Fatalf("logits on the synthetic %s: exit %d: %s", c.arch, code, stderr)
		}
		ck, err := weights.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		lt, _ := ck.Tensor("logits")
		vals := make([]float32, lt.NumElements())
		weights.F32FromBytes(vals, lt.Data)
		for i, v := range vals {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: logit %d is %g", c.arch, i, v)
			}
		}
		ck.Close()
	}
}

// TestSynthErrors: bad arguments name the problem.
func TestSynthErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"synth", "gpt-neo", "--out", dir}, "gpt-neo is neither an .arch file nor a shipped architecture (gpt-oss, llama, qwen3, qwen3-moe, gemma3, phi3, mistral)"},
		{[]string{"synth", "gpt-oss", "--out", dir, "--set", "hiden=3"}, "the model has no parameter 'hiden'"},
		{[]string{"synth", "gpt-oss", "--out", dir, "--tokenizer", "/nonexistent/tokenizer.json"}, "--tokenizer"},
		{[]string{"synth", "gpt-oss"}, "missing flags: --out=DIR"},
	}
	for _, c := range cases {
		code, _, stderr := runCLI(t, "", c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure mentioning %q", c.args, code, stderr, c.want)
		}
	}
}

// timeToReady starts `minerva run` with args and returns the time from
// starting the process to the line that reports the model ready (mapped,
// validated and bound to the backend), and the loader's own figure from
// that line. The process is killed then: what follows is generation.
func timeToReady(tb testing.TB, bin string, env []string, args ...string) (wall time.Duration, load string) {
	tb.Helper()
	cmd := exec.Command(bin, append([]string{"run", "--prompt", "Hello", "--max-tokens", "1", "--backend", "cpu"}, args...)...)
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	sc := bufio.NewScanner(stderr)
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		if _, after, ok := strings.Cut(line, " ready in "); ok {
			wall = time.Since(start)
			load, _, _ = strings.Cut(after, ":")
			return wall, load
		}
		lines = append(lines, line)
	}
	tb.Fatalf("minerva %v never reported the model ready; stderr:\n%s", args, strings.Join(lines, "\n"))
	return 0, ""
}

// synthTiny writes tiny-random's layout into a temporary directory.
func synthTiny(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "tiny")
	var out, errb bytes.Buffer
	if code := run([]string{"synth", "gpt-oss", "--config", "../../testdata/gpt-oss/tiny-random", "--out", dir}, &Env{Stdout: &out, Stderr: &errb}); code != 0 {
		tb.Fatalf("synth: exit %d: %s", code, errb.String())
	}
	return dir
}

// buildMinerva builds the command into a temporary directory.
func buildMinerva(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "minerva")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkTimeToReady measures `minerva run` from process start to the
// model ready, for the embedded fortune model (9 MB, no file to map), a
// synthesised tiny-random checkpoint, and, when MINERVA_SYNTH_DIR is set,
// that checkpoint (gpt-oss-20b in docs/benchmarks.md) in one run: with
// its tokenizer.json read from the tokenizer cache (written by an untimed
// run first), with an empty cache each run (the first run after a new
// tokenizer.json: parsed, then the cache written), with the cache off
// (parsed), and without tokenizer.json:
//
//	MINERVA_SYNTH_DIR=/tmp/gpt-oss-20b go test ./cmd/minerva/ -run '^$' -bench TimeToReady -benchtime 20x
func BenchmarkTimeToReady(b *testing.B) {
	bin := buildMinerva(b)
	tiny := synthTiny(b)
	type model struct {
		name string
		args []string
		// cache is MINERVA_CACHE_DIR for a run: "" for this process's
		// (TestMain's), "off", or "fresh" for a new empty directory.
		cache string
	}
	models := []model{
		{"fortune", nil, ""},
		{"tiny-random", []string{"--model", tiny}, ""},
	}
	if dir := os.Getenv("MINERVA_SYNTH_DIR"); dir != "" {
		// The same checkpoint without its tokenizer.json (links to the
		// other files), to separate reading a 27 MB tokenizer from
		// mapping the weights.
		bare := filepath.Join(b.TempDir(), "no-tokenizer")
		if err := os.Mkdir(bare, 0o755); err != nil {
			b.Fatal(err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "tokenizer.json" {
				abs, _ := filepath.Abs(filepath.Join(dir, e.Name()))
				if err := os.Symlink(abs, filepath.Join(bare, e.Name())); err != nil {
					b.Fatal(err)
				}
			}
		}
		name := filepath.Base(dir)
		models = append(models,
			model{name, []string{"--model", dir}, ""},
			model{name + "-first-run", []string{"--model", dir}, "fresh"},
			model{name + "-no-cache", []string{"--model", dir}, "off"},
			model{name + "-no-tokenizer", []string{"--model", bare}, ""})
	}
	for _, m := range models {
		b.Run(m.name, func(b *testing.B) {
			env := func() []string {
				switch m.cache {
				case "fresh":
					return append(os.Environ(), "MINERVA_CACHE_DIR="+b.TempDir())
				case "off":
					return append(os.Environ(), "MINERVA_CACHE_DIR=off")
				}
				return nil
			}
			if m.cache == "" {
				timeToReady(b, bin, nil, m.args...) // writes the tokenizer cache
			}
			var walls, loads []time.Duration
			for b.Loop() {
				d, l := timeToReady(b, bin, env(), m.args...)
				walls = append(walls, d)
				if ld, err := time.ParseDuration(l); err == nil {
					loads = append(loads, ld)
				}
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
			slices.Sort(walls)
			slices.Sort(loads)
			b.ReportMetric(ms(walls[len(walls)/2]), "ms-median")
			b.ReportMetric(ms(walls[0]), "ms-min")
			b.ReportMetric(ms(walls[len(walls)-1]), "ms-max")
			if len(loads) > 0 {
				b.ReportMetric(ms(loads[len(loads)/2]), "ms-median-in-Load")
			}
		})
	}
}

// TestTimeToReadySmoke runs the benchmark's harness once on a synthesised
// tiny-random checkpoint, with this test binary standing in for minerva.
func TestTimeToReadySmoke(t *testing.T) {
	if os.Getenv("MINERVA_AS_MAIN") == "1" {
		t.Skip("running as minerva")
	}
	tiny := synthTiny(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	wall, load := timeToReady(t, self, append(os.Environ(), "MINERVA_AS_MAIN=1"), "--model", tiny)
	if d, err := time.ParseDuration(load); err != nil || d <= 0 || d > wall {
		t.Errorf("ready after %v, the loader says %q", wall, load)
	}
}

// TestMain lets the test binary act as minerva (MINERVA_AS_MAIN=1), so
// that the smoke test can time a real process without building one.
//
// Unless MINERVA_CACHE_DIR is set, the tokenizer cache goes to a
// directory of the test process's own, not the user's cache.
func TestMain(m *testing.M) {
	if os.Getenv("MINERVA_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	if os.Getenv("MINERVA_CACHE_DIR") != "" {
		os.Exit(m.Run())
	}
	os.Exit(testcache.Run(m))
}
