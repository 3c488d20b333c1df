package cpu

import (
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// TestQwen3DenseLayer checks models/qwen3.arch against the one Qwen3
// reference the fixtures hold: no dense Qwen3 fixture exists, but layer 0
// of qwen3-moe-tiny is dense (mlp_only_layers=[0]) and is exactly a Qwen3
// decoder layer (per-head q/k norms, plain RoPE, SwiGLU MLP). Compiled
// with layers=1 for that config.json, over a checkpoint of that layer's
// tensors, the residual stream after layer 0 must match transformers'
// hidden.1, in one prefill and in a prefill of half the prompt followed by
// one token at a time through the f32 KV cache. The logits are not
// compared: they go through the MoE layers this file does not have.
func TestQwen3DenseLayer(t *testing.T) {
	const dir = "../../testdata/families/qwen3-moe-tiny"
	ref := fixtures.Load(t, dir)
	opts, err := compiler.SourceOptions("../../models/qwen3.arch", dir, []string{"layers=1"})
	if err != nil {
		t.Fatal(err)
	}
	opts.Plan, opts.Verify = exact, true
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	p := program.FromUnit(u)

	// The checkpoint: the tensors qwen3.arch declares, copied out of the
	// Qwen3-MoE checkpoint.
	src, err := weights.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var headers []weights.TensorHeader
	for _, s := range p.TensorSpecs() {
		headers = append(headers, weights.TensorHeader{Name: s.Name, DType: s.DType, Shape: s.Shape})
	}
	out := t.TempDir()
	w, err := weights.NewWriter(filepath.Join(out, "model.safetensors"), headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		tn, ok := src.Tensor(h.Name)
		if !ok {
			t.Fatalf("qwen3.arch declares %s, which the Qwen3-MoE checkpoint lacks", h.Name)
		}
		if err := w.WriteTensor(h.Name, tn.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := weights.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if err := p.Validate(ck, "models/qwen3.arch"); err != nil {
		t.Fatal(err)
	}

	T, H := len(ref.IDs), len(ref.Hidden[1])/len(ref.IDs)
	var hidden1 []float32
	observe := func(op *ir.Op, res [][]float32) {
		for i, r := range op.Results {
			if r.Name == "x" && op.Layer == 0 && op.Kind == ir.OpAdd {
				hidden1 = append([]float32(nil), res[i]...)
			}
		}
	}
	m, err := Load(p, ck, Options{Observe: observe})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Forward(ref.IDs, 0); err != nil {
		t.Fatal(err)
	}
	if e := fixtures.RelErr(hidden1[:T*H], ref.Hidden[1]); e > 1e-4 {
		t.Fatalf("one prefill: hidden.1 relative error %.3e > 1e-4", e)
	} else {
		t.Logf("one prefill: hidden.1 relative error %.2e", e)
	}

	half := T / 2
	var got []float32
	if _, err := m.Forward(ref.IDs[:half], 0); err != nil {
		t.Fatal(err)
	}
	got = append(got, hidden1[:half*H]...)
	for p := half; p < T; p++ {
		if _, err := m.Forward(ref.IDs[p:p+1], p); err != nil {
			t.Fatal(err)
		}
		got = append(got, hidden1[:H]...)
	}
	if e := fixtures.RelErr(got, ref.Hidden[1]); e > 1e-4 {
		t.Fatalf("prefill then decode: hidden.1 relative error %.3e > 1e-4", e)
	} else {
		t.Logf("prefill then decode: hidden.1 relative error %.2e", e)
	}
}

// TestStackedExpertsReadInPlace: the CPU backend reads a weight stored one
// tensor per expert from the parts where they are mapped; it assembles
// no copy (Metal and mslemu do, through program.StackWeights).
func TestStackedExpertsReadInPlace(t *testing.T) {
	var fx fixture
	for _, f := range testModels {
		if f.name == "families/qwen3-moe-tiny" {
			fx = f
		}
	}
	m, ck := loadFixture(t, fx, exact, Options{})
	if _, copied := ck.Tensor("model.layers.1.mlp.experts.{0..8}.gate_proj.weight"); copied {
		t.Fatal("the CPU backend assembled a copy of the stacked experts")
	}
	part, _ := ck.Tensor("model.layers.1.mlp.experts.3.gate_proj.weight")
	for w, bound := range m.weights {
		if w.Checkpoint != "model.layers.1.mlp.experts.{0..8}.gate_proj.weight" {
			continue
		}
		got := bound.parts16[3]
		if len(got) == 0 || &got[0] != (*uint16)(unsafe.Pointer(&part.Data[0])) {
			t.Fatal("expert 3 is not read from its mapped tensor")
		}
		return
	}
	t.Fatal("the stacked gate weight is not bound")
}
