package cpu

import (
	"fmt"

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
func (f fusedOp) find(kind ir.OpKind, n int) *ir.Op {
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

// arg returns the fused op's activation input of that name (its names are
// the registry's, ir.OpDef.Inputs).
func (f fusedOp) arg(name string) buf { return f.val(f.op.Input(name).V) }

// weight returns the fused op's weight input of that name, or nil when it
// is absent.
func (f fusedOp) weight(name string) *weight {
	w := f.op.Input(name).W
	if w == nil {
		return nil
	}
	return f.m.weights[w]
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

// fusedKernels holds the CPU kernel of every fused op kind; a test checks
// that none is missing. A kernel reads the op's operands by their names in
// the registry and its attributes from the body; one that finds a body of
// another shape than it expects says so (false), and the op runs as its
// body instead.
var fusedKernels = map[ir.OpKind]func(f fusedOp) (func(int, int), bool){
	ir.OpAddRMSNorm: func(f fusedOp) (func(int, int), bool) {
		n := f.find(ir.OpRMSNorm, 0)
		return f.m.addRMSNorm(f.arg("a"), f.arg("b"), f.weight("norm").vector(), float32(n.Attrs.Float("eps")), float32(n.Attrs.Float("offset")), f.out(0), f.out(1)), true
	},
	ir.OpRMSNormLinear: func(f fusedOp) (func(int, int), bool) {
		m := f.m
		n := f.find(ir.OpRMSNorm, 0)
		w := f.weight("w")
		h := m.scratchBuf(w.cols)
		norm := m.rmsnorm(f.arg("x"), f.weight("norm").vector(), float32(n.Attrs.Float("eps")), float32(n.Attrs.Float("offset")), h)
		lin := m.linear(h, w, vec(f.weight("b")), f.out(0), nil)
		return func(seq, pos int) { norm(seq, pos); lin(seq, pos) }, true
	},
	ir.OpLinearAdd: func(f fusedOp) (func(int, int), bool) {
		res := f.arg("residual")
		return f.m.linear(f.arg("x"), f.weight("w"), vec(f.weight("b")), f.out(0), &res), true
	},
	ir.OpGLU: func(f fusedOp) (func(int, int), bool) {
		return f.m.glu(f.arg("h"), f.weight("wg"), vec(f.weight("bg")), f.weight("wu"), vec(f.weight("bu")), f.out(0)), true
	},
	ir.OpRouter: func(f fusedOp) (func(int, int), bool) {
		return f.route(f.arg("x"), f.weight("b")), true
	},
	ir.OpAddRMSNormRouter: func(f fusedOp) (func(int, int), bool) {
		n := f.find(ir.OpRMSNorm, 0)
		norm := f.m.addRMSNorm(f.arg("a"), f.arg("b"), f.weight("norm").vector(), float32(n.Attrs.Float("eps")), float32(n.Attrs.Float("offset")), f.out(1), f.out(2))
		route := f.route(f.out(1), f.weight("bias"))
		return func(seq, pos int) { norm(seq, pos); route(seq, pos) }, true
	},
	ir.OpMoEGateUp: func(f fusedOp) (func(int, int), bool) {
		a := f.find(ir.OpSwiGLU, 0).Attrs
		shared := len(f.op.Input("x").V.Type.Shape) == 2
		k := int(f.op.Results[0].Type.Shape[1])
		return f.m.moeGateUp(f.arg("x"), shared, f.arg("routes"), k, f.weight("w"), f.weight("b"), f.out(0),
			float32(a.Float("alpha")), float32(a.Float("limit")), float32(a.Float("up_offset")), a.String("layout") == "interleaved"), true
	},
	ir.OpMoEDown: func(f fusedOp) (func(int, int), bool) {
		k := int(f.op.Input("routes").V.Type.Shape[1])
		return f.m.moeDown(f.arg("residual"), f.arg("y"), f.arg("routes"), k, f.weight("w"), f.weight("b"), f.out(0)), true
	},
	ir.OpQKVRopeStore: func(f fusedOp) (func(int, int), bool) { return f.m.qkvRopeStore(f) },
}

// route is a router's kernel over x, for the router ops: the logits
// (weight "w", bias b) into scratch, then the top k and the softmax over
// them into the op's first result.
func (f fusedOp) route(x buf, b *weight) func(int, int) {
	m := f.m
	w := f.weight("w")
	logits := m.scratchBuf(w.rows)
	lin := m.linear(x, w, vec(b), logits, nil)
	k := int(f.op.Results[0].Type.Shape[1])
	top := m.topk(logits, f.out(0), k)
	soft := m.softmaxRoutes(f.out(0), f.out(0))
	return func(seq, pos int) { lin(seq, pos); top(seq, pos); soft(seq, pos) }
}

// fusedKernel returns the specialised kernel of a fused op, or false when
// the op must run as its body.
func (m *Model) fusedKernel(op *ir.Op, val func(*ir.Value) buf) (func(int, int), bool) {
	k := fusedKernels[op.Kind]
	if k == nil {
		return nil, false
	}
	return k(fusedOp{m, op, val})
}

func (m *Model) addRMSNorm(a, b buf, w []float32, eps, offset float32, normed, sum buf) func(int, int) {
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			as := a.data[t*a.row : (t+1)*a.row]
			bs := b.data[t*b.row : (t+1)*b.row]
			ss := sum.data[t*sum.row : (t+1)*sum.row]
			ns := normed.data[t*normed.row : (t+1)*normed.row]
			for i := range ss {
				ss[i] = as[i] + bs[i]
			}
			rmsNormRow(ss, w, eps, offset, ns)
		}
	}
}

// glu computes silu(x·wg + bg) * (x·wu + bu) row by row, so the gate and
// up activations are never stored.
func (m *Model) glu(x buf, wg *weight, bg []float32, wu *weight, bu []float32, out buf) func(int, int) {
	in := wg.cols
	m.needScratch(2*in + 2*m.batch)
	if wg.dtype == ir.MXFP4 || wu.dtype == ir.MXFP4 {
		m.needPrep(in)
	}
	offs := tokenOffsets(x, m.batch)
	st := &struct {
		seq    int
		xg, xu []float32 // the token, prepared for each weight, when seq is 1
	}{}
	body := func(lo, hi, worker int) {
		seq := st.seq
		sc := m.scratch[worker]
		gr, ur := sc[:in], sc[in:2*in]
		gd, ud := sc[2*in:2*in+seq], sc[2*in+m.batch:2*in+m.batch+seq]
		for o := lo; o < hi; o++ {
			var gb, ub float32
			if bg != nil {
				gb = bg[o]
			}
			if bu != nil {
				ub = bu[o]
			}
			if seq == 1 {
				gd[0], ud[0] = wg.dot(o, st.xg), wu.dot(o, st.xu)
			} else {
				wg.decodeRow(o, gr)
				wu.decodeRow(o, ur)
				dotGather2(gr, ur, x.data, offs[:seq], gd, ud)
			}
			for t := range gd {
				g, u := gd[t]+gb, ud[t]+ub
				out.data[t*out.row+o] = g / (1 + exp32(-g)) * u
			}
		}
	}
	return func(seq, _ int) {
		st.seq = seq
		if seq == 1 {
			st.xg = wg.prepare(x.data[:in], m.prep)
			st.xu = wu.prepare(x.data[:in], m.prep)
		}
		m.pool.run(wg.rows, grainFor(2*in*seq), body)
	}
}

// expertPairs groups a call's (token, route) pairs by expert, and finds
// each pair's input row. Its lists are the model's, shared by every MoE
// op of the same shape (Model.pairLists).
type expertPairs struct {
	m *Model
	k int
	w *weight
	*pairLists
}

// pairLists holds expertPairs' per-expert lists.
type pairLists struct {
	pairs [][]int32 // per expert: t*k+s of the pairs routed to it
	offs  [][]int32 // per expert: where each pair's input row starts
	// one is, for an expert with one pair, that pair's input as w.dot
	// reads it (prepared in Model.prep when w is MXFP4).
	one [][]float32
	// prepared holds, per expert with fewer than directMXFP4 pairs of an
	// MXFP4 weight, each pair's input in pair order: such an expert
	// multiplies its packed rows with them directly.
	prepared [][][]float32
	// quads holds, where dotMXFP4x2x4 has a kernel of its own (see
	// mxfp4Quads), the prepared inputs of each expert with two or more
	// pairs of an MXFP4 weight, four at a time (the last four padded
	// with copies of its last input, whose results are dropped).
	quads [][][4][]float32
}

// directMXFP4 is the number of pairs from which an expert's MXFP4 rows are
// decoded once and multiplied with several inputs at a time; below it,
// each pair multiplies the packed row, which costs about what decoding
// the row once does.
const directMXFP4 = 4

func newExpertPairs(m *Model, experts, k int, w *weight) *expertPairs {
	l := m.pairLists[[2]int{experts, k}]
	if l == nil {
		// Each list starts empty and grows to what the steps route to
		// its expert: a step rarely sends every token to one expert, and
		// capacity for that in every list is mostly never touched.
		l = &pairLists{pairs: make([][]int32, experts), offs: make([][]int32, experts), one: make([][]float32, experts), prepared: make([][][]float32, experts), quads: make([][][4][]float32, experts)}
		if m.pairLists == nil {
			m.pairLists = map[[2]int]*pairLists{}
		}
		m.pairLists[[2]int{experts, k}] = l
	}
	if w.dtype == ir.MXFP4 {
		m.needPrep(m.batch * k * w.cols)
	}
	return &expertPairs{m: m, k: k, w: w, pairLists: l}
}

// fill groups the pairs of seq tokens. Input rows are rows of x: one per
// token when shared, else one per (token, route) slot.
func (p *expertPairs) fill(routes buf, seq int, x buf, shared bool) {
	in := p.w.cols
	for e := range p.pairs {
		p.pairs[e] = p.pairs[e][:0]
		p.offs[e] = p.offs[e][:0]
	}
	for t := 0; t < seq; t++ {
		for s := 0; s < p.k; s++ {
			e, _ := routeAt(routes, t, s)
			off := t * x.row
			if !shared {
				off += s * in
			}
			p.pairs[e] = append(p.pairs[e], int32(t*p.k+s))
			p.offs[e] = append(p.offs[e], int32(off))
		}
	}
	for e, offs := range p.offs {
		p.prepared[e] = p.prepared[e][:0]
		p.quads[e] = p.quads[e][:0]
		if p.w.dtype == ir.MXFP4 && len(offs) > 1 && mxfp4Quads {
			for i, off := range offs {
				pp := int(p.pairs[e][i])
				xp := p.w.prepare(x.data[off:int(off)+in], p.m.prep[pp*in:(pp+1)*in])
				if i%4 == 0 {
					p.quads[e] = append(p.quads[e], [4][]float32{xp, xp, xp, xp})
				} else {
					q := &p.quads[e][i/4]
					for j := i % 4; j < 4; j++ {
						q[j] = xp
					}
				}
			}
			continue
		}
		if p.w.dtype == ir.MXFP4 && len(offs) > 1 && len(offs) < directMXFP4 {
			for i, off := range offs {
				pp := int(p.pairs[e][i])
				p.prepared[e] = append(p.prepared[e], p.w.prepare(x.data[off:int(off)+in], p.m.prep[pp*in:(pp+1)*in]))
			}
		}
		if len(offs) != 1 {
			continue
		}
		xs := x.data[offs[0] : int(offs[0])+in]
		if p.w.dtype == ir.MXFP4 {
			pp := int(p.pairs[e][0])
			p.one[e] = p.w.prepare(xs, p.m.prep[pp*in:(pp+1)*in])
		} else {
			p.one[e] = xs
		}
	}
}

// dots computes row r of expert e against every input routed to it:
// straight from the mapping for one input, else decoding the row into
// scratch first.
func (p *expertPairs) dots(e, r int, x buf, scratch, dots []float32) {
	if len(p.pairs[e]) == 1 {
		dots[0] = p.w.dot(r, p.one[e])
		return
	}
	if len(p.quads[e]) > 0 {
		p.dotsQuads(e, r, r, dots, nil, scratch)
		return
	}
	if xs := p.prepared[e]; len(xs) > 0 {
		for i, x := range xs {
			dots[i] = p.w.dot(r, x)
		}
		return
	}
	p.w.decodeRow(r, scratch)
	dotGather(scratch, x.data, p.offs[e], dots)
}

// dotsQuads computes MXFP4 rows r1 and r2 of expert e against its inputs
// four at a time (two at a time for the last one or two), into dots1 and
// dots2; dots2 may be nil (r2 is then r1 and its results are not
// wanted). tmp is scratch of 8 floats.
func (p *expertPairs) dotsQuads(e, r1, r2 int, dots1, dots2, tmp []float32) {
	n := p.w.cols
	a := mxRow{p.w.blocks[r1*n/2 : r1*n/2+n/2], p.w.scales[r1*n/32 : r1*n/32+n/32]}
	b := mxRow{p.w.blocks[r2*n/2 : r2*n/2+n/2], p.w.scales[r2*n/32 : r2*n/32+n/32]}
	outA, outB := tmp[:4], tmp[4:8]
	quads := p.quads[e]
	for qi := range quads {
		lo := 4 * qi
		if len(dots1)-lo <= 2 {
			dotMXFP4x2x2(a, b, &quads[qi], outA, outB)
		} else {
			dotMXFP4x2x4(a, b, &quads[qi], outA, outB)
		}
		c := copy(dots1[lo:], outA)
		if dots2 != nil {
			copy(dots2[lo:lo+c], outB)
		}
	}
}

// dots2 is dots for rows r1 and r2 of expert e at once.
func (p *expertPairs) dots2(e, r1, r2 int, x buf, scratch1, scratch2, dots1, dots2 []float32) {
	if len(p.pairs[e]) == 1 {
		dots1[0] = p.w.dot(r1, p.one[e])
		dots2[0] = p.w.dot(r2, p.one[e])
		return
	}
	if len(p.quads[e]) > 0 {
		p.dotsQuads(e, r1, r2, dots1, dots2, scratch1)
		return
	}
	if xs := p.prepared[e]; len(xs) > 0 {
		for i, x := range xs {
			dots1[i] = p.w.dot(r1, x)
			dots2[i] = p.w.dot(r2, x)
		}
		return
	}
	p.w.decodeRow(r1, scratch1)
	p.w.decodeRow(r2, scratch2)
	dotGather2(scratch1, scratch2, x.data, p.offs[e], dots1, dots2)
}

// moeGateUp computes each routed expert's gate and up rows for output j
// (rows 2j and 2j+1 when interleaved, j and n+j in halves) and applies the
// clamped SwiGLU at once.
func (m *Model) moeGateUp(x buf, shared bool, routes buf, k int, w *weight, bias *weight, out buf, alpha, limit, upOffset float32, interleaved bool) func(int, int) {
	experts := int(w.shape[0])
	rowsPerExpert := int(w.shape[1])
	n := rowsPerExpert / 2
	in := w.cols
	// A unit's gates, ups and exponentials, pair by pair: at most
	// max(pairs, macsPerChunk/(2*in)) values each (see the units below).
	span := m.batch*k + macsPerChunk/(2*in) + 1
	m.needScratch(2*in + 2*m.batch*k + 3*span)
	ps := newExpertPairs(m, experts, k, w)
	type unit struct{ e, lo, hi int }
	units := make([]unit, 0, experts*16)
	body := func(lo, hi, worker int) {
		sc := m.scratch[worker]
		gr, ur := sc[:in], sc[in:2*in]
		gd := sc[2*in : 2*in+m.batch*k]
		ud := sc[2*in+m.batch*k : 2*in+2*m.batch*k]
		vals := sc[2*in+2*m.batch*k:]
		for u := lo; u < hi; u++ {
			un := units[u]
			pairs := ps.pairs[un.e]
			wd := un.hi - un.lo
			cnt := len(pairs) * wd
			gs, us, es := vals[:cnt], vals[span:span+cnt], vals[2*span:2*span+cnt]
			for j := un.lo; j < un.hi; j++ {
				gRow, uRow := j, n+j
				if interleaved {
					gRow, uRow = 2*j, 2*j+1
				}
				gRow += un.e * rowsPerExpert
				uRow += un.e * rowsPerExpert
				var gb, ub float32
				if bias != nil {
					gb, ub = bias.at(gRow), bias.at(uRow)
				}
				ps.dots2(un.e, gRow, uRow, x, gr, ur, gd[:len(pairs)], ud[:len(pairs)])
				for i := range pairs {
					g, uv := gd[i]+gb, ud[i]+ub
					if limit > 0 {
						g = min(g, limit)
						uv = min(max(uv, -limit), limit)
					}
					at := i*wd + j - un.lo
					gs[at], us[at], es[at] = g, uv, -alpha*g
				}
			}
			// The sigmoids' exponentials, all of the unit's at once.
			swigluExp(es)
			for i, p := range pairs {
				t, s := int(p)/k, int(p)%k
				o := out.data[t*out.row+s*n+un.lo : t*out.row+s*n+un.hi]
				g, uv, e := gs[i*wd:(i+1)*wd], us[i*wd:(i+1)*wd], es[i*wd:(i+1)*wd]
				for jj := range o {
					o[jj] = (uv[jj] + upOffset) * g[jj] / (1 + e[jj])
				}
			}
		}
	}
	return func(seq, _ int) {
		ps.fill(routes, seq, x, shared)
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
func (m *Model) moeDown(residual, y, routes buf, k int, w *weight, bias *weight, out buf) func(int, int) {
	experts := int(w.shape[0])
	rowsPerExpert := int(w.shape[1])
	in := w.cols
	m.needScratch(2*in + 2*m.batch*k)
	ps := newExpertPairs(m, experts, k, w)
	st := &seqPos{}
	body := func(lo, hi, worker int) {
		sc := m.scratch[worker]
		rowA, rowB := sc[:in], sc[in:2*in]
		seq := st.seq
		for t := 0; t < seq; t++ {
			copy(out.data[t*out.row+lo:t*out.row+hi], residual.data[t*residual.row+lo:t*residual.row+hi])
		}
		// Expert by expert, so that an expert's inputs stay in cache for
		// all the rows of the chunk, and its rows are read in order.
		for e, pairs := range ps.pairs {
			if len(pairs) == 0 {
				continue
			}
			dotsA := sc[2*in : 2*in+len(pairs)]
			dotsB := sc[2*in+m.batch*k : 2*in+m.batch*k+len(pairs)]
			add := func(o int, dots []float32) {
				r := e*rowsPerExpert + o
				var b float32
				if bias != nil {
					b = bias.at(r)
				}
				for i, p := range pairs {
					t, s := int(p)/k, int(p)%k
					_, wt := routeAt(routes, t, s)
					out.data[t*out.row+o] += wt * (dots[i] + b)
				}
			}
			o := lo
			for ; o+2 <= hi; o += 2 {
				r := e*rowsPerExpert + o
				ps.dots2(e, r, r+1, y, rowA, rowB, dotsA, dotsB)
				add(o, dotsA)
				add(o+1, dotsB)
			}
			if o < hi {
				ps.dots(e, e*rowsPerExpert+o, y, rowA, dotsA)
				add(o, dotsA)
			}
		}
	}
	return func(seq, _ int) {
		ps.fill(routes, seq, y, false)
		st.seq = seq
		m.pool.run(rowsPerExpert, grainFor(in*seq*k), body)
	}
}

// qkvRopeStore normalises the row once, computes q, k and v in one
// parallel loop over their concatenated weight rows, rotates q and k, and
// writes k and v to the cache; only q reaches the arena.
func (m *Model) qkvRopeStore(f fusedOp) (func(int, int), bool) {
	norm := f.find(ir.OpRMSNorm, 0)
	ropeQ, ropeK := f.find(ir.OpRope, 0), f.find(ir.OpRope, 1)
	store := f.find(ir.OpCacheKV, 0)
	if ropeQ == nil || ropeK == nil || store == nil {
		return nil, false
	}
	x := f.arg("x")
	var h buf
	var normRun func(int, int)
	if norm != nil {
		h = m.scratchBuf(x.row)
		normRun = m.rmsnorm(x, f.weight("norm").vector(), float32(norm.Attrs.Float("eps")), float32(norm.Attrs.Float("offset")), h)
	} else {
		h = x
	}
	wq, bq, wk, bk, wv, bv := f.weight("wq"), vec(f.weight("bq")), f.weight("wk"), vec(f.weight("bk")), f.weight("wv"), vec(f.weight("bv"))
	q := f.out(0)
	k := m.scratchBuf(wk.rows)
	v := m.scratchBuf(wv.rows)
	mats := [3]*weight{wq, wk, wv}
	biases := [3][]float32{bq, bk, bv}
	outs := [3]buf{q, k, v}
	total := wq.rows + wk.rows + wv.rows
	in := wq.cols
	m.needScratch(2*in + 2*m.batch + 16 + chunkRows*m.batch)
	anyMXFP4 := wq.dtype == ir.MXFP4 || wk.dtype == ir.MXFP4 || wv.dtype == ir.MXFP4
	if anyMXFP4 {
		m.needPrep(in)
	}
	offs := tokenOffsets(h, m.batch)
	groups := tokenGroups(h, in, m.batch)
	st := &struct {
		seq int
		x   [3][]float32 // the token as each weight's dot reads it, when seq is 1
	}{}
	body := func(lo, hi, worker int) {
		seq := st.seq
		sc := m.scratch[worker]
		rowA, rowB := sc[:in], sc[in:2*in]
		dotsA, dotsB := sc[2*in:2*in+seq], sc[2*in+m.batch:2*in+m.batch+seq]
		tmp := sc[2*in+2*m.batch : 2*in+2*m.batch+16]
		store := func(which, o int, dots []float32) {
			var b float32
			if biases[which] != nil {
				b = biases[which][o]
			}
			for t, v := range dots {
				outs[which].data[t*outs[which].row+o] = v + b
			}
		}
		for g := lo; g < hi; {
			which, o := 0, g
			for o >= mats[which].rows {
				o -= mats[which].rows
				which++
			}
			w := mats[which]
			switch {
			case seq == 1:
				dotsA[0] = w.dot(o, st.x[which])
				store(which, o, dotsA)
				g++
			case chunked(w, seq) && g+1 < hi && o+1 < w.rows:
				n := min(chunkRows, hi-g, w.rows-o) &^ 1
				acc := sc[2*in+2*m.batch+16:]
				rowsBF16(w, o, o+n, seq, groups, h.data, offs, acc, tmp, &m.views[worker])
				for r := range n {
					store(which, o+r, acc[r*seq:(r+1)*seq])
				}
				g += n
			case g+1 < hi && o+1 < w.rows:
				rowPair(w, o, seq, groups, h.data, offs, rowA, rowB, dotsA, dotsB, tmp)
				store(which, o, dotsA)
				store(which, o+1, dotsB)
				g += 2
			default:
				w.decodeRow(o, rowA)
				dotGather(rowA, h.data, offs[:seq], dotsA)
				store(which, o, dotsA)
				g++
			}
		}
	}
	prepare := func() {
		x := h.data[:in]
		var paired []float32
		if anyMXFP4 {
			paired = m.prep[:in]
			pairOrder(x, paired)
		}
		for i, w := range mats {
			st.x[i] = x
			if w.dtype == ir.MXFP4 {
				st.x[i] = paired
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
		if seq == 1 {
			prepare()
		}
		groups.setTail(seq)
		m.pool.run(total, rowGrain(wq, seq), body)
		rq(seq, pos)
		rk(seq, pos)
		save(seq, pos)
	}, true
}
