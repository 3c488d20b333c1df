package cpu

import (
	"fmt"
	"math"
	"unsafe"

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

// kernelEnv is what a base op's kernel is prepared from: the op, its
// operands and result as buffers, and its attributes.
type kernelEnv struct {
	m   *Model
	op  *ir.Op
	val func(*ir.Value) buf
	out buf
	a   ir.Attrs
}

func (e kernelEnv) arg(i int) buf { return e.val(e.op.Args[i].V) }

// wt returns weight operand i, or nil when it is absent.
func (e kernelEnv) wt(i int) *weight {
	if i >= len(e.op.Args) || e.op.Args[i].W == nil {
		return nil
	}
	return e.m.weights[e.op.Args[i].W]
}

func (e kernelEnv) unary(f func(float32) float32) func(int, int) {
	return e.m.unary(e.arg(0), e.out, f)
}

func (e kernelEnv) binary() func(int, int) {
	if w := e.wt(1); w != nil {
		return e.m.broadcast(e.op.Kind, e.arg(0), w.vector(), e.out)
	}
	return e.m.binary(e.op.Kind, e.arg(0), e.arg(1), e.out)
}

// baseKernels holds the CPU kernel of every base op kind; a test checks
// that every kind of the registry a backend can see has one.
var baseKernels = map[ir.OpKind]func(e kernelEnv) func(seq, pos int){
	ir.OpEmbedding: func(e kernelEnv) func(int, int) { return e.m.embedding(e.wt(0), e.arg(1), e.out) },
	ir.OpLinear:    func(e kernelEnv) func(int, int) { return e.m.linear(e.arg(0), e.wt(1), vec(e.wt(2)), e.out, nil) },
	ir.OpRMSNorm: func(e kernelEnv) func(int, int) {
		return e.m.rmsnorm(e.arg(0), e.wt(1).vector(), float32(e.a.Float("eps")), float32(e.a.Float("offset")), e.out)
	},
	ir.OpLayerNorm: func(e kernelEnv) func(int, int) {
		return e.m.layernorm(e.arg(0), e.wt(1).vector(), vec(e.wt(2)), float32(e.a.Float("eps")), e.out)
	},
	ir.OpRope: func(e kernelEnv) func(int, int) { return e.m.rope(e.arg(0), e.out, e.a) },
	ir.OpCacheKV: func(e kernelEnv) func(int, int) {
		return e.m.cacheKV(e.arg(0), e.arg(1), e.arg(2), e.out, e.m.caches[int(e.a.Int("cache"))])
	},
	ir.OpAttend: func(e kernelEnv) func(int, int) {
		return e.m.attend(e.arg(0), vec(e.wt(1)), e.out, e.a, e.m.caches[int(e.a.Int("cache"))])
	},
	ir.OpTopK: func(e kernelEnv) func(int, int) { return e.m.topk(e.arg(0), e.out, int(e.a.Int("k"))) },
	ir.OpSoftmax: func(e kernelEnv) func(int, int) {
		if e.op.Args[0].V.Type.DType == ir.Route {
			return e.m.softmaxRoutes(e.arg(0), e.out)
		}
		return e.m.softmaxRows(e.arg(0), e.out)
	},
	ir.OpExpertLinear: func(e kernelEnv) func(int, int) {
		k := int(e.op.Results[0].Type.Shape[1])
		shared := len(e.op.Args[0].V.Type.Shape) == 2
		return e.m.expertLinear(e.arg(0), shared, e.arg(1), k, e.wt(2), e.wt(3), e.out)
	},
	ir.OpSwiGLU: func(e kernelEnv) func(int, int) {
		return e.m.swiglu(e.arg(0), e.out, int(e.op.Results[0].Type.Shape.Last()), float32(e.a.Float("alpha")), float32(e.a.Float("limit")), float32(e.a.Float("up_offset")), e.a.String("layout") == "interleaved")
	},
	ir.OpMix: func(e kernelEnv) func(int, int) {
		return e.m.mix(e.arg(0), e.arg(1), int(e.op.Args[1].V.Type.Shape[1]), e.out)
	},
	ir.OpAdd: kernelEnv.binary, ir.OpSub: kernelEnv.binary, ir.OpMul: kernelEnv.binary, ir.OpDiv: kernelEnv.binary,
	ir.OpAffine: func(e kernelEnv) func(int, int) {
		mul, add := float32(e.a.Float("mul")), float32(e.a.Float("add"))
		return e.unary(func(x float32) float32 { return x*mul + add })
	},
	ir.OpSiLU: func(e kernelEnv) func(int, int) {
		return e.unary(func(x float32) float32 { return x / (1 + exp32(-x)) })
	},
	ir.OpSigmoid: func(e kernelEnv) func(int, int) {
		return e.unary(func(x float32) float32 { return 1 / (1 + exp32(-x)) })
	},
	ir.OpTanh: func(e kernelEnv) func(int, int) {
		return e.unary(func(x float32) float32 { return float32(math.Tanh(float64(x))) })
	},
	ir.OpReLU: func(e kernelEnv) func(int, int) { return e.unary(func(x float32) float32 { return max(x, 0) }) },
	ir.OpExp:  func(e kernelEnv) func(int, int) { return e.unary(exp32) },
	ir.OpNarrow: func(e kernelEnv) func(int, int) {
		return e.m.narrow(e.arg(0), e.out, int(e.a.Int("start")))
	},
	ir.OpGELU: func(e kernelEnv) func(int, int) {
		return e.unary(func(x float32) float32 {
			return float32(0.5 * float64(x) * (1 + math.Erf(float64(x)/math.Sqrt2)))
		})
	},
	ir.OpGELUTanh: func(e kernelEnv) func(int, int) {
		return e.unary(func(x float32) float32 {
			v := float64(x)
			return float32(0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))))
		})
	},
}

// kernel prepares a base op.
func (m *Model) kernel(op *ir.Op, val func(*ir.Value) buf) (func(seq, pos int), error) {
	k := baseKernels[op.Kind]
	if k == nil {
		return nil, fmt.Errorf("BUG: the CPU backend has no kernel for %s", op.Kind)
	}
	return k(kernelEnv{m: m, op: op, val: val, out: val(op.Results[0]), a: op.Attrs}), nil
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
// weight row straight from the mapping; four or more tokens multiply a
// bf16 matrix chunk by chunk (rowsBF16), and other calls take rows two at
// a time (rowPair).
func (m *Model) linear(x buf, w *weight, bias []float32, out buf, residual *buf) func(int, int) {
	m.needScratch(2*w.cols + 2*m.batch + 16 + chunkRows*m.batch)
	if w.dtype == ir.MXFP4 {
		m.needPrep(w.cols)
	}
	offs := tokenOffsets(x, m.batch)
	groups := tokenGroups(x, w.cols, m.batch)
	st := &struct {
		seq int
		x   []float32 // the token, prepared, when seq is 1
	}{}
	store := func(o int, dots []float32) {
		var b float32
		if bias != nil {
			b = bias[o]
		}
		for t, v := range dots {
			v += b
			if residual != nil {
				v += residual.data[t*residual.row+o]
			}
			out.data[t*out.row+o] = v
		}
	}
	body := func(lo, hi, worker int) {
		seq := st.seq
		sc := m.scratch[worker]
		rowA, rowB := sc[:w.cols], sc[w.cols:2*w.cols]
		dotsA, dotsB := sc[2*w.cols:2*w.cols+seq], sc[2*w.cols+m.batch:2*w.cols+m.batch+seq]
		tmp := sc[2*w.cols+2*m.batch : 2*w.cols+2*m.batch+16]
		if seq == 1 {
			for o := lo; o < hi; o++ {
				dotsA[0] = w.dot(o, st.x)
				store(o, dotsA)
			}
			return
		}
		o := lo
		if chunked(w, seq) {
			acc := sc[2*w.cols+2*m.batch+16:]
			for o+2 <= hi {
				o1 := o + min(chunkRows, (hi-o)&^1)
				rowsBF16(w, o, o1, seq, groups, x.data, offs, acc, tmp, &m.views[worker])
				for r := o; r < o1; r++ {
					store(r, acc[(r-o)*seq:(r-o+1)*seq])
				}
				o = o1
			}
		}
		for ; o+2 <= hi; o += 2 {
			rowPair(w, o, seq, groups, x.data, offs, rowA, rowB, dotsA, dotsB, tmp)
			store(o, dotsA)
			store(o+1, dotsB)
		}
		if o < hi {
			w.decodeRow(o, rowA)
			dotGather(rowA, x.data, offs[:seq], dotsA)
			store(o, dotsA)
		}
	}
	return func(seq, _ int) {
		st.seq = seq
		if seq == 1 {
			st.x = w.prepare(x.data[:w.cols], m.prep)
		}
		groups.setTail(seq)
		m.pool.run(w.rows, rowGrain(w, seq), body)
	}
}

// tokenOffsets lists where each token's row of x starts.
func tokenOffsets(x buf, batch int) []int32 {
	offs := make([]int32, batch)
	for t := range offs {
		offs[t] = int32(t * x.row)
	}
	return offs
}

// tokGroups views the rows of x in groups of eight tokens, as the 2x8
// kernels read them; made once per op, since x's place never changes.
type tokGroups struct {
	full []tok8
	// tail is the last seq%8 tokens of the current call, padded to eight
	// with copies of the last one, when there are four or more of them:
	// one padded call of the 2x8 kernel costs less than their rows'
	// decoding. setTail makes it.
	tail tok8
	x    buf
	cols int
}

func tokenGroups(x buf, cols, batch int) *tokGroups {
	g := &tokGroups{full: make([]tok8, batch/8), x: x, cols: cols}
	for t := 0; t < len(g.full)*8; t++ {
		g.full[t/8][t%8] = x.data[t*x.row : t*x.row+cols]
	}
	return g
}

func (g *tokGroups) setTail(seq int) {
	r := seq % 8
	if r < 4 {
		return
	}
	for i := range g.tail {
		t := seq - r + min(i, r-1)
		g.tail[i] = g.x.data[t*g.x.row : t*g.x.row+g.cols]
	}
}

// rowPair computes rows o and o+1 of w against the seq tokens of x (at
// offs in data, grouped by eight in groups) into dotsA and dotsB. A bf16
// weight is multiplied packed: eight tokens at a time, a last four to
// seven as one padded group (its results land in tmp, 16 floats, first),
// and fewer one by one. Other types decode the two rows into rowA and
// rowB first.
func rowPair(w *weight, o, seq int, groups *tokGroups, data []float32, offs []int32, rowA, rowB, dotsA, dotsB, tmp []float32) {
	done := 0
	if w.dtype == ir.BF16 {
		a, b := w.row16(o), w.row16(o+1)
		for ; done+8 <= seq; done += 8 {
			dotBF16x2x8(a, b, &groups.full[done/8], dotsA[done:done+8], dotsB[done:done+8])
		}
		switch r := seq - done; {
		case r >= 4:
			dotBF16x2x8(a, b, &groups.tail, tmp[:8], tmp[8:16])
			copy(dotsA[done:seq], tmp[:r])
			copy(dotsB[done:seq], tmp[8:8+r])
		default:
			n := w.cols
			for t := done; t < seq; t++ {
				x := data[offs[t] : int(offs[t])+n]
				dotsA[t], dotsB[t] = dotBF16(a, x), dotBF16(b, x)
			}
		}
		return
	}
	w.decodeRow(o, rowA)
	w.decodeRow(o+1, rowB)
	dotGather2(rowA, rowB, data, offs[done:seq], dotsA[done:seq], dotsB[done:seq])
}

// bf16Chunk is how many inputs rowsBF16 multiplies at a time,
// chunkRows how many rows it takes through each chunk before the next,
// and prefetchAhead how many rows ahead of the pair it multiplies it asks
// for the next rows' chunks. The eight tokens' chunks (8 x 1.25 KB) stay
// in L1 while the rows stream past them, and the prefetches keep loads in
// flight across the rows, where whole rows two at a time left the memory
// system idle between one pair and the next. On an AVX-512 EPYC (2
// threads) the 2x8 kernel ran at 53 G multiply-adds a second over a
// matrix in memory this way, against 37 G by whole row pairs
// (BenchmarkRowsBF16, docs/benchmarks.md).
const (
	bf16Chunk     = 320
	chunkRows     = 16
	prefetchAhead = 4
)

// chunked tells whether a call of seq tokens multiplies w chunk by chunk:
// a bf16 matrix against the 2x8 kernel's groups (a padded group from four
// tokens).
func chunked(w *weight, seq int) bool { return w.dtype == ir.BF16 && seq >= 4 }

// rowGrain is the least rows a worker claims of a matrix-vector loop: a
// chunked one takes whole runs of rows, the others follow the work.
func rowGrain(w *weight, seq int) int {
	if chunked(w, seq) {
		return chunkRows
	}
	return grainFor(w.cols * seq)
}

// chunkViews holds, for rowsBF16, the rows of the run and a chunk of
// each group of eight tokens (the first four groups made once a chunk,
// the others in xs as they come) and of the padded last group.
type chunkViews struct {
	first    [4]tok8
	xs, tail tok8
	rows     [chunkRows][]uint16
}

// rowsBF16 computes rows o0 to o1 (an even count, at most chunkRows) of a
// bf16 w against the seq tokens of x into acc, row by row (acc[(o-o0)*seq+t]),
// bf16Chunk inputs at a time. The chunks' sums add up in float32, as the
// kernels' lanes do.
func rowsBF16(w *weight, o0, o1, seq int, groups *tokGroups, data []float32, offs []int32, acc, tmp []float32, v *chunkViews) {
	n := w.cols
	acc = acc[:(o1-o0)*seq]
	clear(acc)
	full := seq &^ 7
	r := seq - full
	first, xs, tail := &v.first, &v.xs, &v.tail
	rows := v.rows[:o1-o0]
	for i := range rows {
		rows[i] = w.row16(o0 + i)
	}
	for c := 0; c < n; c += bf16Chunk {
		e := min(c+bf16Chunk, n)
		for g := 0; g < min(full, 32); g += 8 {
			for i := range 8 {
				first[g/8][i] = groups.full[g/8][i][c:e]
			}
		}
		if r >= 4 {
			for i := range tail {
				tail[i] = groups.tail[i][c:e]
			}
		}
		for o := o0; o < o1; o += 2 {
			i := o - o0
			// The chunk of the pair prefetchAhead rows on (of the next
			// chunk, at the end of the run) is asked for now.
			if q, qc := i+prefetchAhead, c+bf16Chunk; q < len(rows) || qc < n {
				if q < len(rows) {
					qc = c
				} else {
					q %= len(rows)
				}
				qn := 2 * (min(qc+bf16Chunk, n) - qc)
				prefetchLines((*byte)(unsafe.Pointer(&rows[q][qc])), qn)
				prefetchLines((*byte)(unsafe.Pointer(&rows[q+1][qc])), qn)
			}
			a, b := rows[i][c:e], rows[i+1][c:e]
			accA, accB := acc[(o-o0)*seq:(o-o0+1)*seq], acc[(o-o0+1)*seq:(o-o0+2)*seq]
			for g := 0; g < full; g += 8 {
				x := xs
				if g < 32 {
					x = &first[g/8]
				} else {
					for i := range xs {
						xs[i] = groups.full[g/8][i][c:e]
					}
				}
				dotBF16x2x8(a, b, x, tmp[:8], tmp[8:16])
				for i := range 8 {
					accA[g+i] += tmp[i]
					accB[g+i] += tmp[8+i]
				}
			}
			if r >= 4 {
				dotBF16x2x8(a, b, tail, tmp[:8], tmp[8:16])
				for i := range r {
					accA[full+i] += tmp[i]
					accB[full+i] += tmp[8+i]
				}
				continue
			}
			for t := full; t < seq; t++ {
				x := data[int(offs[t])+c : int(offs[t])+e]
				accA[t] += dotBF16(a, x)
				accB[t] += dotBF16(b, x)
			}
		}
	}
}

// dotGather2 is dotGather for two rows at once: each input is read once
// for both.
func dotGather2(rowA, rowB, data []float32, offs []int32, dotsA, dotsB []float32) {
	n := len(rowA)
	i := 0
	for ; i+8 <= len(offs); i += 8 {
		dotF32x2x8(rowA, rowB, data, offs[i:i+8], dotsA[i:i+8], dotsB[i:i+8])
	}
	for ; i+4 <= len(offs); i += 4 {
		o0, o1, o2, o3 := int(offs[i]), int(offs[i+1]), int(offs[i+2]), int(offs[i+3])
		dotF32x2x4(rowA, rowB, data[o0:o0+n], data[o1:o1+n], data[o2:o2+n], data[o3:o3+n], dotsA[i:i+4], dotsB[i:i+4])
	}
	for ; i < len(offs); i++ {
		o := int(offs[i])
		dotsA[i] = dotF32(rowA, data[o:o+n])
		dotsB[i] = dotF32(rowB, data[o:o+n])
	}
}

// dotGather computes dots[i] = row · data[offs[i]:][:len(row)], reading
// the row once for every four inputs.
func dotGather(row, data []float32, offs []int32, dots []float32) {
	n := len(row)
	i := 0
	for ; i+4 <= len(offs); i += 4 {
		o0, o1, o2, o3 := int(offs[i]), int(offs[i+1]), int(offs[i+2]), int(offs[i+3])
		dots[i], dots[i+1], dots[i+2], dots[i+3] = dotF32x4(row, data[o0:o0+n], data[o1:o1+n], data[o2:o2+n], data[o3:o3+n])
	}
	for ; i < len(offs); i++ {
		o := int(offs[i])
		dots[i] = dotF32(row, data[o:o+n])
	}
}

func (m *Model) rmsnorm(x buf, w []float32, eps, offset float32, out buf) func(int, int) {
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			rmsNormRow(x.data[t*x.row:(t+1)*x.row], w, eps, offset, out.data[t*out.row:(t+1)*out.row])
		}
	}
}

// rmsNormRow normalises xs in groups of len(w) (one group per head for a
// per-head norm, one for the whole row otherwise), accumulating the sum of
// squares in float64 like the float64 reference does.
func rmsNormRow(xs, w []float32, eps, offset float32, out []float32) {
	g := len(w)
	for base := 0; base < len(xs); base += g {
		var ss float64
		for _, v := range xs[base : base+g] {
			ss += float64(v) * float64(v)
		}
		r := float32(1 / math.Sqrt(ss/float64(g)+float64(eps)))
		for i := 0; i < g; i++ {
			out[base+i] = xs[base+i] * r * (w[i] + offset)
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
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			p := float32(m.tokPos[t])
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
	return func(seq, _ int) {
		for t := 0; t < seq; t++ {
			ks := k.data[t*k.row : (t+1)*k.row]
			vs := v.data[t*v.row : (t+1)*v.row]
			sq, p := int(m.tokSeq[t]), int(m.tokPos[t])
			for h := 0; h < heads; h++ {
				l.storeK(sq, p, h, ks[h*hd:(h+1)*hd])
				l.storeV(sq, p, h, vs[h*vd:(h+1)*vd])
			}
		}
		if &out.data[0] != &q.data[0] {
			copy(out.rows(seq), q.rows(seq))
		}
	}
}

// attnChunk is the most cached positions attention decodes at a time
// (for the formats that are not f32): enough to amortise a call, few
// enough to stay in the first-level cache.
const attnChunk = 128

// attend computes, for each new token and query head, softmax(q·K * scale)
// over the visible cached positions of the token's own sequence (with the
// head's sink logit joining the denominator) times V.
//
// The work items are (token, KV head): the query heads that share a KV
// head (grouped-query attention) read each key and value row once, two
// heads per kernel call, and the kernels take a block of rows per call.
func (m *Model) attend(q buf, sinks []float32, out buf, a ir.Attrs, l *kvLayer) func(int, int) {
	heads := int(a.Int("heads"))
	kvHeads := int(a.Int("kv_heads"))
	hd := int(a.Int("head_dim"))
	vd := int(ir.VHeadDim(a))
	window := int(a.Int("window"))
	scale := float32(a.Float("scale"))
	softcap := float32(a.Float("softcap"))
	group := heads / kvHeads
	// An odd group's last head is paired with itself; the copy's result
	// is dropped.
	slots := group + group%2
	capacity := int(l.p.Capacity)
	// Per worker: the scores of each head, one decoded block of rows, the
	// prepared queries and the heads' sums of values.
	scoresAt, rowsAt := 0, slots*capacity
	queriesAt := rowsAt + attnChunk*max(hd, vd)
	accAt := queriesAt + slots*hd
	m.needScratch(accAt + slots*vd)
	body := func(lo, hi, worker int) {
		sc := m.scratch[worker]
		rowBuf := sc[rowsAt:queriesAt]
		for item := lo; item < hi; item++ {
			t, kvh := item/kvHeads, item%kvHeads
			sq, p := int(m.tokSeq[t]), int(m.tokPos[t])
			first := 0
			if window > 0 {
				first = max(0, p-window+1)
			}
			n := p - first + 1
			score := func(g int) []float32 { return sc[scoresAt+g*capacity : scoresAt+g*capacity+n] }
			query := func(g int) []float32 { return sc[queriesAt+g*hd : queriesAt+(g+1)*hd] }
			acc := func(g int) []float32 { return sc[accAt+g*vd : accAt+(g+1)*vd] }
			for g := 0; g < slots; g++ {
				h := kvh*group + min(g, group-1)
				qh := l.prepareQuery(q.data[t*q.row+h*hd:t*q.row+(h+1)*hd], query(g))
				if &qh[0] != &query(g)[0] {
					copy(query(g), qh)
				}
			}
			for j := 0; j < n; {
				c := l.run(first+j, min(n-j, attnChunk))
				rows, stride := l.keys(sq, first+j, c, kvh, rowBuf)
				for g := 0; g < slots; g += 2 {
					attnScores2(rows, stride, query(g), query(g+1), score(g)[j:j+c], score(g + 1)[j:j+c])
				}
				j += c
			}
			for g := 0; g < slots; g++ {
				scores := score(g)
				mx := float32(math.Inf(-1))
				for j, s := range scores {
					s *= scale
					if softcap > 0 {
						s = float32(math.Tanh(float64(s/softcap))) * softcap
					}
					scores[j] = s
					mx = max(mx, s)
				}
				var sink float32
				if sinks != nil {
					sink = sinks[kvh*group+min(g, group-1)]
					mx = max(mx, sink)
				}
				denom := expSum(scores, mx)
				if sinks != nil {
					denom += exp32(sink - mx)
				}
				for j := range scores {
					scores[j] /= denom
				}
				clear(acc(g))
			}
			for j := 0; j < n; {
				c := l.run(first+j, min(n-j, attnChunk))
				rows, stride := l.values(sq, first+j, c, kvh, rowBuf)
				for g := 0; g < slots; g += 2 {
					attnValues2(rows, stride, score(g)[j:j+c], score(g + 1)[j:j+c], acc(g), acc(g+1))
				}
				j += c
			}
			for g := 0; g < group; g++ {
				h := kvh*group + g
				l.finishValue(acc(g))
				copy(out.data[t*out.row+h*vd:t*out.row+(h+1)*vd], acc(g))
			}
		}
	}
	return func(seq, _ int) {
		// Each (token, KV head) reads up to its position's cached
		// positions for its group of heads; short contexts are not worth
		// waking another thread for.
		m.pool.run(seq*kvHeads, grainFor((int(m.tokLast)+1)*(hd+vd)*group), body)
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
// Expert biases ([experts, rows]) are read from the mapping as needed:
// decoding one token touches four experts' rows of them, and decoding them
// all at load would cost time to ready and heap.
func (m *Model) expertLinear(x buf, shared bool, routes buf, k int, w *weight, bias *weight, out buf) func(int, int) {
	experts := int(w.shape[0])
	outRows := int(w.shape[1])
	in := w.cols
	m.needScratch(in + m.batch*k)
	ps := newExpertPairs(m, experts, k, w)
	type unit struct{ e, lo, hi int }
	units := make([]unit, 0, experts*8)
	body := func(lo, hi, worker int) {
		row := m.scratch[worker][:in]
		for u := lo; u < hi; u++ {
			un := units[u]
			pairs := ps.pairs[un.e]
			dots := m.scratch[worker][in : in+len(pairs)]
			for o := un.lo; o < un.hi; o++ {
				r := un.e*outRows + o
				var b float32
				if bias != nil {
					b = bias.at(r)
				}
				ps.dots(un.e, r, x, row, dots)
				for i, p := range pairs {
					t, s := int(p)/k, int(p)%k
					out.data[t*out.row+s*outRows+o] = dots[i] + b
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
			step := max(1, min(outRows, macsPerChunk/(in*len(pairs))))
			for lo := 0; lo < outRows; lo += step {
				units = append(units, unit{e, lo, min(lo+step, outRows)})
			}
		}
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

func (m *Model) binary(kind ir.OpKind, a, b, out buf) func(int, int) {
	f := binaryFunc(kind)
	return func(seq, _ int) {
		as, bs, os := a.rows(seq), b.rows(seq), out.rows(seq)
		for i := range os {
			os[i] = f(as[i], bs[i])
		}
	}
}

func (m *Model) broadcast(kind ir.OpKind, a buf, w []float32, out buf) func(int, int) {
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

func binaryFunc(kind ir.OpKind) func(a, b float32) float32 {
	switch kind {
	case ir.OpAdd:
		return func(a, b float32) float32 { return a + b }
	case ir.OpSub:
		return func(a, b float32) float32 { return a - b }
	case ir.OpMul:
		return func(a, b float32) float32 { return a * b }
	}
	return func(a, b float32) float32 { return a / b }
}

// narrow copies features start..start+out.row of each token.
func (m *Model) narrow(x, out buf, start int) func(int, int) {
	return func(seq, _ int) {
		xs, os := x.rows(seq), out.rows(seq)
		for t := 0; t < seq; t++ {
			copy(os[t*out.row:(t+1)*out.row], xs[t*x.row+start:])
		}
	}
}

func (m *Model) unary(x, out buf, f func(float32) float32) func(int, int) {
	return func(seq, _ int) {
		xs, os := x.rows(seq), out.rows(seq)
		for i := range os {
			os[i] = f(xs[i])
		}
	}
}
