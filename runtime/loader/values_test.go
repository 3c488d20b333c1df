package loader

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/runtime/engine"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestNonFiniteWeightsAreRefused: a checkpoint whose norm, bias or sink
// holds NaN or an infinity is refused at load, naming the tensor and the
// element. Such checkpoints used to load, and `minerva run` printed
// garbage from NaN logits with exit status 0.
func TestNonFiniteWeightsAreRefused(t *testing.T) {
	const src = "../../testdata/gpt-oss/tiny-random"
	orig, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := weights.FromBytes("model.safetensors", orig)
	if err != nil {
		t.Fatal(err)
	}
	offset := func(name string, elem int) int {
		tt, ok := ck.Tensor(name)
		if !ok {
			t.Fatalf("the fixture has no %s", name)
		}
		return int(tt.Offset) + elem*tt.DType.Size()
	}
	bf16 := func(v float32) []byte {
		return binary.LittleEndian.AppendUint16(nil, uint16(math.Float32bits(v)>>16))
	}
	cases := []struct {
		tensor string
		elem   int
		bytes  []byte
		want   string
	}{
		{"model.layers.0.input_layernorm.weight", 5, bf16(float32(math.NaN())), "model.layers.0.input_layernorm.weight: element 5 of bf16 [64] is NaN"},
		{"model.norm.weight", 0, bf16(float32(math.Inf(-1))), "model.norm.weight: element 0 of bf16 [64] is -Inf"},
		{"model.layers.1.self_attn.sinks", 3, bf16(float32(math.Inf(1))), "model.layers.1.self_attn.sinks: element 3 of bf16 [4] is +Inf"},
		{"model.layers.1.mlp.experts.down_proj_bias", 7, bf16(float32(math.NaN())), "model.layers.1.mlp.experts.down_proj_bias: element 7"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		edited := append([]byte(nil), orig...)
		copy(edited[offset(c.tensor, c.elem):], c.bytes)
		if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), edited, 0o644); err != nil {
			t.Fatal(err)
		}
		copyFile(t, filepath.Join(src, "config.json"), filepath.Join(dir, "config.json"))
		m, err := Load(Spec{Model: dir, Plan: compiler.PlanOptions{Ctx: 16}, Backend: "cpu"})
		if err == nil {
			m.Close()
			t.Errorf("%s: loaded", c.tensor)
			continue
		}
		var ce *weights.CheckpointError
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "damaged") || !errorsAs(err, &ce) || !ce.Has(weights.NonFinite) {
			t.Errorf("%s: %v\nwant a NonFinite problem containing %q", c.tensor, err, c.want)
		}
	}
}

// TestCheckedTensors: what the load-time check reads, for gpt-oss: the
// norms, biases and sinks whole, and no matrix or MXFP4 tensor.
func TestCheckedTensors(t *testing.T) {
	opts, err := compiler.SourceOptions("../../models/gpt-oss.arch", "../../testdata/gpt-oss/tiny-random/config.json", nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	values := checkedTensors(u.Func)
	for _, n := range values {
		for _, matrix := range []string{"proj.weight", "router.weight", "embed_tokens", "lm_head", "_blocks", "_scales"} {
			if strings.Contains(n, matrix) {
				t.Errorf("checks the matrix %s", n)
			}
		}
	}
	// Per layer: 2 norms, q/k/v/o biases, sinks, router bias, 2 expert
	// biases; then the final norm. Four layers.
	if len(values) != 4*10+1 {
		t.Errorf("%d value tensors %v", len(values), values)
	}
}

// TestNaNScalesStopGeneration: MXFP4 scales are not read at load (597 MB
// for gpt-oss-20b); a scale of 0xFF (NaN in E8M0) on the experts every
// token is routed to ends the generation with engine.ErrNotFinite instead
// of printing garbage.
func TestNaNScalesStopGeneration(t *testing.T) {
	const src = "../../testdata/gpt-oss/tiny-random"
	orig, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := weights.FromBytes("model.safetensors", orig)
	if err != nil {
		t.Fatal(err)
	}
	scales, ok := ck.Tensor("model.layers.0.mlp.experts.gate_up_proj_scales")
	if !ok {
		t.Fatal("the fixture has no layer 0 gate_up scales")
	}
	edited := append([]byte(nil), orig...)
	for i := range scales.Data {
		edited[int(scales.Offset)+i] = weights.MXFP4NaNScale
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(src, "config.json"), filepath.Join(dir, "config.json"))
	m, err := Load(Spec{Model: dir, Plan: compiler.PlanOptions{Ctx: 16}, Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	n := 0
	_, err = engine.Generate(context.Background(), engine.NewSession(m.Backend), []int32{1, 2, 3}, engine.GenOptions{MaxTokens: 4},
		func(int32, bool) error { n++; return nil })
	if !errors.Is(err, engine.ErrNotFinite) || n != 0 {
		t.Errorf("%d tokens, then %v; want ErrNotFinite before any token", n, err)
	}
	// The weights package can read the scales when asked.
	ck2, err := weights.FromBytes("model.safetensors", edited)
	if err != nil {
		t.Fatal(err)
	}
	err = ck2.CheckValues(nil, []string{scales.Name}, "")
	if err == nil || !strings.Contains(err.Error(), scales.Name+": MXFP4 scale 0 is 0xFF, the E8M0 code of NaN") {
		t.Errorf("CheckValues of the scales: %v", err)
	}
}

func errorsAs(err error, target **weights.CheckpointError) bool { return errors.As(err, target) }
