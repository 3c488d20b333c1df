package cpu

import (
	"fmt"
	"math"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// fusedOp gives a specialised kernel access to the fused op's body: its
// attributes, and which of the op's operands each body operand is.
type fusedOp struct {
	m   *Model
	op  *ir.Op
	val func(*ir.Value) buf
}

// find returns the n-th body op of a kind (counting from 0), or nil.
func (f fusedOp) find(kind string, n int) *ir.Op {
	for _, b := range f.op.Body {
		if b.Kind == kind {
			if n == 0 {
				return b
			}
			n--
		}
	}
	return nil
}

// arg returns the activation operand i of the fused op.
func (f fusedOp) arg(i int) buf { return f.val(f.op.Args[i].V) }

// weight returns the weight operand i of the fused op, or nil when absent.
func (f fusedOp) weight(i int) *weight {
	if f.op.Args[i].W == nil {
		return nil
	}
	return f.m.weights[f.op.Args[i].W]
}

func (f fusedOp) out(i int) buf { return f.val(f.op.Results[i]) }

// scratchBuf takes a private activation of batch rows of width floats
// from the plan's scratch region. Fused ops run one at a time, so each one
// takes its space from the start of the region (see buildStep).
func (m *Model) scratchBuf(width int) buf {
	n := width * m.batch
	if m.scratchUsed+n > len(m.bodyScratch) {
		panic(fmt.Sprintf("BUG: fused op needs more scratch than the plan's %d bytes", 4*len(m.bodyScratch)))
	}
	b := buf{data: m.bodyScratch[m.scratchUsed : m.scratchUsed+n], row: width}
	m.scratchUsed += (n + 63) / 64 * 64 // keep each piece aligned like the plan
	return b
}

// fusedKernel returns a specialised kernel for a fused op. The operand
// order of each kind is fixed by its rule in compiler/fuse/rules.fuse; a
// fused op whose body does not have the shape a kernel expects runs as its
// body instead.
func (m *Model) fusedKernel(op *ir.Op, val func(*ir.Value) buf) (func(int, int), bool) {
	f := fusedOp{m, op, val}
	switch op.Kind {
	case "add_rmsnorm":
		n := f.find("rmsnorm", 0)
		return m.addRMSNorm(f.arg(0), f.arg(1), f.weight(2).vector(), float32(n.Attrs.Float("eps")), float32(n.Attrs.Float("offset")), f.out(0), f.out(1)), true
	case "rmsnorm_linear":
		n := f.find("rmsnorm", 0)
		w := f.weight(2)
		h := m.scratchBuf(w.cols)
		norm := m.rmsnorm(f.arg(0), f.weight(1).vector(), float32(n.Attrs.Float("eps")), float32(n.Attrs.Float("offset")), h)
		lin := m.linear(h, w, vec(f.weight(3)), f.out(0), nil)
		return func(seq, pos int) { norm(seq, pos); lin(seq, pos) }, true
	case "linear_add":
		res := f.arg(0)
		return m.linear(f.arg(1), f.weight(2), vec(f.weight(3)), f.out(0), &res), true
	case "glu":
		return m.glu(f.arg(0), f.weight(1), vec(f.weight(2)), f.weight(3), vec(f.weight(4)), f.out(0)), true
	case "router":
		w := f.weight(1)
		logits := m.scratchBuf(w.rows)
		lin := m.linear(f.arg(0), w, vec(f.weight(2)), logits, nil)
		k := int(op.Results[0].Type.Shape[1])
		top := m.topk(logits, f.out(0), k)
		soft := m.softmaxRoutes(f.out(0), f.out(0))
		return func(seq, pos int) { lin(seq, pos); top(seq, pos); soft(seq, pos) }, true
	case "moe_gate_up":
		sw := f.find("swiglu", 0)
		a := sw.Attrs
		shared := len(op.Args[0].V.Type.Shape) == 2
		k := int(op.Results[0].Type.Shape[1])
		return m.moeGateUp(f.arg(0), shared, f.arg(1), k, f.weight(2), vec(f.weight(3)), f.out(0),
			float32(a.Float("alpha")), float32(a.Float("limit")), float32(a.Float("up_offset")), a.String("layout") == "interleaved"), true
	case "moe_down":
		k := int(op.Args[2].V.Type.Shape[1])
		return m.moeDown(f.arg(0), f.arg(1), f.arg(2), k, f.weight(3), vec(f.weight(4)), f.out(0)), true
	case "qkv_rope_store":
		return m.qkvRopeStore(f)
	}
	return nil, false
}

func (m *Model) addRMSNorm(a, b buf, w []float32, eps, offset float32, normed, sum buf) func(int, int) {
	g := len(w)
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			as := a.data[t*a.row : (t+1)*a.row]
			bs := b.data[t*b.row : (t+1)*b.row]
			ss := sum.data[t*sum.row : (t+1)*sum.row]
			ns := normed.data[t*normed.row : (t+1)*normed.row]
			for i := range ss {
				ss[i] = as[i] + bs[i]
			}
			for base := 0; base < len(ss); base += g {
				var acc float64
				for _, v := range ss[base : base+g] {
					acc += float64(v) * float64(v)
				}
				r := float32(1 / math.Sqrt(acc/float64(g)+float64(eps)))
				for i := 0; i < g; i++ {
					ns[base+i] = ss[base+i] * r * (w[i] + offset)
				}
			}
		}
	}
}

// glu computes silu(x·wg + bg) * (x·wu + bu) row by row, so the gate and
// up activations are never stored.
func (m *Model) glu(x buf, wg *weight, bg []float32, wu *weight, bu []float32, out buf) func(int, int) {
	in := wg.cols
	m.needScratch(2 * in)
	st := &seqPos{}
	body := func(lo, hi, worker int) {
		seq := st.seq
		gr := m.scratch[worker][:in]
		ur := m.scratch[worker][in : 2*in]
		for o := lo; o < hi; o++ {
			var gb, ub float32
			if bg != nil {
				gb = bg[o]
			}
			if bu != nil {
				ub = bu[o]
			}
			if seq > 1 {
				wg.decodeRow(o, gr)
				wu.decodeRow(o, ur)
			}
			for t := 0; t < seq; t++ {
				xs := x.data[t*x.row : t*x.row+in]
				var g, u float32
				if seq > 1 {
					g, u = dotF32(gr, xs), dotF32(ur, xs)
				} else {
					g, u = wg.dot(o, xs), wu.dot(o, xs)
				}
				g += gb
				u += ub
				out.data[t*out.row+o] = g / (1 + exp32(-g)) * u
			}
		}
	}
	return func(seq, _ int) {
		st.seq = seq
		m.pool.run(wg.rows, grainFor(2*in*seq), body)
	}
}

// expertPairs groups a call's (token, route) pairs by expert.
type expertPairs struct {
	k     int
	pairs [][]int32 // per expert: t*k+s of the pairs routed to it
}

func newExpertPairs(experts, k, batch int) *expertPairs {
	p := &expertPairs{k: k, pairs: make([][]int32, experts)}
	for e := range p.pairs {
		p.pairs[e] = make([]int32, 0, batch*k)
	}
	return p
}

func (p *expertPairs) fill(routes buf, seq int) {
	for e := range p.pairs {
		p.pairs[e] = p.pairs[e][:0]
	}
	for t := 0; t < seq; t++ {
		for s := 0; s < p.k; s++ {
			e, _ := routeAt(routes, t, s)
			p.pairs[e] = append(p.pairs[e], int32(t*p.k+s))
		}
	}
}

// moeGateUp computes each routed expert's gate and up rows for output j
// (rows 2j and 2j+1 when interleaved, j and n+j in halves) and applies the
// clamped SwiGLU at once.
func (m *Model) moeGateUp(x buf, shared bool, routes buf, k int, w *weight, bias []float32, out buf, alpha, limit, upOffset float32, interleaved bool) func(int, int) {
	experts := int(w.shape[0])
	rowsPerExpert := int(w.shape[1])
	n := rowsPerExpert / 2
	in := w.cols
	m.needScratch(2 * in)
	ps := newExpertPairs(experts, k, m.batch)
	type unit struct{ e, lo, hi int }
	units := make([]unit, 0, experts*16)
	body := func(lo, hi, worker int) {
		gr := m.scratch[worker][:in]
		ur := m.scratch[worker][in : 2*in]
		for u := lo; u < hi; u++ {
			un := units[u]
			pairs := ps.pairs[un.e]
			for j := un.lo; j < un.hi; j++ {
				gRow, uRow := j, n+j
				if interleaved {
					gRow, uRow = 2*j, 2*j+1
				}
				gRow += un.e * rowsPerExpert
				uRow += un.e * rowsPerExpert
				var gb, ub float32
				if bias != nil {
					gb, ub = bias[gRow], bias[uRow]
				}
				many := len(pairs) > 1
				if many {
					w.decodeRow(gRow, gr)
					w.decodeRow(uRow, ur)
				}
				for _, p := range pairs {
					t, s := int(p)/k, int(p)%k
					xs := x.data[t*x.row : t*x.row+in]
					if !shared {
						xs = x.data[t*x.row+s*in : t*x.row+(s+1)*in]
					}
					var g, uv float32
					if many {
						g, uv = dotF32(gr, xs), dotF32(ur, xs)
					} else {
						g, uv = w.dot(gRow, xs), w.dot(uRow, xs)
					}
					g += gb
					uv += ub
					if limit > 0 {
						g = min(g, limit)
						uv = min(max(uv, -limit), limit)
					}
					out.data[t*out.row+s*n+j] = (uv + upOffset) * g / (1 + exp32(-alpha*g))
				}
			}
		}
	}
	return func(seq, _ int) {
		ps.fill(routes, seq)
		units = units[:0]
		for e, pairs := range ps.pairs {
			if len(pairs) == 0 {
				continue
			}
			step := max(1, min(n, macsPerChunk/(2*in*len(pairs))))
			for lo := 0; lo < n; lo += step {
				units = append(units, unit{e, lo, min(lo+step, n)})
			}
		}
		m.pool.run(len(units), 1, body)
	}
}

// moeDown adds each token's routed experts' down projections, weighted by
// the routes, to the residual. Work is split by output row, so every
// output element has one writer.
func (m *Model) moeDown(residual, y, routes buf, k int, w *weight, bias []float32, out buf) func(int, int) {
	experts := int(w.shape[0])
	rowsPerExpert := int(w.shape[1])
	in := w.cols
	m.needScratch(in)
	ps := newExpertPairs(experts, k, m.batch)
	st := &seqPos{}
	body := func(lo, hi, worker int) {
		row := m.scratch[worker][:in]
		seq := st.seq
		for o := lo; o < hi; o++ {
			for t := 0; t < seq; t++ {
				out.data[t*out.row+o] = residual.data[t*residual.row+o]
			}
			for e, pairs := range ps.pairs {
				if len(pairs) == 0 {
					continue
				}
				r := e*rowsPerExpert + o
				var b float32
				if bias != nil {
					b = bias[r]
				}
				many := len(pairs) > 1
				if many {
					w.decodeRow(r, row)
				}
				for _, p := range pairs {
					t, s := int(p)/k, int(p)%k
					ys := y.data[t*y.row+s*in : t*y.row+(s+1)*in]
					var v float32
					if many {
						v = dotF32(row, ys)
					} else {
						v = w.dot(r, ys)
					}
					_, wt := routeAt(routes, t, s)
					out.data[t*out.row+o] += wt * (v + b)
				}
			}
		}
	}
	return func(seq, _ int) {
		ps.fill(routes, seq)
		st.seq = seq
		m.pool.run(rowsPerExpert, grainFor(in*seq*k), body)
	}
}

// qkvRopeStore normalises the row once, computes q, k and v in one
// parallel loop over their concatenated weight rows, rotates q and k, and
// writes k and v to the cache; only q reaches the arena.
func (m *Model) qkvRopeStore(f fusedOp) (func(int, int), bool) {
	norm := f.find("rmsnorm", 0)
	ropeQ, ropeK := f.find("rope", 0), f.find("rope", 1)
	store := f.find("cache_kv", 0)
	if ropeQ == nil || ropeK == nil || store == nil {
		return nil, false
	}
	i := 1 // operands: x, [norm], wq, bq, wk, bk, wv, bv
	x := f.arg(0)
	var h buf
	var normRun func(int, int)
	if norm != nil {
		wn := f.weight(1)
		h = m.scratchBuf(x.row)
		normRun = m.rmsnorm(x, wn.vector(), float32(norm.Attrs.Float("eps")), float32(norm.Attrs.Float("offset")), h)
		i = 2
	} else {
		h = x
	}
	wq, bq, wk, bk, wv, bv := f.weight(i), vec(f.weight(i+1)), f.weight(i+2), vec(f.weight(i+3)), f.weight(i+4), vec(f.weight(i+5))
	q := f.out(0)
	k := m.scratchBuf(wk.rows)
	v := m.scratchBuf(wv.rows)
	mats := [3]*weight{wq, wk, wv}
	biases := [3][]float32{bq, bk, bv}
	outs := [3]buf{q, k, v}
	total := wq.rows + wk.rows + wv.rows
	in := wq.cols
	m.needScratch(in)
	st := &seqPos{}
	body := func(lo, hi, worker int) {
		seq := st.seq
		row := m.scratch[worker][:in]
		for g := lo; g < hi; g++ {
			which, o := 0, g
			for o >= mats[which].rows {
				o -= mats[which].rows
				which++
			}
			w, out := mats[which], outs[which]
			var b float32
			if biases[which] != nil {
				b = biases[which][o]
			}
			if seq == 1 {
				out.data[o] = w.dot(o, h.data[:in]) + b
				continue
			}
			w.decodeRow(o, row)
			for t := 0; t < seq; t++ {
				out.data[t*out.row+o] = dotF32(row, h.data[t*h.row:t*h.row+in]) + b
			}
		}
	}
	rq := m.rope(q, q, ropeQ.Attrs)
	rk := m.rope(k, k, ropeK.Attrs)
	cache := m.caches[int(store.Attrs.Int("cache"))]
	save := m.cacheKV(q, k, v, q, cache)
	return func(seq, pos int) {
		if normRun != nil {
			normRun(seq, pos)
		}
		st.seq = seq
		m.pool.run(total, grainFor(in*seq), body)
		rq(seq, pos)
		rk(seq, pos)
		save(seq, pos)
	}, true
}
