package cpu

import (
	"fmt"
	"math"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// macsPerChunk is the least work worth handing to another thread.
const macsPerChunk = 1 << 15

func grainFor(costPerItem int) int {
	if costPerItem <= 0 {
		return macsPerChunk
	}
	return max(1, macsPerChunk/costPerItem)
}

// kernel prepares a base op.
func (m *Model) kernel(op *ir.Op, val func(*ir.Value) buf) (func(seq, pos int), error) {
	arg := func(i int) buf { return val(op.Args[i].V) }
	wt := func(i int) *weight {
		if i >= len(op.Args) || op.Args[i].W == nil {
			return nil
		}
		return m.weights[op.Args[i].W]
	}
	out := val(op.Results[0])
	a := op.Attrs
	switch op.Kind {
	case "embedding":
		return m.embedding(wt(0), arg(1), out), nil
	case "linear":
		return m.linear(arg(0), wt(1), vec(wt(2)), out, nil), nil
	case "rmsnorm":
		return m.rmsnorm(arg(0), wt(1).vector(), float32(a.Float("eps")), float32(a.Float("offset")), out), nil
	case "layernorm":
		return m.layernorm(arg(0), wt(1).vector(), vec(wt(2)), float32(a.Float("eps")), out), nil
	case "rope":
		return m.rope(arg(0), out, a), nil
	case "cache_kv":
		return m.cacheKV(arg(0), arg(1), arg(2), out, m.caches[int(a.Int("cache"))]), nil
	case "attend":
		return m.attend(arg(0), vec(wt(1)), out, a, m.caches[int(a.Int("cache"))]), nil
	case "topk":
		return m.topk(arg(0), out, int(a.Int("k"))), nil
	case "softmax":
		if op.Args[0].V.Type.DType == ir.Route {
			return m.softmaxRoutes(arg(0), out), nil
		}
		return m.softmaxRows(arg(0), out), nil
	case "expert_linear":
		k := int(op.Results[0].Type.Shape[1])
		shared := len(op.Args[0].V.Type.Shape) == 2
		return m.expertLinear(arg(0), shared, arg(1), k, wt(2), vec(wt(3)), out), nil
	case "swiglu":
		return m.swiglu(arg(0), out, int(op.Results[0].Type.Shape.Last()), float32(a.Float("alpha")), float32(a.Float("limit")), float32(a.Float("up_offset")), a.String("layout") == "interleaved"), nil
	case "mix":
		k := int(op.Args[1].V.Type.Shape[1])
		return m.mix(arg(0), arg(1), k, out), nil
	case "add", "sub", "mul", "div":
		x := arg(0)
		if w := wt(1); w != nil {
			return m.broadcast(op.Kind, x, w.vector(), out), nil
		}
		return m.binary(op.Kind, x, arg(1), out), nil
	case "affine":
		mul, add := float32(a.Float("mul")), float32(a.Float("add"))
		return m.unary(arg(0), out, func(x float32) float32 { return x*mul + add }), nil
	case "silu":
		return m.unary(arg(0), out, func(x float32) float32 { return x / (1 + exp32(-x)) }), nil
	case "sigmoid":
		return m.unary(arg(0), out, func(x float32) float32 { return 1 / (1 + exp32(-x)) }), nil
	case "tanh":
		return m.unary(arg(0), out, func(x float32) float32 { return float32(math.Tanh(float64(x))) }), nil
	case "relu":
		return m.unary(arg(0), out, func(x float32) float32 { return max(x, 0) }), nil
	case "exp":
		return m.unary(arg(0), out, exp32), nil
	case "gelu":
		return m.unary(arg(0), out, func(x float32) float32 {
			return float32(0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2)))
		}), nil
	case "gelu_tanh":
		return m.unary(arg(0), out, func(x float32) float32 {
			v := float64(x)
			return float32(0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))))
		}), nil
	}
	return nil, fmt.Errorf("BUG: the CPU backend has no kernel for %s", op.Kind)
}

func vec(w *weight) []float32 {
	if w == nil {
		return nil
	}
	return w.vector()
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

type seqPos struct{ seq, pos int }

func (m *Model) embedding(table *weight, ids, out buf) func(int, int) {
	return func(seq, _ int) {
		in := ids.rows(seq)
		for t := 0; t < seq; t++ {
			id := int(int32(math.Float32bits(in[t])))
			table.decodeRow(id, out.data[t*out.row:(t+1)*out.row])
		}
	}
}

// linear computes x @ w^T + b (+ residual when given). One token reads each
// weight row straight from the mapping; several tokens decode the row once
// into scratch and reuse it.
func (m *Model) linear(x buf, w *weight, bias []float32, out buf, residual *buf) func(int, int) {
	m.needScratch(w.cols)
	st := &seqPos{}
	body := func(lo, hi, worker int) {
		seq := st.seq
		row := m.scratch[worker][:w.cols]
		for o := lo; o < hi; o++ {
			var b float32
			if bias != nil {
				b = bias[o]
			}
			if seq == 1 {
				v := w.dot(o, x.data[:w.cols]) + b
				if residual != nil {
					v += residual.data[o]
				}
				out.data[o] = v
				continue
			}
			w.decodeRow(o, row)
			for t := 0; t < seq; t++ {
				v := dotF32(row, x.data[t*x.row:t*x.row+w.cols]) + b
				if residual != nil {
					v += residual.data[t*residual.row+o]
				}
				out.data[t*out.row+o] = v
			}
		}
	}
	return func(seq, _ int) {
		st.seq = seq
		m.pool.run(w.rows, grainFor(w.cols*seq), body)
	}
}

func (m *Model) rmsnorm(x buf, w []float32, eps, offset float32, out buf) func(int, int) {
	g := len(w)
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			xs := x.data[t*x.row : (t+1)*x.row]
			os := out.data[t*out.row : (t+1)*out.row]
			for base := 0; base < len(xs); base += g {
				var ss float64
				for _, v := range xs[base : base+g] {
					ss += float64(v) * float64(v)
				}
				r := float32(1 / math.Sqrt(ss/float64(g)+float64(eps)))
				for i := 0; i < g; i++ {
					os[base+i] = xs[base+i] * r * (w[i] + offset)
				}
			}
		}
	}
}

func (m *Model) layernorm(x buf, w, b []float32, eps float32, out buf) func(int, int) {
	g := len(w)
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			xs := x.data[t*x.row : (t+1)*x.row]
			os := out.data[t*out.row : (t+1)*out.row]
			for base := 0; base < len(xs); base += g {
				var mean, vr float64
				for _, v := range xs[base : base+g] {
					mean += float64(v)
				}
				mean /= float64(g)
				for _, v := range xs[base : base+g] {
					d := float64(v) - mean
					vr += d * d
				}
				r := 1 / math.Sqrt(vr/float64(g)+float64(eps))
				for i := 0; i < g; i++ {
					y := float32((float64(xs[base+i]) - mean) * r)
					y *= w[i]
					if b != nil {
						y += b[i]
					}
					os[base+i] = y
				}
			}
		}
	}
}

// rope rotates the two halves of each head's first rotary_dim values by
// position-dependent angles computed, as transformers does, in float32.
func (m *Model) rope(x, out buf, a ir.Attrs) func(int, int) {
	inv, scale := ir.RopeFrequencies(a)
	hd := int(a.Int("head_dim"))
	half := len(inv)
	cos := make([]float32, half)
	sin := make([]float32, half)
	return func(seq, pos int) {
		for t := 0; t < seq; t++ {
			p := float32(pos + t)
			for i, f := range inv {
				angle := p * f
				cos[i] = float32(math.Cos(float64(angle))) * scale
				sin[i] = float32(math.Sin(float64(angle))) * scale
			}
			xs := x.data[t*x.row : (t+1)*x.row]
			os := out.data[t*out.row : (t+1)*out.row]
			for h := 0; h+hd <= len(xs); h += hd {
				xh, oh := xs[h:h+hd], os[h:h+hd]
				for i := 0; i < half; i++ {
					x1, x2 := xh[i], xh[i+half]
					oh[i] = x1*cos[i] - x2*sin[i]
					oh[i+half] = x2*cos[i] + x1*sin[i]
				}
				if &oh[0] != &xh[0] {
					copy(oh[2*half:], xh[2*half:])
				}
			}
		}
	}
}

// cacheKV stores each new token's keys and values and passes q through.
func (m *Model) cacheKV(q, k, v, out buf, l *kvLayer) func(int, int) {
	hd, vd, heads := int(l.p.HeadDim), int(l.p.VDim), int(l.p.KVHeads)
	return func(seq, pos int) {
		for t := 0; t < seq; t++ {
			ks := k.data[t*k.row : (t+1)*k.row]
			vs := v.data[t*v.row : (t+1)*v.row]
			for h := 0; h < heads; h++ {
				l.storeK(pos+t, h, ks[h*hd:(h+1)*hd])
				l.storeV(pos+t, h, vs[h*vd:(h+1)*vd])
			}
		}
		if &out.data[0] != &q.data[0] {
			copy(out.rows(seq), q.rows(seq))
		}
	}
}

// attend computes, for each new token and query head, softmax(q·K * scale)
// over the visible cached positions (with the head's sink logit joining
// the denominator) times V.
func (m *Model) attend(q buf, sinks []float32, out buf, a ir.Attrs, l *kvLayer) func(int, int) {
	heads := int(a.Int("heads"))
	kvHeads := int(a.Int("kv_heads"))
	hd := int(a.Int("head_dim"))
	vd := int(a.Int("v_head_dim"))
	window := int(a.Int("window"))
	scale := float32(a.Float("scale"))
	softcap := float32(a.Float("softcap"))
	group := heads / kvHeads
	m.needScratch(int(l.p.Capacity) + vd + hd)
	st := &seqPos{}
	body := func(lo, hi, worker int) {
		for item := lo; item < hi; item++ {
			t, h := item/heads, item%heads
			p := st.pos + t
			first := 0
			if window > 0 {
				first = max(0, p-window+1)
			}
			n := p - first + 1
			scores := m.scratch[worker][:n]
			sc := m.scratch[worker]
			acc := sc[len(sc)-vd:]
			qh := l.prepareQuery(q.data[t*q.row+h*hd:t*q.row+(h+1)*hd], sc[len(sc)-vd-hd:len(sc)-vd])
			kvh := h / group
			mx := float32(math.Inf(-1))
			for j := 0; j < n; j++ {
				s := l.dotK(first+j, kvh, qh) * scale
				if softcap > 0 {
					s = float32(math.Tanh(float64(s/softcap))) * softcap
				}
				scores[j] = s
				mx = max(mx, s)
			}
			var sink float32
			if sinks != nil {
				sink = sinks[h]
				mx = max(mx, sink)
			}
			var denom float32
			for j := range scores {
				scores[j] = exp32(scores[j] - mx)
				denom += scores[j]
			}
			if sinks != nil {
				denom += exp32(sink - mx)
			}
			clear(acc)
			for j, s := range scores {
				l.addV(first+j, kvh, s/denom, acc)
			}
			l.finishValue(acc)
			copy(out.data[t*out.row+h*vd:t*out.row+(h+1)*vd], acc)
		}
	}
	return func(seq, pos int) {
		st.seq, st.pos = seq, pos
		m.pool.run(seq*heads, 1, body)
	}
}

// Routes store, per token, k pairs of (expert index bits, weight).
func routeAt(r buf, t, s int) (int, float32) {
	i := t*r.row + 2*s
	return int(int32(math.Float32bits(r.data[i]))), r.data[i+1]
}

func (m *Model) topk(x, out buf, k int) func(int, int) {
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			xs := x.data[t*x.row : (t+1)*x.row]
			os := out.data[t*out.row : (t+1)*out.row]
			for s := 0; s < k; s++ {
				best := -1
				for i, v := range xs {
					if taken(os, s, i) {
						continue
					}
					// Ties go to the lower index; NaN never wins.
					if best < 0 || v > xs[best] {
						best = i
					}
				}
				os[2*s] = math.Float32frombits(uint32(int32(best)))
				os[2*s+1] = xs[best]
			}
		}
	}
}

func taken(os []float32, s, i int) bool {
	for j := 0; j < s; j++ {
		if int(int32(math.Float32bits(os[2*j]))) == i {
			return true
		}
	}
	return false
}

func (m *Model) softmaxRoutes(x, out buf) func(int, int) {
	k := x.row / 2
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			xs := x.data[t*x.row : (t+1)*x.row]
			os := out.data[t*out.row : (t+1)*out.row]
			mx := float32(math.Inf(-1))
			for s := 0; s < k; s++ {
				mx = max(mx, xs[2*s+1])
			}
			var sum float32
			for s := 0; s < k; s++ {
				os[2*s] = xs[2*s]
				os[2*s+1] = exp32(xs[2*s+1] - mx)
				sum += os[2*s+1]
			}
			for s := 0; s < k; s++ {
				os[2*s+1] /= sum
			}
		}
	}
}

func (m *Model) softmaxRows(x, out buf) func(int, int) {
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			xs := x.data[t*x.row : (t+1)*x.row]
			os := out.data[t*out.row : (t+1)*out.row]
			mx := float32(math.Inf(-1))
			for _, v := range xs {
				mx = max(mx, v)
			}
			var sum float32
			for i, v := range xs {
				os[i] = exp32(v - mx)
				sum += os[i]
			}
			for i := range os {
				os[i] /= sum
			}
		}
	}
}

// expertLinear groups the (token, route) pairs by expert, then computes
// each expert's rows once for all the pairs routed to it.
func (m *Model) expertLinear(x buf, shared bool, routes buf, k int, w *weight, bias []float32, out buf) func(int, int) {
	experts := int(w.shape[0])
	outRows := int(w.shape[1])
	in := w.cols
	m.needScratch(in)
	count := make([]int, experts)
	pairs := make([][]int32, experts) // t*k+s of each pair routed to the expert
	for e := range pairs {
		pairs[e] = make([]int32, 0, m.batch*k)
	}
	type unit struct{ e, lo, hi int }
	units := make([]unit, 0, experts*8)
	unitsBuf := &units
	st := &seqPos{}
	body := func(lo, hi, worker int) {
		row := m.scratch[worker][:in]
		for u := lo; u < hi; u++ {
			un := (*unitsBuf)[u]
			ps := pairs[un.e]
			for o := un.lo; o < un.hi; o++ {
				r := un.e*outRows + o
				var b float32
				if bias != nil {
					b = bias[r]
				}
				if len(ps) > 1 {
					w.decodeRow(r, row)
				}
				for _, p := range ps {
					t, s := int(p)/k, int(p)%k
					xi := x.data[t*x.row : t*x.row+in]
					if !shared {
						xi = x.data[t*x.row+s*in : t*x.row+(s+1)*in]
					}
					var v float32
					if len(ps) > 1 {
						v = dotF32(row, xi)
					} else {
						v = w.dot(r, xi)
					}
					out.data[t*out.row+s*outRows+o] = v + b
				}
			}
		}
	}
	return func(seq, _ int) {
		for e := range pairs {
			pairs[e] = pairs[e][:0]
			count[e] = 0
		}
		for t := 0; t < seq; t++ {
			for s := 0; s < k; s++ {
				e, _ := routeAt(routes, t, s)
				pairs[e] = append(pairs[e], int32(t*k+s))
			}
		}
		units = units[:0]
		for e, ps := range pairs {
			if len(ps) == 0 {
				continue
			}
			step := max(1, min(outRows, macsPerChunk/(in*len(ps))))
			for lo := 0; lo < outRows; lo += step {
				units = append(units, unit{e, lo, min(lo+step, outRows)})
			}
		}
		st.seq = seq
		m.pool.run(len(units), 1, body)
	}
}

// swiglu reads each group of 2n values as gate and up (interleaved by
// element or as two halves) and writes n values.
func (m *Model) swiglu(x, out buf, n int, alpha, limit, upOffset float32, interleaved bool) func(int, int) {
	return func(seq, _ int) {
		in, o := x.rows(seq), out.rows(seq)
		for r := 0; r < len(o)/n; r++ {
			xs := in[r*2*n : (r+1)*2*n]
			os := o[r*n : (r+1)*n]
			for j := range os {
				var g, u float32
				if interleaved {
					g, u = xs[2*j], xs[2*j+1]
				} else {
					g, u = xs[j], xs[n+j]
				}
				if limit > 0 {
					g = min(g, limit)
					u = min(max(u, -limit), limit)
				}
				os[j] = (u + upOffset) * g / (1 + exp32(-alpha*g))
			}
		}
	}
}

func (m *Model) mix(y, routes buf, k int, out buf) func(int, int) {
	d := out.row
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			os := out.data[t*out.row : (t+1)*out.row]
			clear(os)
			for s := 0; s < k; s++ {
				_, wgt := routeAt(routes, t, s)
				ys := y.data[t*y.row+s*d : t*y.row+(s+1)*d]
				for i, v := range ys {
					os[i] += wgt * v
				}
			}
		}
	}
}

func (m *Model) binary(kind string, a, b, out buf) func(int, int) {
	f := binaryFunc(kind)
	return func(seq, _ int) {
		as, bs, os := a.rows(seq), b.rows(seq), out.rows(seq)
		for i := range os {
			os[i] = f(as[i], bs[i])
		}
	}
}

func (m *Model) broadcast(kind string, a buf, w []float32, out buf) func(int, int) {
	f := binaryFunc(kind)
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			as := a.data[t*a.row : (t+1)*a.row]
			os := out.data[t*out.row : (t+1)*out.row]
			for i := range os {
				os[i] = f(as[i], w[i])
			}
		}
	}
}

func binaryFunc(kind string) func(a, b float32) float32 {
	switch kind {
	case "add":
		return func(a, b float32) float32 { return a + b }
	case "sub":
		return func(a, b float32) float32 { return a - b }
	case "mul":
		return func(a, b float32) float32 { return a * b }
	}
	return func(a, b float32) float32 { return a / b }
}

func (m *Model) unary(x, out buf, f func(float32) float32) func(int, int) {
	return func(seq, _ int) {
		xs, os := x.rows(seq), out.rows(seq)
		for i := range os {
			os[i] = f(xs[i])
		}
	}
}
