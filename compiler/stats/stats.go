// Package stats computes the figures `minervac stats` prints: how many
// dispatches and distinct kernels one decode step runs, how much memory the
// plans take, and how many weight bytes and floating-point operations one
// decoded token costs.
package stats

import (
	"fmt"
	"sort"
	"strings"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
)

// Stats are the figures of one compiled program. The JSON names are an
// interface other tools read: keep them stable.
type Stats struct {
	Model                string `json:"model"`
	Layers               int    `json:"layers"`
	Ctx                  int64  `json:"ctx"`
	KVFormat             string `json:"kv_format"`
	DispatchesPerToken   int    `json:"dispatches_per_token"`
	DispatchesPerLayer   int    `json:"dispatches_per_layer"` // the most in any layer
	Kernels              int    `json:"kernels"`
	ActivationPeakBytes  int64  `json:"activation_peak_bytes"`
	ActivationNaiveBytes int64  `json:"activation_naive_bytes"`
	KVBytes              int64  `json:"kv_bytes"` // one sequence's
	// Parallel is the sequences served at once (minerva serve
	// --parallel), each with its own KV cache of KVBytes.
	Parallel            int   `json:"parallel"`
	KVBytesTotal        int64 `json:"kv_bytes_total"`
	WeightBytes         int64 `json:"weight_bytes"`
	WeightBytesPerToken int64 `json:"weight_bytes_per_token"`
	FlopsPerToken       int64 `json:"flops_per_token"`
}

// Compute derives the figures. One decode step is one token at the last
// position of the context: every dispatch of the program runs once,
// attention reads the whole cache (or the window), and a mixture-of-experts
// layer reads the weights of the experts one token is routed to.
func Compute(f *ir.Func, kv *plan.KV, arena *plan.Arena, layers int) Stats {
	s := Stats{
		Model:                f.Model,
		Layers:               layers,
		Ctx:                  kv.Ctx,
		KVFormat:             string(kv.Format),
		DispatchesPerToken:   len(f.Ops),
		Kernels:              len(KernelKeys(f)),
		ActivationPeakBytes:  arena.Bytes,
		ActivationNaiveBytes: arena.Naive,
		KVBytes:              kv.Bytes,
		Parallel:             1,
		KVBytesTotal:         kv.Bytes,
	}
	perLayer := map[int]int{}
	for _, op := range f.Ops {
		if op.Layer >= 0 {
			perLayer[op.Layer]++
		}
	}
	for _, n := range perLayer {
		s.DispatchesPerLayer = max(s.DispatchesPerLayer, n)
	}
	for _, w := range f.Weights {
		s.WeightBytes += w.Bytes()
	}
	for _, op := range f.Ops {
		c := Cost(op, kv.Ctx-1)
		s.FlopsPerToken += c.Flops
		s.WeightBytesPerToken += c.WeightBytes
	}
	return s
}

// OpCost is the work of one op for one token.
type OpCost = ir.Cost

// Cost is an op's work for one token at position pos: the registry's cost
// rule (ir.OpDef.Cost). A fused op costs what its body costs: fusion saves
// memory traffic of activations, not arithmetic or weight reads.
func Cost(op *ir.Op, pos int64) OpCost { return ir.OpCost(op, pos) }

// KernelKeys lists the distinct kernels a program needs: ops that differ
// only in which weights they read or which layer they belong to share a
// kernel; any difference in shapes or attributes makes another.
func KernelKeys(f *ir.Func) []string {
	set := map[string]bool{}
	for _, op := range f.Ops {
		set[KernelKey(op)] = true
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// KernelKey is an op's specialisation: kind, operand types, attributes,
// and for fused ops the same of every body op.
func KernelKey(op *ir.Op) string {
	var b strings.Builder
	b.WriteString(string(op.Kind))
	for _, a := range op.Args {
		switch {
		case a.V != nil:
			b.WriteString(" " + a.V.Type.String())
		case a.W != nil:
			b.WriteString(" " + a.W.DType.String() + a.W.Shape.String())
		default:
			b.WriteString(" _")
		}
	}
	for _, a := range op.Attrs {
		if a.Key == "cache" {
			continue // which cache, not how to read it
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, ir.FormatAttr(a.Value))
	}
	for _, body := range op.Body {
		b.WriteString(" {" + KernelKey(body) + "}")
	}
	return b.String()
}
