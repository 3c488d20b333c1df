package synth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/config"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/loader"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

const (
	gptOssArch = "../../models/gpt-oss.arch"
	llamaArch  = "../../models/llama.arch"
	tinyRandom = "../../testdata/gpt-oss/tiny-random"
	llamaTiny  = "../../testdata/llama/llama-tiny"
)

func compile(t testing.TB, arch, configPath string, sets ...string) *compiler.Unit {
	t.Helper()
	opts, err := compiler.SourceOptions(arch, configPath, sets)
	if err != nil {
		t.Fatal(err)
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func baseOf(t testing.TB, configPath string) map[string]any {
	if configPath == "" {
		return nil
	}
	js, err := compiler.ReadConfig(configPath)
	if err != nil {
		t.Fatal(err)
	}
	return js.Data
}

// TestLayoutMatchesFixtures: the layout of the tiny fixtures' configs is
// exactly the tensors (names, dtypes, shapes) of the fixture checkpoints,
// which transformers wrote in the released models' layout.
func TestLayoutMatchesFixtures(t *testing.T) {
	for _, c := range []struct{ arch, dir string }{{gptOssArch, tinyRandom}, {llamaArch, llamaTiny}} {
		t.Run(filepath.Base(c.dir), func(t *testing.T) {
			l, err := Plan(compile(t, c.arch, c.dir), 0)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := weights.Open(c.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			var got []string
			for _, s := range l.Shards {
				for _, ten := range s.Tensors {
					got = append(got, fmt.Sprintf("%s %s %v", ten.Name, ten.DType, ten.Shape))
				}
			}
			var want []string
			for _, name := range ck.Names() {
				ten, _ := ck.Tensor(name)
				want = append(want, fmt.Sprintf("%s %s %v", ten.Name, ten.DType, ten.Shape))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("layout differs from the fixture:\n got %d tensors: %v\nwant %d tensors: %v", len(got), got, len(want), want)
			}
			if l.Index || len(l.Shards) != 1 || l.Shards[0].File != "model.safetensors" {
				t.Errorf("a small checkpoint should be one model.safetensors: %+v", l.Shards)
			}
		})
	}
}

// TestGptOss20bLayout checks the default layout against the released
// gpt-oss-20b checkpoint as the fixtures' README describes it: 459
// tensors, experts as U8 blocks [E, rows, cols/32, 16] and scales [E,
// rows, cols/32], everything else BF16, in shards of at most 5 GB.
func TestGptOss20bLayout(t *testing.T) {
	l, err := Plan(compile(t, gptOssArch, ""), 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Tensors != 459 {
		t.Errorf("%d tensors, want 459", l.Tensors)
	}
	if l.Bytes < 13e9 || l.Bytes > 14e9 {
		t.Errorf("%d bytes, want about 13.8e9", l.Bytes)
	}
	if !l.Index || len(l.Shards) != 3 {
		t.Fatalf("want 3 shards and an index, got %d shards (index %v)", len(l.Shards), l.Index)
	}
	want := map[string]string{
		"model.layers.7.mlp.experts.gate_up_proj_blocks": "u8 [32 5760 90 16]",
		"model.layers.7.mlp.experts.gate_up_proj_scales": "u8 [32 5760 90]",
		"model.layers.7.mlp.experts.gate_up_proj_bias":   "bf16 [32 5760]",
		"model.layers.7.mlp.experts.down_proj_blocks":    "u8 [32 2880 90 16]",
		"model.layers.7.mlp.experts.down_proj_scales":    "u8 [32 2880 90]",
		"model.layers.7.mlp.experts.down_proj_bias":      "bf16 [32 2880]",
		"model.layers.7.self_attn.q_proj.weight":         "bf16 [4096 2880]",
		"model.layers.7.self_attn.sinks":                 "bf16 [64]",
		"model.embed_tokens.weight":                      "bf16 [201088 2880]",
		"lm_head.weight":                                 "bf16 [201088 2880]",
	}
	for i, s := range l.Shards {
		if name := fmt.Sprintf("model-%05d-of-00003.safetensors", i+1); s.File != name {
			t.Errorf("shard %d is %s, want %s", i, s.File, name)
		}
		if s.Bytes > DefaultShardBytes {
			t.Errorf("%s holds %d bytes, more than %d", s.File, s.Bytes, int64(DefaultShardBytes))
		}
		for _, ten := range s.Tensors {
			if w, ok := want[ten.Name]; ok {
				if got := fmt.Sprintf("%s %v", ten.DType, ten.Shape); got != w {
					t.Errorf("%s: %s, want %s", ten.Name, got, w)
				}
				delete(want, ten.Name)
			}
			if !strings.HasSuffix(ten.Name, "_blocks") && !strings.HasSuffix(ten.Name, "_scales") && ten.DType != weights.BF16 {
				t.Errorf("%s is %s, want bf16", ten.Name, ten.DType)
			}
		}
	}
	for name := range want {
		t.Errorf("%s is missing", name)
	}
}

// writeTiny synthesises tiny-random's layout.
func writeTiny(t *testing.T, opts Options) (string, *compiler.Unit) {
	t.Helper()
	u := compile(t, gptOssArch, tinyRandom)
	dir := filepath.Join(t.TempDir(), "ck")
	if _, err := Write(dir, u, baseOf(t, tinyRandom), opts); err != nil {
		t.Fatal(err)
	}
	return dir, u
}

// TestWriteRunsOnTheCPU: a synthesised checkpoint, sharded, validates
// against the manifest, loads through the loader (which reads the written
// config.json to pick the architecture) and gives finite logits for every
// position of a prompt on both shipped architectures.
func TestWriteRunsOnTheCPU(t *testing.T) {
	for _, c := range []struct{ arch, dir string }{{gptOssArch, tinyRandom}, {llamaArch, llamaTiny}} {
		t.Run(filepath.Base(c.dir), func(t *testing.T) {
			u := compile(t, c.arch, c.dir)
			dir := filepath.Join(t.TempDir(), "ck")
			var progress bytes.Buffer
			res, err := Write(dir, u, baseOf(t, c.dir), Options{Seed: 7, ShardBytes: 100_000, Progress: &progress})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Layout.Index || len(res.Layout.Shards) < 2 {
				t.Fatalf("a 100 kB shard limit should give several shards, got %d", len(res.Layout.Shards))
			}
			if !strings.Contains(progress.String(), fmt.Sprintf("wrote %d tensors", res.Layout.Tensors)) {
				t.Errorf("progress output: %q", progress.String())
			}
			m, err := loader.Load(loader.Spec{Model: dir, Backend: "cpu", Plan: compiler.PlanOptions{Ctx: 64, Batch: 16}})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			ids := []int32{1, 5, 9, 13, 2, 7}
			logits, err := m.Backend.Forward(ids, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(logits) != len(ids)*m.Program.Vocab() {
				t.Fatalf("%d logits", len(logits))
			}
			var spread float64
			for i, v := range logits {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("logit %d is %g", i, v)
				}
				spread = max(spread, math.Abs(float64(v)))
			}
			if spread < 1e-3 || spread > 1e3 {
				t.Errorf("largest logit magnitude %g: the values are not sane", spread)
			}
		})
	}
}

// TestDeterministic: the files depend on the seed alone, not on the number
// of threads.
func TestDeterministic(t *testing.T) {
	a, _ := writeTiny(t, Options{Seed: 3, Workers: 1})
	b, _ := writeTiny(t, Options{Seed: 3, Workers: 4})
	c, _ := writeTiny(t, Options{Seed: 4})
	read := func(dir string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if !bytes.Equal(read(a), read(b)) {
		t.Error("the same seed on 1 and 4 threads gave different files")
	}
	if bytes.Equal(read(a), read(c)) {
		t.Error("seeds 3 and 4 gave the same file")
	}
}

// TestSegmentsAreIndependent: a tensor read in odd-sized pieces gives the
// bytes it gives in whole segments, and segments differ from each other.
func TestSegmentsAreIndependent(t *testing.T) {
	ten := Tensor{Name: "x", DType: weights.BF16, Bytes: 3*segmentBytes + 1000, Fill: Fill{Kind: Normal, Std: 1}}
	whole := make([]byte, ten.Bytes)
	r := newReader(1, ten, nil)
	if n, err := readFull(r, whole); err != nil || n != len(whole) {
		t.Fatalf("read %d of %d bytes: %v", n, len(whole), err)
	}
	pieces := make([]byte, 0, ten.Bytes)
	r = newReader(1, ten, nil)
	buf := make([]byte, 12345)
	for {
		n, err := r.Read(buf)
		pieces = append(pieces, buf[:n]...)
		if err != nil {
			break
		}
	}
	if !bytes.Equal(whole, pieces) {
		t.Error("reading in pieces of 12345 bytes changed the data")
	}
	if bytes.Equal(whole[:1024], whole[segmentBytes:segmentBytes+1024]) {
		t.Error("two segments start with the same bytes")
	}
}

func readFull(r *reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestValueSpreads decodes a written checkpoint with the weights package
// and checks every kind of tensor: matrices (bf16 and MXFP4 after
// dequantisation) have the 1/sqrt(fan-in) spread, norms sit near 1,
// biases are small, and MXFP4 scales stay within one of their centre.
func TestValueSpreads(t *testing.T) {
	dir, u := writeTiny(t, Options{Seed: 11})
	ck, err := weights.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	fills := fillsFor(u.Func)
	for _, w := range u.Func.Weights {
		var vals []float32
		if w.DType == ir.MXFP4 {
			blocks, _ := ck.Tensor(w.Checkpoint + "_blocks")
			scales, _ := ck.Tensor(w.Checkpoint + "_scales")
			centre := mxfp4Exponent(fanInStd(w))
			for _, s := range scales.Data {
				if d := int(s) - centre; d < -1 || d > 1 {
					t.Fatalf("%s: scale byte %d, want %d±1", w.Name, s, centre)
				}
			}
			vals = make([]float32, 2*len(blocks.Data))
			weights.DequantMXFP4Row(vals, blocks.Data, scales.Data)
		} else {
			ten, _ := ck.Tensor(w.Checkpoint)
			vals = make([]float32, ten.NumElements())
			if err := weights.ToF32(vals, ten.DType, ten.Data); err != nil {
				t.Fatal(err)
			}
		}
		var sum, sq float64
		for _, v := range vals {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		n := float64(len(vals))
		mean := sum / n
		std := math.Sqrt(sq/n - mean*mean)
		f := fills.of(w, 0)
		switch {
		case w.DType == ir.MXFP4:
			// The centre scale is the nearest power of two: within 2^±0.5.
			if r := std / fanInStd(w); r < 0.6 || r > 1.6 {
				t.Errorf("%s: dequantised spread %.4f, %.2f times 1/sqrt(fan-in)", w.Name, std, r)
			}
		case n >= 256:
			if math.Abs(mean-f.Mean) > 4*f.Std/math.Sqrt(n)+0.01 || math.Abs(std/f.Std-1) > 0.15 {
				t.Errorf("%s: mean %.4f std %.4f, want %.4f and %.4f", w.Name, mean, std, f.Mean, f.Std)
			}
		default:
			// Short vectors: every value within 3.5 standard deviations.
			for _, v := range vals {
				if math.Abs(float64(v)-f.Mean) > 3.5*f.Std+1e-3 {
					t.Errorf("%s: value %g is far from %g (std %g)", w.Name, v, f.Mean, f.Std)
					break
				}
			}
		}
		if strings.Contains(w.Checkpoint, "norm") && math.Abs(mean-1) > 0.05 {
			t.Errorf("%s: a norm with mean %.3f", w.Name, mean)
		}
	}
}

// TestConfigRoundTrip: the written config.json compiles the architecture
// back to the same program, for the defaults, for copied configs and with
// --set overrides.
func TestConfigRoundTrip(t *testing.T) {
	cases := []struct {
		name, arch, config string
		sets               []string
	}{
		{"gpt-oss-20b defaults", gptOssArch, "", nil},
		{"gpt-oss-120b", gptOssArch, "../../testdata/configs/gpt-oss-120b.json", nil},
		{"tiny-random with sets", gptOssArch, tinyRandom, []string{"layers=2", "rope_theta=10000.0", "layer_types=[\"full_attention\",\"full_attention\"]"}},
		{"llama defaults", llamaArch, "", nil},
		{"llama-tiny", llamaArch, llamaTiny, []string{"rope_theta=20000.0", "tie_embeddings=true"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := compile(t, c.arch, c.config, c.sets...)
			text, err := ConfigJSON(u, baseOf(t, c.config))
			if err != nil {
				t.Fatal(err)
			}
			js, err := config.ParseJSON("config.json", text)
			if err != nil {
				t.Fatalf("%v\n%s", err, text)
			}
			opts, err := compiler.SourceOptions(c.arch, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			opts.JSON = js
			back, err := compiler.Compile(opts)
			if err != nil {
				t.Fatalf("the written config.json does not compile: %v\n%s", err, text)
			}
			if got, want := ir.Print(back.Func), ir.Print(u.Func); got != want {
				t.Errorf("the program differs after the round trip\n%s", text)
			}
			for i, e := range u.Config.Entries {
				b := back.Config.Entries[i]
				if e.Name != b.Name || fmt.Sprint(e.Value) != fmt.Sprint(b.Value) {
					t.Errorf("config %s = %v, after the round trip %s = %v", e.Name, e.Value, b.Name, b.Value)
				}
			}
			var parsed struct{ Architectures []string }
			if err := json.Unmarshal(text, &parsed); err != nil || len(parsed.Architectures) == 0 {
				t.Errorf("config.json names no architecture: %s", text)
			}
		})
	}
}

// TestErrors: mistakes get messages that say what to do.
func TestErrors(t *testing.T) {
	dir, u := writeTiny(t, Options{})
	if _, err := Write(dir, u, nil, Options{}); err == nil || !strings.Contains(err.Error(), "already holds a checkpoint (model.safetensors): remove it or choose another --out") {
		t.Errorf("writing over a checkpoint: %v", err)
	}

	// A parameter without a from clause cannot be recorded in config.json.
	src, err := os.ReadFile(gptOssArch)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(src), `sliding_window:  int   in 1..2147483648 = 128     from "sliding_window"`, `sliding_window:  int   in 1..2147483648 = 128`, 1)
	if text == string(src) {
		t.Fatal("the test's edit of gpt-oss.arch no longer applies")
	}
	opts := compiler.Options{File: "edited.arch", Source: text, Sets: []string{"sliding_window=64"}}
	u2, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ConfigJSON(u2, nil)
	want := "--set sliding_window: the architecture reads sliding_window from no config.json key, so the checkpoint's config.json cannot record it; drop the --set or add a `from` clause to the .arch"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

// TestProgramValidates: the written files pass the compiled program's own
// validation, the check `minerva run` makes before anything runs.
func TestProgramValidates(t *testing.T) {
	dir, u := writeTiny(t, Options{ShardBytes: 50_000})
	ck, err := weights.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	p := program.FromUnit(u)
	if err := p.Validate(ck, gptOssArch); err != nil {
		t.Fatal(err)
	}
	m, err := cpu.Load(p, ck, cpu.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

// BenchmarkGenerate measures value generation alone, one core, per kind
// of tensor: it must stay well ahead of the disk.
func BenchmarkGenerate(b *testing.B) {
	for _, ten := range []Tensor{
		{Name: "bf16", DType: weights.BF16, Fill: Fill{Kind: Normal, Std: 0.02}},
		{Name: "blocks", DType: weights.U8, Fill: Fill{Kind: RandomBytes}},
		{Name: "scales", DType: weights.U8, Fill: Fill{Kind: Scales, Exponent: 119}},
	} {
		b.Run(ten.Name, func(b *testing.B) {
			buf := make([]byte, segmentBytes)
			b.SetBytes(segmentBytes)
			k := uint64(0)
			for b.Loop() {
				generate(buf, ten, 1, k)
				k++
			}
		})
	}
}

// TestRefusesWithoutFreeSpace: a checkpoint larger than the free space is
// refused before any file is made, with both sizes. `minerva synth --set
// layers=2000` used to start writing 875 GB to a disk with 76 GB free.
func TestRefusesWithoutFreeSpace(t *testing.T) {
	u := compile(t, gptOssArch, tinyRandom)
	l, err := Plan(u, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func(f func(string) (int64, bool)) { freeSpace = f }(freeSpace)
	freeSpace = func(string) (int64, bool) { return l.Bytes / 2, true }
	dir := filepath.Join(t.TempDir(), "out")
	_, err = Write(dir, u, baseOf(t, tinyRandom), Options{})
	want := fmt.Sprintf("has %s (%d bytes) free", compiler.HumanBytes(l.Bytes/2), l.Bytes/2)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "the checkpoint needs") {
		t.Fatalf("got %v, want an error containing %q", err, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the output directory was made: %v", err)
	}
	// The real file system: this machine's free space is plenty for the
	// tiny model, and far too little for 2^40 bytes.
	freeSpace = diskFree
	free, ok := diskFree(t.TempDir())
	if !ok || free <= 0 {
		t.Fatalf("diskFree of a temporary directory: %d, %v", free, ok)
	}
	if err := checkFreeSpace(t.TempDir(), &Layout{Bytes: free + 1<<30}); err == nil {
		t.Errorf("a layout of %d bytes passed with %d free", free+1<<30, free)
	}
}
