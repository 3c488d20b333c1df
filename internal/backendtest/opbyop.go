package backendtest

import (
	"encoding/binary"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/internal/fixtures"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cpu"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// RunnableOps are the op kinds a compiled program can hand a backend:
// every op of the registry that no pass rewrites away (fused ones
// included).
func RunnableOps() []ir.OpKind {
	var out []ir.OpKind
	for _, k := range ir.AllOps() {
		if ir.MustLookup(k).Rewritten == "" {
			out = append(out, k)
		}
	}
	return out
}

// compareOpByOp loads the backend under test and compares it with the CPU
// op by op (CompareOpByOp).
func (s *suite) compareOpByOp(t *testing.T, p *program.Program, ck *weights.Checkpoint, prefix int, seen map[ir.OpKind]bool) {
	t.Helper()
	CompareOpByOp(t, s.load(t, p, ck).(OpRunner), p, ck, prefix, seen)
}

// CompareOpByOp fills the CPU's cache with a random prefill of prefix
// tokens, then runs every op of p alone on both the CPU and g (a backend
// that loaded p and ck), from the same cache and with the same fresh
// random operands (for one token and for several), and compares the
// results and the whole KV cache (an op that writes none must leave it as
// it was). seen collects the op kinds run.
func CompareOpByOp(t *testing.T, g OpRunner, p *program.Program, ck *weights.Checkpoint, prefix int, seen map[ir.OpKind]bool) {
	t.Helper()
	cm, err := cpu.Load(p, ck, cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	// The CPU fills the cache; each op below starts from a copy of it (the
	// other parts of the suite check the backend's own prefill).
	rng := rand.New(rand.NewSource(3))
	seqIDs := make([]int32, prefix)
	for i := range seqIDs {
		seqIDs[i] = int32(rng.Intn(p.Vocab()))
	}
	forwardChunked(t, cm, seqIDs, min(prefillChunk, int(p.Arena.Batch)))
	experts := expertCounts(p)
	for i, op := range p.Func.Ops {
		seen[op.Kind] = true
		// 3 tokens run the decode kernels of the ops whose decode kernel
		// serves a few tokens (program.Dispatch.DecodeUpTo) and the prefill
		// kernels of the others; 19 (more than any DecodeUpTo) the prefill
		// kernels of all, with a partial tile.
		for _, seq := range []int{1, 3, min(19, int(p.Arena.Batch))} {
			randomizeOperands(rng, p, op, experts, cm.Arena(), g.Arena(), seq)
			// Both caches hold the prefill; the op writes the positions
			// after it.
			copy(g.KVBuffer(), cm.KVBuffer())
			cm.RunOp(i, seq, prefix)
			if err := g.RunOp(i, seq, prefix); err != nil {
				t.Fatalf("op %d (%s): %v", i, op.Kind, err)
			}
			for _, r := range op.Results {
				want := cpuValue(p, cm.Arena(), r, seq)
				got := backendValue(p, g.Arena(), r, seq)
				if e := valueErr(r, got, want); e > cpuErr || math.IsNaN(e) {
					t.Errorf("op %d (%s, layer %d), seq %d: result %%%d differs from the CPU's: relative error %.3e", i, op.Kind, op.Layer, seq, r.ID, e)
				}
			}
			if e := kvErr(string(p.KV.Format), g.KVBuffer(), cm.KVBuffer()); e > 1e-3 {
				t.Errorf("op %d (%s), seq %d: the KV cache differs from the CPU's: %.3e", i, op.Kind, seq, e)
			}
		}
	}
}

// expertCounts maps each route value to the number of experts it chooses
// from (program.ExpertsChosen of an op that reads it).
func expertCounts(p *program.Program) map[int]int {
	out := map[int]int{}
	for _, op := range p.Func.Ops {
		n := program.ExpertsChosen(op)
		if n == 0 {
			continue
		}
		for _, a := range op.Args {
			if a.V != nil && a.V.Type.DType == ir.Route {
				out[a.V.ID] = int(n)
			}
		}
	}
	return out
}

// randomizeOperands writes the same random values into both arenas for
// every activation operand of op: normal floats, valid token ids, and
// valid routes (distinct experts, weights that sum to one).
func randomizeOperands(rng *rand.Rand, p *program.Program, op *ir.Op, experts map[int]int, cpuArena []float32, arena []byte, seq int) {
	for _, a := range op.Args {
		v := a.V
		if v == nil {
			continue
		}
		s := p.Arena.Slots[v.ID]
		n := int(s.RowBytes/4) * seq
		words := make([]uint32, n)
		switch v.Type.DType {
		case ir.I32:
			for i := range words {
				words[i] = uint32(rng.Intn(p.Vocab()))
			}
		case ir.Route:
			k := int(v.Type.Shape[1])
			choices := max(experts[v.ID], k)
			for t := 0; t < seq; t++ {
				perm := rng.Perm(choices)
				var sum float64
				ws := make([]float64, k)
				for j := range ws {
					ws[j] = rng.Float64() + 0.1
					sum += ws[j]
				}
				for j := 0; j < k; j++ {
					words[(t*k+j)*2] = uint32(perm[j])
					words[(t*k+j)*2+1] = math.Float32bits(float32(ws[j] / sum))
				}
			}
		default:
			for i := range words {
				words[i] = math.Float32bits(float32(rng.NormFloat64()))
			}
		}
		off := int(s.Offset)
		for i, w := range words {
			cpuArena[off/4+i] = math.Float32frombits(w)
			binary.LittleEndian.PutUint32(arena[off+4*i:], w)
		}
	}
}

func cpuValue(p *program.Program, arena []float32, v *ir.Value, seq int) []uint32 {
	s := p.Arena.Slots[v.ID]
	out := make([]uint32, int(s.RowBytes/4)*seq)
	for i := range out {
		out[i] = math.Float32bits(arena[int(s.Offset)/4+i])
	}
	return out
}

func backendValue(p *program.Program, arena []byte, v *ir.Value, seq int) []uint32 {
	s := p.Arena.Slots[v.ID]
	out := make([]uint32, int(s.RowBytes/4)*seq)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(arena[int(s.Offset)+4*i:])
	}
	return out
}

// valueErr compares results: routes must choose the same experts (their
// weights are compared as floats), ids exactly, floats by relative error.
func valueErr(v *ir.Value, got, want []uint32) float64 {
	var g, w []float32
	for i := range want {
		if v.Type.DType == ir.Route && i%2 == 0 || v.Type.DType == ir.I32 {
			if got[i] != want[i] {
				return math.Inf(1)
			}
			continue
		}
		g = append(g, math.Float32frombits(got[i]))
		w = append(w, math.Float32frombits(want[i]))
	}
	if len(w) == 0 {
		return 0
	}
	return fixtures.RelErr(g, w)
}

// kvErr compares two KV buffers: f32 and f16 by decoding the values,
// quantised formats byte for byte (the fraction of bytes that differ),
// allowing a few one-step differences of rounding.
func kvErr(format string, got, want []byte) float64 {
	switch format {
	case "f32":
		var g, w []float32
		for i := 0; i+4 <= len(want); i += 4 {
			g = append(g, math.Float32frombits(binary.LittleEndian.Uint32(got[i:])))
			w = append(w, math.Float32frombits(binary.LittleEndian.Uint32(want[i:])))
		}
		return relErrFinite(g, w)
	case "f16":
		var g, w []float32
		for i := 0; i+2 <= len(want); i += 2 {
			g = append(g, weights.F16BitsToF32(binary.LittleEndian.Uint16(got[i:])))
			w = append(w, weights.F16BitsToF32(binary.LittleEndian.Uint16(want[i:])))
		}
		return relErrFinite(g, w)
	}
	diff := 0
	for i := range want {
		if got[i] != want[i] {
			diff++
		}
	}
	return float64(diff) / float64(len(want))
}

// relErrFinite is the relative error over the finite values of w (the
// cache's unused rows may hold anything); an all-zero w gives the
// absolute error.
func relErrFinite(g, w []float32) float64 {
	var num, den float64
	for i := range w {
		if math.IsNaN(float64(w[i])) || math.IsInf(float64(w[i]), 0) {
			continue
		}
		d := float64(g[i]) - float64(w[i])
		num += d * d
		den += float64(w[i]) * float64(w[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// WriteRandomCheckpoint writes random weights in a program's layout into
// a temporary directory: normal values for dense tensors, random FP4
// codes with scales near 2^-3 for MXFP4, so activations stay finite.
func WriteRandomCheckpoint(t testing.TB, p *program.Program, seed int64) string {
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
