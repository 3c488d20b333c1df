package gpu

import (
	"encoding/binary"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/runtime/program"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// writeRandomCheckpoint writes random weights in a program's layout:
// normal values for dense tensors, random FP4 codes with scales near 2^-3
// for MXFP4, so activations stay finite.
func writeRandomCheckpoint(t *testing.T, p *program.Program, seed int64) string {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	specs := p.TensorSpecs()
	var headers []weights.TensorHeader
	for _, s := range specs {
		headers = append(headers, weights.TensorHeader{Name: s.Name, DType: s.DType, Shape: s.Shape})
	}
	path := filepath.Join(t.TempDir(), "model.safetensors")
	w, err := weights.NewWriter(path, headers, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		n := int64(1)
		for _, d := range s.Shape {
			n *= d
		}
		data := make([]byte, n*int64(s.DType.Size()))
		switch s.DType {
		case weights.F32:
			for i := int64(0); i < n; i++ {
				binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(float32(rng.NormFloat64()*0.3)))
			}
		case weights.BF16:
			for i := int64(0); i < n; i++ {
				binary.LittleEndian.PutUint16(data[2*i:], weights.F32ToBF16Bits(float32(rng.NormFloat64()*0.3)))
			}
		case weights.F16:
			for i := int64(0); i < n; i++ {
				binary.LittleEndian.PutUint16(data[2*i:], weights.F32ToF16Bits(float32(1+rng.NormFloat64()*0.1)))
			}
		case weights.U8:
			scales := len(s.Shape) > 0 && s.Shape[len(s.Shape)-1] != 16
			for i := range data {
				if scales {
					data[i] = byte(127 - 4 + rng.Intn(3))
				} else {
					data[i] = byte(rng.Intn(256))
				}
			}
		}
		if err := w.WriteTensor(s.Name, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(path)
}

// TestEveryOpAgainstCPU compiles testdata/allops.arch, a small model that
// uses every op of the language (unfused and fused), gives it random
// weights, and compares the emitted Metal with the CPU backend end to end
// and op by op. Unfused, the model must exercise every base op of the
// registry that a backend sees; TestEveryKernelAgainstCPU covers the
// fused ones.
func TestEveryOpAgainstCPU(t *testing.T) {
	needCompiler(t)
	for _, disable := range [][]string{nil, {"fuse"}} {
		opts, err := compiler.SourceOptions("testdata/allops.arch", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		opts.Plan = compiler.PlanOptions{KV: "f32", Ctx: 48, Batch: 8}
		opts.Verify, opts.Disable = true, disable
		u, err := compiler.Compile(opts)
		if err != nil {
			t.Fatal(err)
		}
		p := program.FromUnit(u)
		dir := writeRandomCheckpoint(t, p, 9)
		ck := openCheckpoint(t, dir)
		if err := p.Validate(ck, "allops.arch"); err != nil {
			t.Fatal(err)
		}
		kinds := map[ir.OpKind]bool{}
		compareOpByOp(t, p, u.Generated, ck, 20, kinds)
		if disable == nil {
			continue
		}
		for _, k := range ir.AllOps() {
			if d := ir.MustLookup(k); !d.Fused && d.Rewritten == "" && !kinds[k] {
				t.Errorf("allops.arch has no %s op: add one, so that its kernels are compared", k)
			}
		}
	}
}
