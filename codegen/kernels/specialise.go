package kernels

import (
	"fmt"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// Threadgroup shapes. Matrix-vector kernels give each of four SIMD-groups
// decodeRows output rows; tiled kernels give each SIMD-group an 8x8 tile.
const (
	sgPerTG = 4
	// wideRows is the least output rows at which a matrix-vector kernel
	// gives a SIMD-group two rows (decodeRows).
	wideRows = 16384
	// expertRows weight rows share each activation load in the expert
	// kernels (templates/experts.metal.tmpl says why).
	expertRows = 4
	tgThreads  = 32 * sgPerTG
	// wideSG SIMD-groups serve kernels whose grid is one threadgroup per
	// token (or per head of a token): the norms, the router and the q/k/v
	// projections. In decode such a dispatch has few threadgroups, and
	// more SIMD-groups in each is the only parallelism there is.
	wideSG      = 32
	wideThreads = 32 * wideSG
	// A tiled threadgroup covers 8 tokens x 32 outputs.
	tileTokens = 8
	tileOut    = 8 * sgPerTG
)

// weightInfo describes how a template reads a weight.
func weightInfo(w *ir.Weight) Weight {
	load := map[ir.DType]string{ir.BF16: "bf16f", ir.F16: "f16f", ir.F32: ""}[w.DType]
	load4 := map[ir.DType]string{ir.BF16: "bf16f4", ir.F16: "f16f4", ir.F32: ""}[w.DType]
	wtype := "ushort"
	if w.DType == ir.F32 {
		wtype = "float"
	}
	cols := int(w.Shape.Last())
	return Weight{DType: w.DType.String(), Load: load, Load4: load4, WType: wtype, Cols: cols,
		MXFP4: w.DType == ir.MXFP4, Vec: w.DType != ir.MXFP4 && cols%4 == 0}
}

// specialisers maps every op kind the optimiser can emit to its
// specialiser; a test checks that no registered op is missing.
var specialisers = map[ir.OpKind]func(*builder) ([]spec, error){
	ir.OpEmbedding: specEmbedding,
	ir.OpLinear:    specLinear, ir.OpLinearAdd: specLinear, ir.OpRMSNormLinear: specLinear,
	ir.OpGLU:          specGLU,
	ir.OpQKVRopeStore: specQKV,
	ir.OpAttend:       specAttend,
	ir.OpAddRMSNorm:   specNorm, ir.OpRMSNorm: specNorm, ir.OpLayerNorm: specNorm,
	ir.OpRouter: specRouter, ir.OpAddRMSNormRouter: specNormRouter,
	ir.OpMoEGateUp: specExpertUp, ir.OpExpertLinear: specExpertUp,
	ir.OpMoEDown: specExpertDown,
	ir.OpRope:    specRope,
	ir.OpCacheKV: specCacheKV,
	ir.OpTopK:    specRows, ir.OpSoftmax: specRows,
	ir.OpSwiGLU: specElementwise, ir.OpMix: specElementwise, ir.OpAffine: specElementwise,
	ir.OpAdd: specElementwise, ir.OpSub: specElementwise, ir.OpMul: specElementwise, ir.OpDiv: specElementwise,
	ir.OpSiLU: specElementwise, ir.OpGELU: specElementwise, ir.OpGELUTanh: specElementwise, ir.OpSigmoid: specElementwise,
	ir.OpTanh: specElementwise, ir.OpReLU: specElementwise, ir.OpExp: specElementwise,
	ir.OpNarrow: specElementwise,
}

// Supported reports whether an op kind has a Metal template.
func Supported(kind ir.OpKind) bool { return specialisers[kind] != nil }

// specialise dispatches on the op kind.
func specialise(b *builder) ([]spec, error) {
	if f := specialisers[b.op.Kind]; f != nil {
		return f(b)
	}
	return nil, fmt.Errorf("BUG: no Metal template for op %s", b.op.Kind)
}

// body finds the n-th op of a kind in a fused op's body (the op itself
// when it is not fused).
func body(op *ir.Op, kind ir.OpKind, n int) *ir.Op {
	if len(op.Body) == 0 {
		if op.Kind == kind && n == 0 {
			return op
		}
		return nil
	}
	for _, b := range op.Body {
		if b.Kind == kind {
			if n == 0 {
				return b
			}
			n--
		}
	}
	return nil
}

// rowsGrid spreads rows of output over threadgroups, one token per grid
// row (matrix-vector kernels).
func rowsGrid(rows, perTG int) Grid {
	return Grid{{Const: (rows + perTG - 1) / perTG}, {PerTile: 1, Tile: 1}, {Const: 1}}
}

func tiledGrid(outs int) Grid {
	return Grid{{Const: (outs + tileOut - 1) / tileOut}, {PerTile: 1, Tile: tileTokens}, {Const: 1}}
}

func tokensGrid() Grid { return Grid{{PerTile: 1, Tile: 1}, {Const: 1}, {Const: 1}} }

func threads(n int) [3]int { return [3]int{n, 1, 1} }

func specEmbedding(b *builder) ([]spec, error) {
	op := b.op
	w := op.Args[0].W
	b.args()
	b.weight("table", w)
	b.value("ids", op.Args[1].V, false)
	b.value("out", op.Results[0], true)
	data := &EmbeddingData{Weight: weightInfo(w)}
	return []spec{{variant: Any, template: string(ir.OpEmbedding), desc: w.DType.String(), threads: threads(tgThreads), tgmem: []int{16}, grid: tokensGrid(), data: data}}, nil
}

// specLinear covers linear, linear_add (a residual added in the epilogue)
// and rmsnorm_linear (an RMS norm as the prologue).
func specLinear(b *builder) ([]spec, error) {
	op := b.op
	var residual *ir.Value
	var normW *ir.Weight
	norm := body(op, ir.OpRMSNorm, 0)
	x, w, bias := op.Input("x").V, op.Input("w").W, op.Input("b").W
	switch op.Kind {
	case ir.OpLinearAdd:
		residual = op.Input("residual").V
	case ir.OpRMSNormLinear:
		normW = op.Input("norm").W
	}
	b.args()
	b.value("x", x, false)
	b.optionalWeight("norm", normW)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	if residual != nil {
		b.value("residual", residual, false)
	}
	b.value("out", op.Results[0], true)
	data := LinearData{Weight: weightInfo(w), In: int(w.Shape[1]), Out: int(w.Shape[0]),
		Bias: bias != nil, BiasLoad: loadOf(bias), Residual: residual != nil, Norm: normW != nil}
	if norm != nil {
		data.Eps = hexFloat(float32(norm.Attrs.Float("eps")))
		data.Offset = hexFloat(float32(norm.Attrs.Float("offset")))
		ni := weightInfo(normW)
		data.NormLoad, data.NormLoad4, data.NormWType = ni.Load, ni.Load4, ni.WType
	}
	desc := fmt.Sprintf("%s_%dx%d", w.DType, w.Shape[0], w.Shape[1])
	out := int(w.Shape[0])
	decode := data
	decode.RowsPerSG = decodeRows(out)
	decode.Preload = linearPreload
	return []spec{
		{variant: Decode, template: string(ir.OpLinear), desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 64}, grid: rowsGrid(out, sgPerTG*decode.RowsPerSG), data: &decode, upTo: fewTokens(w.Bytes())},
		{variant: Prefill, template: string(ir.OpLinear), desc: desc, threads: threads(tgThreads), tgmem: []int{4 * (tileTokens*8 + sgPerTG*64 + tileTokens*tileOut + tileTokens)}, grid: tiledGrid(out), data: &data},
	}, nil
}

// fewTokens is the most tokens a call of a dense matrix kernel may have
// for the matrix-vector (decode) kernel to serve it rather than the tiled
// one; a batched step of a few sequences is such a call. The tiled
// kernel reads the weights once a call, but with 8 tokens x 32 outputs a
// threadgroup, a call of up to 16 tokens gives gpt-oss-20b's o_proj (2880
// rows) 90 to 180 threadgroups, each walking all 4096 inputs: on an H100
// its 24 layers took 8.3 ms a call of 2 to 16 tokens. The decode grid has
// a row of threadgroups a token, each reading the rows itself, so a call
// of n tokens reads the weights n times: from the cache while they fit
// it (o_proj: 0.44 ms for 2 tokens, 1.01 ms for 8), from memory when they
// do not (the LM head, 1.16 GB: 0.83 ms for 2 tokens, 3.26 ms for 8,
// against 2.0 ms tiled). Hence up to 16 tokens (a batched step of 16
// sequences) for a matrix of at most cachedBytes and up to 4 for a larger
// one (docs/gpu.md, "Few-token calls"). Apple GPUs' system-level caches
// are of the same order as the H100's 50 MB L2.
func fewTokens(weightBytes int64) int {
	if weightBytes > cachedBytes {
		return 4
	}
	return 16
}

// cachedBytes is the largest weight matrix that fewTokens counts on a
// GPU's last-level cache to hold between one token's threadgroups and
// the next's.
const cachedBytes = 64 << 20

// decodeRows is how many output rows each SIMD-group of a matrix-vector
// kernel computes in one pass over the input. Two rows share each
// activation load but halve the SIMD-groups, and a matrix of a few
// thousand rows then leaves most of a large GPU idle: on the H100,
// gpt-oss-20b's o_proj (2880 rows) took 0.557 ms a token with two rows
// and 0.408 with one, while its LM head (201088 rows) took 0.411 with
// two and 0.507 with one (docs/gpu.md). Two rows pay from about 8K
// SIMD-groups, a full wave of an H100's 132 SMs.
func decodeRows(out int) int {
	if out >= wideRows {
		return 2
	}
	return 1
}

// How many steps of weights (a 32-lane SIMD-group's four values a lane
// per row) a decode matrix-vector kernel reads before it waits for the
// kernel before it (wait_inputs, templates/common.metal.tmpl). The q/k/v
// kernel's threadgroups have 32 SIMD-groups, which leaves a thread 64
// registers on NVIDIA, so it holds fewer.
const (
	linearPreload = 4
	qkvPreload    = 2
)

// loadOf is the load function of an optional weight ("" when absent).
func loadOf(w *ir.Weight) string {
	if w == nil {
		return ""
	}
	return weightInfo(w).Load
}

func specGLU(b *builder) ([]spec, error) {
	op := b.op
	x, wg, bg, wu, bu := op.Input("h").V, op.Input("wg").W, op.Input("bg").W, op.Input("wu").W, op.Input("bu").W
	b.args()
	b.value("x", x, false)
	b.weight("wg", wg)
	b.optionalWeight("bg", bg)
	b.weight("wu", wu)
	b.optionalWeight("bu", bu)
	b.value("out", op.Results[0], true)
	data := GLUData{Weight: weightInfo(wg), In: int(wg.Shape[1]), Out: int(wg.Shape[0]),
		BiasG: bg != nil, BiasU: bu != nil, BiasGLoad: loadOf(bg), BiasULoad: loadOf(bu)}
	desc := fmt.Sprintf("%s_%dx%d", wg.DType, wg.Shape[0], wg.Shape[1])
	out := int(wg.Shape[0])
	decode := data
	decode.RowsPerSG = decodeRows(out)
	return []spec{
		{variant: Decode, template: string(ir.OpGLU), desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 16}, grid: rowsGrid(out, sgPerTG*decode.RowsPerSG), data: &decode, upTo: fewTokens(wg.Bytes() + wu.Bytes())},
		{variant: Prefill, template: string(ir.OpGLU), desc: desc, threads: threads(tgThreads), tgmem: []int{4 * (tileTokens*8 + 2*sgPerTG*64 + 2*tileTokens*tileOut)}, grid: tiledGrid(out), data: &data},
	}, nil
}

// specNorm covers rmsnorm, layernorm and add_rmsnorm.
func specNorm(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	data := &NormData{}
	var n *ir.Op
	var w, bias *ir.Weight
	switch op.Kind {
	case ir.OpAddRMSNorm:
		n = body(op, ir.OpRMSNorm, 0)
		b.value("a", op.Input("a").V, false)
		b.value("b", op.Input("b").V, false)
		w = op.Input("norm").W
		b.weight("w", w)
		b.value("out", op.Results[0], true)
		b.value("sum", op.Results[1], true)
		data.Add = true
	case ir.OpRMSNorm:
		n = op
		b.value("x", op.Input("x").V, false)
		w = op.Input("w").W
		b.weight("w", w)
		b.value("out", op.Results[0], true)
	case ir.OpLayerNorm:
		n = op
		b.value("x", op.Input("x").V, false)
		w, bias = op.Input("w").W, op.Input("b").W
		b.weight("w", w)
		if bias != nil {
			b.weight("bias", bias)
			data.Bias, data.BLoad = true, loadOf(bias)
		}
		b.value("out", op.Results[0], true)
		data.Layer = true
	}
	data.N = int(op.Results[0].Type.Shape.Last())
	data.G = int(w.Shape[0])
	data.Eps = hexFloat(float32(n.Attrs.Float("eps")))
	if off, ok := n.Attrs.Get("offset"); ok {
		data.Offset = hexFloat(float32(off.(float64)))
	}
	data.WLoad = weightInfo(w).Load
	if !data.Layer && data.G == data.N && heldPer(data.N) <= normMaxHeld {
		h := heldNorm(n, w, data.N, data.Add, "w")
		data.Held = &h
	}
	desc := fmt.Sprintf("%s_%d", w.DType, data.N)
	return []spec{{variant: Any, template: "norm", desc: desc, threads: threads(wideThreads), tgmem: []int{4 * wideSG}, grid: tokensGrid(), data: data}}, nil
}

// normMaxHeld is the most values of a row a norm kernel's thread holds in
// registers (a row of 8,192 at wideThreads threads).
const normMaxHeld = 8

// heldPer is how many values of a row of n each of wideThreads threads
// holds.
func heldPer(n int) int { return (n + wideThreads - 1) / wideThreads }

// heldNorm describes RMS norm n (weight w, parameter wname) of rows of
// length values, held in registers by wideThreads threads.
func heldNorm(n *ir.Op, w *ir.Weight, length int, add bool, wname string) HeldNorm {
	return HeldNorm{N: length, G: int(w.Shape[0]), Per: heldPer(length), Add: add, W: wname, WLoad: weightInfo(w).Load,
		Eps: hexFloat(float32(n.Attrs.Float("eps"))), Offset: hexFloat(float32(n.Attrs.Float("offset")))}
}

// kvData describes a layer's cache for the kvcache templates.
func kvData(c *Context, cache int) KVData {
	l := c.KV.Layer(cache)
	return KVData{Format: string(c.KV.Format), D: int(l.HeadDim), VD: int(l.VDim), MaxGroups: int(max(l.HeadDim, l.VDim)/32 + 1),
		RotK: c.KV.Format.Rotated(l.HeadDim), RotV: c.KV.Format.Rotated(l.VDim)}
}

func specQKV(b *builder) ([]spec, error) {
	op := b.op
	norm := body(op, ir.OpRMSNorm, 0)
	ropeQ, ropeK := body(op, ir.OpRope, 0), body(op, ir.OpRope, 1)
	store := body(op, ir.OpCacheKV, 0)
	b.args()
	x := op.Input("x").V
	b.value("x", x, false)
	data := &QKVData{Norm: norm != nil}
	if norm != nil {
		w := op.Input("norm").W
		b.weight("norm", w)
		data.NormW = weightInfo(w)
		data.Eps = hexFloat(float32(norm.Attrs.Float("eps")))
		data.Offset = hexFloat(float32(norm.Attrs.Float("offset")))
	}
	wq, bq, wk, bk, wv, bv := op.Input("wq").W, op.Input("bq").W, op.Input("wk").W, op.Input("bk").W, op.Input("wv").W, op.Input("bv").W
	for _, w := range []*ir.Weight{bq, bk, bv} {
		if w != nil {
			data.BiasLoad = weightInfo(w).Load
		}
	}
	b.weight("wq", wq)
	b.optionalWeight("bq", bq)
	b.weight("wk", wk)
	b.optionalWeight("bk", bk)
	b.weight("wv", wv)
	b.optionalWeight("bv", bv)
	b.value("q", op.Results[0], true)
	cache := int(store.Attrs.Int("cache"))
	b.kv(cache, true)
	l := b.ctx.KV.Layer(cache)
	invQ, scaleQ := ir.RopeFrequencies(ropeQ.Attrs)
	invK, scaleK := ir.RopeFrequencies(ropeK.Attrs)
	hd, vd := int(l.HeadDim), int(l.VDim)
	qh := int(wq.Shape[0]) / hd
	data.KV = kvData(b.ctx, cache)
	data.In, data.HD, data.VD, data.QH, data.KVH = int(wq.Shape[1]), hd, vd, qh, int(l.KVHeads)
	data.W = weightInfo(wq)
	// The vector path reads the norm weight four at a time too.
	data.W.Vec = data.W.Vec && (norm == nil || data.NormW.Vec)
	data.BiasQ, data.BiasK, data.BiasV = bq != nil, bk != nil, bv != nil
	data.InvQ, data.InvK, data.HalfQ, data.HalfK = invQ, invK, len(invQ), len(invK)
	data.ScaleQ, data.ScaleK = hexFloat(scaleQ), hexFloat(scaleK)
	data.Ring, data.Capacity = l.Ring, int(l.Capacity)
	data.KRow, data.VRow = int(b.ctx.KV.Format.RowBytes(l.HeadDim)), int(b.ctx.KV.Format.RowBytes(l.VDim))
	data.Preload = qkvPreload
	desc := fmt.Sprintf("%s_h%d_q%d_kv%d_%s", wq.DType, wq.Shape[1], qh, l.KVHeads, b.ctx.KV.Format)
	grid := Grid{{Const: qh + 2*int(l.KVHeads)}, {PerTile: 1, Tile: 1}, {Const: 1}}
	return []spec{{variant: Any, template: "qkv", desc: desc, threads: threads(wideThreads), tgmem: []int{4 * (wideSG + 512)}, grid: grid, data: data}}, nil
}

func specAttend(b *builder) ([]spec, error) {
	op := b.op
	a := op.Attrs
	cache := int(a.Int("cache"))
	l := b.ctx.KV.Layer(cache)
	b.args()
	b.value("q", op.Input("q").V, false)
	sinks := op.Input("sinks").W
	b.optionalWeight("sinks", sinks)
	b.kv(cache, false)
	b.value("out", op.Results[0], true)
	format := b.ctx.KV.Format
	d, vd := int(a.Int("head_dim")), int(ir.VHeadDim(a))
	kv := kvData(b.ctx, cache)
	kv.Lanes = attendLanes(d, vd)
	data := &AttendData{
		KV: kv, D: d, VD: vd, KVH: int(a.Int("kv_heads")), Heads: int(a.Int("heads")),
		Group: int(a.Int("heads") / a.Int("kv_heads")), Window: int(a.Int("window")),
		Scale: hexFloat(float32(a.Float("scale"))), Ring: l.Ring, Capacity: int(l.Capacity),
		KRow: int(format.RowBytes(int64(d))), VRow: int(format.RowBytes(int64(vd))),
		Sinks: sinks != nil, SinkLoad: loadOf(sinks),
	}
	if sc := a.Float("softcap"); sc > 0 {
		data.Softcap = hexFloat(float32(sc))
	}
	desc := fmt.Sprintf("h%d_kv%d_d%d_w%d_%s", a.Int("heads"), a.Int("kv_heads"), d, a.Int("window"), format)
	if sinks != nil {
		desc += "_sinks"
	}
	// One threadgroup per (head, token) is few threadgroups in decode (64
	// for gpt-oss-20b, fewer than an H200's 132 SMs), so each one must
	// keep many rows in flight: attention takes 16 SIMD-groups, and each
	// SIMD-group step issues attendUnroll rounds of row loads at once
	// (rounds of 32/G positions) and rescales its accumulator once for
	// them. A step is a chain of dependent latencies (key load, dot,
	// shuffles, exp, value load), so unrolling divides the number of
	// chains; the profile on the H200 (docs/gpu.md) showed the kernel
	// latency-bound, at 2% of the bandwidth, with one round per step.
	// Each lane holds only its part of the query and accumulator plus U
	// rows' parts in flight (S floats of an f32 key row each, at most 64
	// registers for gpt-oss's G = 8), so 16 SIMD-groups keep within the
	// registers; 32 would cap a thread at 64 registers on NVIDIA.
	const attendSG, attendUnroll = 16, 8
	data.Unroll = attendUnroll
	data.HeadsPerTG = 1
	tgmem := 4 * (d + attendSG*(vd+2))
	heads := int(a.Int("heads"))
	grid := Grid{{Const: heads}, {PerTile: 1, Tile: 1}, {Const: 1}}
	positions := int(l.Capacity)
	if w := int(a.Int("window")); w > 0 {
		positions = min(positions, w)
	}
	splits := attendSplits(heads, positions)
	if splits == 1 {
		return []spec{{variant: Any, template: string(ir.OpAttend), desc: desc, threads: threads(32 * attendSG), tgmem: []int{tgmem}, grid: grid, data: data}}, nil
	}
	// Decode splits the positions over splits threadgroups per head, which
	// leave partial results in scratch for attend_combine; prefill keeps
	// one threadgroup per (head, token) (it has a token's worth of them),
	// and binds the scratch it does not use, since an op's kernels share
	// their bindings.
	partials := int64(4 * heads * splits * (vd + 2))
	b.scratch("scratch", partials, true)
	split, combine := *data, *data
	split.Splits, combine.Splits = splits, splits
	// Decode's threadgroups each take attendHeadsPerTG query heads of one
	// KV head, so a cached row is read once for all of them: one head a
	// threadgroup read each row GROUP times (8 for gpt-oss-20b: 8.4 MB a
	// layer at 4K from memory, 67 MB through the L2).
	split.HeadsPerTG = gcd(data.Group, attendHeadsPerTG)
	hpt := split.HeadsPerTG
	// Each head adds U scores, S query and VS accumulator values to a
	// lane's registers; past 2 heads, fewer rounds a step keep a thread
	// within the 128 registers that 16 SIMD-groups leave it on NVIDIA.
	split.Unroll = attendUnroll * 2 / max(2, hpt)
	cb := &builder{ctx: b.ctx, op: op}
	cb.args()
	cb.optionalWeight("sinks", sinks)
	cb.scratch("scratch", partials, false)
	cb.value("out", op.Results[0], true)
	sdesc := fmt.Sprintf("%s_s%d", desc, splits)
	return []spec{
		{variant: Prefill, template: string(ir.OpAttend), desc: desc, threads: threads(32 * attendSG), tgmem: []int{tgmem}, grid: grid, data: data},
		{variant: Decode, template: string(ir.OpAttend), desc: sdesc, threads: threads(32 * attendSG), tgmem: []int{4 * hpt * (d + attendSG*(vd+2))},
			grid: Grid{{Const: heads / hpt}, {Const: 1}, {Const: splits}}, data: &split},
		{variant: Decode, template: "attend_combine", name: "attend_combine", desc: sdesc, threads: threads(32 * min((vd+31)/32, 32)), tgmem: []int{16},
			grid: Grid{{Const: heads}, {Const: 1}, {Const: 1}}, data: &combine, stage: cb},
	}, nil
}

// attendSplits is how many threadgroups of a head decode attention
// spreads a layer's positions over: enough that the grid has about
// attendGroups threadgroups (one per head left most of an H100's SMs
// idle: 64 for gpt-oss-20b), but each split at least attendMinPositions
// of the layer's most positions (its capacity, or its window), so that a
// split's loop amortises its start, its partial's write and the combine's
// launch. gpt-oss-20b (64 heads) gets 8 splits on its full layers; its
// sliding ones (a window of 128) keep the one-kernel attend: split in two
// at 64 positions each, they took 0.158 ms a token on the H100 plus 0.094
// in attend_combine, against 0.157 unsplit (docs/gpu.md).
func attendSplits(heads, positions int) int {
	const attendGroups, attendMinPositions = 512, 128
	return max(1, min(attendGroups/max(heads, 1), positions/attendMinPositions))
}

// attendHeadsPerTG is how many query heads of a KV head a split decode
// threadgroup attends for, at most (gcd with the group).
const attendHeadsPerTG = 4

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// attendLanes is how many lanes of a SIMD-group read one cached row of
// head_dim d (value dim vd) together: the largest power of two up to 32
// that divides both and leaves each lane at least 8 values. Lanes reading
// consecutive parts of a row make the SIMD-group's loads contiguous (a
// lane per row touched 32 cache lines per load, which bounded attention by
// the L1's throughput on the H200, docs/gpu.md), and each lane holds only
// d/G query and vd/G accumulator values.
func attendLanes(d, vd int) int {
	g := 1
	for g < 32 && d%(2*g) == 0 && vd%(2*g) == 0 && d/(2*g) >= 8 && vd/(2*g) >= 8 {
		g *= 2
	}
	return g
}

func specRouter(b *builder) ([]spec, error) {
	op := b.op
	w, bias := op.Input("w").W, op.Input("b").W
	b.args()
	b.value("x", op.Input("x").V, false)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	b.value("routes", op.Results[0], true)
	data := routerData(op, w, bias)
	desc := fmt.Sprintf("%s_e%d_k%d", w.DType, data.E, data.K)
	return []spec{{variant: Any, template: string(ir.OpRouter), desc: desc, threads: threads(wideThreads), tgmem: []int{4 * max(data.E, wideSG)}, grid: tokensGrid(), data: data}}, nil
}

// specNormRouter covers add_rmsnorm_router: add_rmsnorm's held norm,
// then the router over the normalised row, one threadgroup a token.
func specNormRouter(b *builder) ([]spec, error) {
	op := b.op
	norm, w, bias := op.Input("norm").W, op.Input("w").W, op.Input("bias").W
	b.args()
	b.value("a", op.Input("a").V, false)
	b.value("b", op.Input("b").V, false)
	b.weight("normw", norm)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	b.value("routes", op.Results[0], true)
	b.value("out", op.Results[1], true)
	b.value("sum", op.Results[2], true)
	data := routerData(op, w, bias)
	data.Norm = heldNorm(body(op, ir.OpRMSNorm, 0), norm, data.In, true, "normw")
	desc := fmt.Sprintf("%s_%s_e%d_k%d", norm.DType, w.DType, data.E, data.K)
	whole := spec{template: string(ir.OpAddRMSNormRouter), desc: desc, threads: threads(wideThreads), tgmem: []int{4 * max(data.E, wideSG)}, grid: tokensGrid(), data: data}
	if data.Norm.G != data.In {
		// A grouped norm keeps the one-kernel router in decode too.
		whole.variant = Any
		return []spec{whole}, nil
	}
	// Decode: the logits over routerGroups threadgroups, then the top k
	// (templates/router.metal.tmpl says why). Prefill has a threadgroup
	// per token already, and keeps the one kernel; it binds the logits'
	// scratch it does not use, since an op's kernels share their bindings.
	whole.variant = Prefill
	logitBytes := int64(4 * data.E)
	b.scratch("scores", logitBytes, true)
	split := *data
	split.PerGroup = (data.E + routerGroups - 1) / routerGroups
	groups := (data.E + split.PerGroup - 1) / split.PerGroup
	tb := &builder{ctx: b.ctx, op: op}
	tb.args()
	tb.scratch("scores", logitBytes, false)
	tb.value("routes", op.Results[0], true)
	return []spec{
		whole,
		{variant: Decode, template: "add_rmsnorm_logits", desc: fmt.Sprintf("%s_g%d", desc, groups), threads: threads(wideThreads),
			tgmem: []int{4 * ((split.PerGroup+1)*wideSG + split.PerGroup + 1)}, grid: Grid{{Const: groups}, {Const: 1}, {Const: 1}}, data: &split},
		{variant: Decode, template: "router_topk", name: "router_topk", desc: desc, threads: threads(32), tgmem: []int{16},
			grid: Grid{{Const: 1}, {Const: 1}, {Const: 1}}, data: &split, stage: tb},
	}, nil
}

// routerGroups is about how many threadgroups decode's router logits
// spread over: one expert each for gpt-oss-20b's 32.
const routerGroups = 32

// routerData describes a router op's logits (weight w, bias) and top k.
func routerData(op *ir.Op, w, bias *ir.Weight) *RouterData {
	return &RouterData{In: int(w.Shape[1]), E: int(w.Shape[0]), K: int(body(op, ir.OpTopK, 0).Attrs.Int("k")),
		W: weightInfo(w), Bias: bias != nil, BiasLoad: loadOf(bias)}
}

// specExpertUp covers expert_linear and moe_gate_up (expert_linear +
// swiglu).
func specExpertUp(b *builder) ([]spec, error) {
	op := b.op
	el := body(op, ir.OpExpertLinear, 0)
	sw := body(op, ir.OpSwiGLU, 0)
	x, routes, w, bias := op.Input("x").V, op.Input("routes").V, op.Input("w").W, op.Input("b").W
	b.args()
	b.value("x", x, false)
	b.value("routes", routes, false)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	b.value("out", op.Results[0], true)
	k := int(el.Results[0].Type.Shape[1])
	rows := int(w.Shape[1])
	outsPerSG := expertRows
	// With SwiGLU, a SIMD-group computes expertRows outputs, each from a
	// gate and an up row: 2 x expertRows rows in one pass. Eight rows took
	// 0.771 ms a token on the H100 where four took 0.807 and sixteen
	// 1.568 (gpt-oss-20b, docs/gpu.md).
	data := &ExpertUpData{Weight: weightInfo(w), In: int(w.Shape[2]), Rows: rows, K: k, OutW: rows,
		Shared: len(x.Type.Shape) == 2, Bias: bias != nil, BiasLoad: loadOf(bias), RowsPerSG: outsPerSG, SwiGLU: sw != nil}
	if sw != nil {
		a := sw.Attrs
		data.OutW = rows / 2
		data.Interleaved = a.String("layout") == "interleaved"
		if l := a.Float("limit"); l > 0 {
			data.Limit = hexFloat(float32(l))
		}
		data.Alpha = hexFloat(float32(a.Float("alpha")))
		data.UpOffset = hexFloat(float32(a.Float("up_offset")))
	}
	data.Exact = data.OutW%outsPerSG == 0
	desc := fmt.Sprintf("%s_e%d_%dx%d_k%d", w.DType, w.Shape[0], w.Shape[1], w.Shape[2], k)
	perTG := sgPerTG * outsPerSG
	grid := Grid{{Const: (data.OutW + perTG - 1) / perTG}, {PerTile: k, Tile: 1}, {Const: 1}}
	return []spec{{variant: Any, template: "expert_up", desc: desc, threads: threads(tgThreads), tgmem: []int{16}, grid: grid, data: data}}, nil
}

// specExpertDown covers moe_down (expert_linear + mix + residual add).
func specExpertDown(b *builder) ([]spec, error) {
	op := b.op
	residual, y, routes, w, bias := op.Input("residual").V, op.Input("y").V, op.Input("routes").V, op.Input("w").W, op.Input("b").W
	b.args()
	b.value("residual", residual, false)
	b.value("y", y, false)
	b.value("routes", routes, false)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	b.value("out", op.Results[0], true)
	k := int(routes.Type.Shape[1])
	data := &ExpertDownData{Weight: weightInfo(w), In: int(w.Shape[2]), Rows: int(w.Shape[1]), K: k,
		Bias: bias != nil, BiasLoad: loadOf(bias), RowsPerSG: expertRows}
	desc := fmt.Sprintf("%s_e%d_%dx%d_k%d", w.DType, w.Shape[0], w.Shape[1], w.Shape[2], k)
	// A SIMD-group per route (up to wideSG), each over the threadgroup's
	// expertRows rows.
	sgs := min(k, wideSG)
	return []spec{{variant: Any, template: "expert_down", desc: desc, threads: threads(32 * sgs), tgmem: []int{max(16, 4*sgs*expertRows)}, grid: rowsGrid(int(w.Shape[1]), expertRows), data: data}}, nil
}

func specRope(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	b.value("x", op.Args[0].V, false)
	b.value("out", op.Results[0], true)
	inv, scale := ir.RopeFrequencies(op.Attrs)
	n := int(op.Results[0].Type.Shape.Last())
	data := &RopeData{N: n, HD: int(op.Attrs.Int("head_dim")), Half: len(inv), Inv: inv, Scale: hexFloat(scale)}
	return []spec{{variant: Any, template: string(ir.OpRope), desc: fmt.Sprintf("n%d_hd%d", n, op.Attrs.Int("head_dim")), threads: threads(tgThreads), tgmem: []int{16}, grid: tokensGrid(), data: data}}, nil
}

func specCacheKV(b *builder) ([]spec, error) {
	op := b.op
	a := op.Attrs
	cache := int(a.Int("cache"))
	l := b.ctx.KV.Layer(cache)
	b.args()
	b.value("q", op.Input("q").V, false)
	b.value("k", op.Input("k").V, false)
	b.value("v", op.Input("v").V, false)
	b.value("qout", op.Results[0], true)
	b.kv(cache, true)
	format := b.ctx.KV.Format
	data := &CacheKVData{KV: kvData(b.ctx, cache), HD: int(l.HeadDim), VD: int(l.VDim), KVH: int(l.KVHeads),
		Ring: l.Ring, Capacity: int(l.Capacity), KRow: int(format.RowBytes(l.HeadDim)), VRow: int(format.RowBytes(l.VDim)),
		QN: int(op.Input("q").V.Type.Shape.Last())}
	grid := Grid{{Const: int(l.KVHeads)}, {PerTile: 1, Tile: 1}, {Const: 1}}
	desc := fmt.Sprintf("kv%d_d%d_%s", l.KVHeads, l.HeadDim, format)
	return []spec{{variant: Any, template: string(ir.OpCacheKV), desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 512}, grid: grid, data: data}}, nil
}

// specRows covers topk and softmax (over rows or routes): each has a
// template of its name.
func specRows(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	x := op.Args[0].V
	b.value("x", x, false)
	b.value("out", op.Results[0], true)
	n := int(x.Type.Shape.Last())
	data := &RowsData{N: n}
	if op.Kind == ir.OpTopK {
		data.K = int(op.Attrs.Int("k"))
	} else {
		data.Routes = x.Type.DType == ir.Route
	}
	return []spec{{variant: Any, template: string(op.Kind), desc: fmt.Sprintf("n%d", n), threads: threads(tgThreads), tgmem: []int{4 * sgPerTG}, grid: tokensGrid(), data: data}}, nil
}

var unaryExpr = map[ir.OpKind]string{
	ir.OpSiLU:     "silu(v)",
	ir.OpSigmoid:  "sigmoid(v)",
	ir.OpTanh:     "tanh(v)",
	ir.OpReLU:     "max(v, 0.0f)",
	ir.OpExp:      "exp(v)",
	ir.OpGELU:     "0.5f * v * (1.0f + erf_nr(v * 0.70710678118654752f))",
	ir.OpGELUTanh: "0.5f * v * (1.0f + tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)))",
}

var binarySymbol = map[ir.OpKind]string{ir.OpAdd: "+", ir.OpSub: "-", ir.OpMul: "*", ir.OpDiv: "/"}

// specElementwise covers swiglu, mix, the binary ops, affine and the
// activations: one threadgroup per token.
func specElementwise(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	data := &ElementwiseData{Op: string(op.Kind), N: int(op.Results[0].Type.Shape.RowElems())}
	desc := ""
	switch op.Kind {
	case ir.OpSwiGLU:
		b.value("x", op.Args[0].V, false)
		a := op.Attrs
		data.Half = int(op.Results[0].Type.Shape.Last())
		data.Interleaved = a.String("layout") == "interleaved"
		if l := a.Float("limit"); l > 0 {
			data.Limit = hexFloat(float32(l))
		}
		data.Alpha = hexFloat(float32(a.Float("alpha")))
		data.UpOffset = hexFloat(float32(a.Float("up_offset")))
	case ir.OpMix:
		b.value("y", op.Args[0].V, false)
		b.value("routes", op.Args[1].V, false)
		data.K = int(op.Args[1].V.Type.Shape[1])
	case ir.OpAdd, ir.OpSub, ir.OpMul, ir.OpDiv:
		b.value("a", op.Args[0].V, false)
		data.Binary, data.Symbol = true, binarySymbol[op.Kind]
		if w := op.Args[1].W; w != nil {
			b.weight("b", w)
			data.Broadcast, data.BLoad = true, loadOf(w)
			desc = "bcast"
		} else {
			b.value("b", op.Args[1].V, false)
		}
	case ir.OpNarrow:
		b.value("x", op.Args[0].V, false)
		data.InN, data.Start = int(op.Args[0].V.Type.Shape.RowElems()), int(op.Attrs.Int("start"))
		desc = fmt.Sprintf("from%d_of%d", data.Start, data.InN)
	case ir.OpAffine:
		b.value("x", op.Args[0].V, false)
		data.Expr = fmt.Sprintf("v * %sf + %sf", hexFloat(float32(op.Attrs.Float("mul"))), hexFloat(float32(op.Attrs.Float("add"))))
	default:
		b.value("x", op.Args[0].V, false)
		data.Expr = unaryExpr[op.Kind]
	}
	b.value("out", op.Results[0], true)
	desc = fmt.Sprintf("%s_n%d", desc, data.N)
	return []spec{{variant: Any, template: "elementwise", desc: desc, threads: threads(tgThreads), tgmem: []int{16}, grid: tokensGrid(), data: data}}, nil
}
