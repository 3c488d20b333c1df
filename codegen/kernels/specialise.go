package kernels

import (
	"fmt"

	"github.com/minerva-ml/minerva/compiler/ir"
)

// Threadgroup shapes. Matrix-vector kernels give each of four SIMD-groups
// rowsPerSG output rows; tiled kernels give each SIMD-group an 8x8 tile.
const (
	sgPerTG   = 4
	rowsPerSG = 2
	tgThreads = 32 * sgPerTG
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

// weightInfo describes how a template reads a weight: one element
// (Load) or four (Load4, from a WType4 vector).
func weightInfo(w *ir.Weight) map[string]any {
	load := map[ir.DType]string{ir.BF16: "bf16f", ir.F16: "f16f", ir.F32: ""}[w.DType]
	load4 := map[ir.DType]string{ir.BF16: "bf16f4", ir.F16: "f16f4", ir.F32: ""}[w.DType]
	wtype := "ushort"
	if w.DType == ir.F32 {
		wtype = "float"
	}
	cols := int(w.Shape.Last())
	return map[string]any{"DType": w.DType.String(), "Load": load, "Load4": load4, "WType": wtype, "Cols": cols,
		"MXFP4": w.DType == ir.MXFP4, "Vec": w.DType != ir.MXFP4 && cols%4 == 0}
}

// VectorAlignment is the alignment kernels need of a weight tensor's
// data: its element's size (vector loads use packed vectors).
func VectorAlignment(dtype string) int {
	if dtype == "f32" {
		return 4
	}
	return 2
}

// specialisers maps every op kind the optimiser can emit to its
// specialiser; a test checks that no registered op is missing.
var specialisers = map[string]func(*builder) ([]spec, error){
	"embedding": specEmbedding,
	"linear":    specLinear, "linear_add": specLinear, "rmsnorm_linear": specLinear,
	"glu":            specGLU,
	"qkv_rope_store": specQKV,
	"attend":         specAttend,
	"add_rmsnorm":    specNorm, "rmsnorm": specNorm, "layernorm": specNorm,
	"router":      specRouter,
	"moe_gate_up": specExpertUp, "expert_linear": specExpertUp,
	"moe_down": specExpertDown,
	"rope":     specRope,
	"cache_kv": specCacheKV,
	"topk":     specRows, "softmax": specRows,
}

func init() {
	for _, k := range []string{"swiglu", "mix", "add", "sub", "mul", "div", "affine", "silu", "gelu", "gelu_tanh", "sigmoid", "tanh", "relu", "exp"} {
		specialisers[k] = specElementwise
	}
}

// Supported reports whether an op kind has a Metal template.
func Supported(kind string) bool { return specialisers[kind] != nil }

// specialise dispatches on the op kind.
func specialise(b *builder) ([]spec, error) {
	if f := specialisers[b.op.Kind]; f != nil {
		return f(b)
	}
	return nil, fmt.Errorf("BUG: no Metal template for op %s", b.op.Kind)
}

// body finds the n-th op of a kind in a fused op's body (the op itself
// when it is not fused).
func body(op *ir.Op, kind string, n int) *ir.Op {
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
	data := weightInfo(w)
	return []spec{{variant: Any, template: "embedding", desc: w.DType.String(), threads: threads(tgThreads), tgmem: []int{16}, grid: tokensGrid(), data: data}}, nil
}

// specLinear covers linear, linear_add (a residual added in the epilogue)
// and rmsnorm_linear (an RMS norm as the prologue).
func specLinear(b *builder) ([]spec, error) {
	op := b.op
	var x, residual *ir.Value
	var w, bias, normW *ir.Weight
	norm := body(op, "rmsnorm", 0)
	switch op.Kind {
	case "linear":
		x, w, bias = op.Args[0].V, op.Args[1].W, op.Args[2].W
	case "linear_add":
		residual, x, w, bias = op.Args[0].V, op.Args[1].V, op.Args[2].W, op.Args[3].W
	case "rmsnorm_linear":
		x, normW, w, bias = op.Args[0].V, op.Args[1].W, op.Args[2].W, op.Args[3].W
	}
	if normW != nil && normW.Shape[0] != x.Type.Shape.Last() {
		return nil, fmt.Errorf("a grouped norm as a matmul prologue is not supported")
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
	data := weightInfo(w)
	data["In"] = int(w.Shape[1])
	data["Out"] = int(w.Shape[0])
	data["Bias"] = bias != nil
	if bias != nil {
		data["BiasLoad"] = weightInfo(bias)["Load"]
	}
	data["Residual"] = residual != nil
	data["Norm"] = normW != nil
	if norm != nil {
		data["Eps"] = hexFloat(float32(norm.Attrs.Float("eps")))
		data["Offset"] = hexFloat(float32(norm.Attrs.Float("offset")))
		ni := weightInfo(normW)
		data["NormLoad"], data["NormLoad4"], data["NormWType"] = ni["Load"], ni["Load4"], ni["WType"]
	}
	desc := fmt.Sprintf("%s_%dx%d", w.DType, w.Shape[0], w.Shape[1])
	out := int(w.Shape[0])
	return []spec{
		{variant: Decode, template: "linear", desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 64}, grid: rowsGrid(out, sgPerTG*rowsPerSG), data: with(data, "RowsPerSG", rowsPerSG)},
		{variant: Prefill, template: "linear", desc: desc, threads: threads(tgThreads), tgmem: []int{4 * (tileTokens*8 + sgPerTG*64 + tileTokens*tileOut + tileTokens)}, grid: tiledGrid(out), data: data},
	}, nil
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

func specGLU(b *builder) ([]spec, error) {
	op := b.op
	x, wg, bg, wu, bu := op.Args[0].V, op.Args[1].W, op.Args[2].W, op.Args[3].W, op.Args[4].W
	if wg.DType != wu.DType {
		return nil, fmt.Errorf("gate and up weights of different dtypes")
	}
	b.args()
	b.value("x", x, false)
	b.weight("wg", wg)
	b.optionalWeight("bg", bg)
	b.weight("wu", wu)
	b.optionalWeight("bu", bu)
	b.value("out", op.Results[0], true)
	data := weightInfo(wg)
	data["In"] = int(wg.Shape[1])
	data["Out"] = int(wg.Shape[0])
	data["BiasG"], data["BiasU"] = bg != nil, bu != nil
	if bg != nil {
		data["BiasGLoad"] = weightInfo(bg)["Load"]
	}
	if bu != nil {
		data["BiasULoad"] = weightInfo(bu)["Load"]
	}
	desc := fmt.Sprintf("%s_%dx%d", wg.DType, wg.Shape[0], wg.Shape[1])
	out := int(wg.Shape[0])
	return []spec{
		{variant: Decode, template: "glu", desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 16}, grid: rowsGrid(out, sgPerTG*rowsPerSG), data: with(data, "RowsPerSG", rowsPerSG)},
		{variant: Prefill, template: "glu", desc: desc, threads: threads(tgThreads), tgmem: []int{4 * (tileTokens*8 + 2*sgPerTG*64 + 2*tileTokens*tileOut)}, grid: tiledGrid(out), data: data},
	}, nil
}

// specNorm covers rmsnorm, layernorm and add_rmsnorm.
func specNorm(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	data := map[string]any{}
	var n *ir.Op
	var w, bias *ir.Weight
	switch op.Kind {
	case "add_rmsnorm":
		n = body(op, "rmsnorm", 0)
		b.value("a", op.Args[0].V, false)
		b.value("b", op.Args[1].V, false)
		w = op.Args[2].W
		b.weight("w", w)
		b.value("out", op.Results[0], true)
		b.value("sum", op.Results[1], true)
		data["Add"] = true
	case "rmsnorm":
		n = op
		b.value("x", op.Args[0].V, false)
		w = op.Args[1].W
		b.weight("w", w)
		b.value("out", op.Results[0], true)
	case "layernorm":
		n = op
		b.value("x", op.Args[0].V, false)
		w, bias = op.Args[1].W, op.Args[2].W
		b.weight("w", w)
		if bias != nil {
			b.weight("bias", bias)
			data["Bias"] = true
			data["BLoad"] = weightInfo(bias)["Load"]
		}
		b.value("out", op.Results[0], true)
		data["Layer"] = true
	}
	data["N"] = int(op.Results[0].Type.Shape.Last())
	data["G"] = int(w.Shape[0])
	data["Eps"] = hexFloat(float32(n.Attrs.Float("eps")))
	if off, ok := n.Attrs.Get("offset"); ok {
		data["Offset"] = hexFloat(float32(off.(float64)))
	}
	data["WLoad"] = weightInfo(w)["Load"]
	desc := fmt.Sprintf("%s_%d", w.DType, data["N"])
	return []spec{{variant: Any, template: "norm", desc: desc, threads: threads(wideThreads), tgmem: []int{4 * wideSG}, grid: tokensGrid(), data: data}}, nil
}

// kvData describes a layer's cache for the kvcache templates.
func kvData(c *Context, cache int) (map[string]any, error) {
	l := c.KV.Layer(cache)
	d := map[string]any{
		"Format":    string(c.KV.Format),
		"D":         int(l.HeadDim),
		"VD":        int(l.VDim),
		"MaxGroups": int(max(l.HeadDim, l.VDim)/32 + 1),
	}
	return d, nil
}

func specQKV(b *builder) ([]spec, error) {
	op := b.op
	norm := body(op, "rmsnorm", 0)
	ropeQ, ropeK := body(op, "rope", 0), body(op, "rope", 1)
	store := body(op, "cache_kv", 0)
	i := 1
	b.args()
	b.value("x", op.Args[0].V, false)
	data := map[string]any{"Norm": norm != nil}
	if norm != nil {
		w := op.Args[1].W
		if w.Shape[0] != op.Args[0].V.Type.Shape.Last() {
			return nil, fmt.Errorf("a grouped norm as a prologue is not supported")
		}
		b.weight("norm", w)
		data["NormLoad"] = weightInfo(w)["Load"]
		data["Eps"] = hexFloat(float32(norm.Attrs.Float("eps")))
		data["Offset"] = hexFloat(float32(norm.Attrs.Float("offset")))
		i = 2
	}
	wq, bq, wk, bk, wv, bv := op.Args[i].W, op.Args[i+1].W, op.Args[i+2].W, op.Args[i+3].W, op.Args[i+4].W, op.Args[i+5].W
	if wq.DType != wk.DType || wq.DType != wv.DType || wq.DType == ir.MXFP4 {
		return nil, fmt.Errorf("q, k and v weights must share a dense dtype")
	}
	for _, w := range []*ir.Weight{bq, bk, bv} {
		if w != nil {
			data["BiasLoad"] = weightInfo(w)["Load"]
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
	b.kv(cache)
	l := b.ctx.KV.Layer(cache)
	kv, err := kvData(b.ctx, cache)
	if err != nil {
		return nil, err
	}
	invQ, scaleQ := ir.RopeFrequencies(ropeQ.Attrs)
	invK, scaleK := ir.RopeFrequencies(ropeK.Attrs)
	hd, vd := int(l.HeadDim), int(l.VDim)
	if hd > 256 || vd > 256 {
		return nil, fmt.Errorf("heads wider than 256 are not supported")
	}
	qh := int(wq.Shape[0]) / hd
	for k, v := range map[string]any{
		"KV": kv, "In": int(wq.Shape[1]), "HD": hd, "VD": vd, "QH": qh, "KVH": int(l.KVHeads),
		"Load": weightInfo(wq)["Load"], "BiasQ": bq != nil, "BiasK": bk != nil, "BiasV": bv != nil,
		"InvQ": invQ, "InvK": invK, "HalfQ": len(invQ), "HalfK": len(invK),
		"ScaleQ": hexFloat(scaleQ), "ScaleK": hexFloat(scaleK),
		"Ring": l.Ring, "Capacity": int(l.Capacity),
		"KRow": int(b.ctx.KV.Format.RowBytes(l.HeadDim)), "VRow": int(b.ctx.KV.Format.RowBytes(l.VDim)),
	} {
		data[k] = v
	}
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
	b.value("q", op.Args[0].V, false)
	sinks := op.Args[1].W
	b.optionalWeight("sinks", sinks)
	b.kv(cache)
	b.value("out", op.Results[0], true)
	kv, err := kvData(b.ctx, cache)
	if err != nil {
		return nil, err
	}
	format := b.ctx.KV.Format
	d, vd := int(a.Int("head_dim")), int(a.Int("v_head_dim"))
	data := map[string]any{
		"KV": kv, "D": d, "VD": vd, "KVH": int(a.Int("kv_heads")), "Heads": int(a.Int("heads")),
		"Group": int(a.Int("heads") / a.Int("kv_heads")), "Window": int(a.Int("window")),
		"Scale": hexFloat(float32(a.Float("scale"))), "Ring": l.Ring, "Capacity": int(l.Capacity),
		"KRow": int(format.RowBytes(int64(d))), "VRow": int(format.RowBytes(int64(vd))),
		"Sinks": sinks != nil,
		"RotK":  format == "q4" || (format == "q8" && d%32 == 0),
		"RotV":  format == "q4" || (format == "q8" && vd%32 == 0),
	}
	if sc := a.Float("softcap"); sc > 0 {
		data["Softcap"] = hexFloat(float32(sc))
	}
	if sinks != nil {
		data["SinkLoad"] = weightInfo(sinks)["Load"]
	}
	desc := fmt.Sprintf("h%d_kv%d_d%d_w%d_%s", a.Int("heads"), a.Int("kv_heads"), d, a.Int("window"), format)
	if sinks != nil {
		desc += "_sinks"
	}
	// One threadgroup per (head, token) is few threadgroups in decode, so
	// attention takes 8 SIMD-groups; each lane keeps the query and a
	// head's accumulator in registers, which bounds the threadgroup.
	const attendSG = 8
	tgmem := 4 * (d + attendSG*(vd+2))
	grid := Grid{{Const: int(a.Int("heads"))}, {PerTile: 1, Tile: 1}, {Const: 1}}
	return []spec{{variant: Any, template: "attend", desc: desc, threads: threads(32 * attendSG), tgmem: []int{tgmem}, grid: grid, data: data}}, nil
}

func specRouter(b *builder) ([]spec, error) {
	op := b.op
	lin := body(op, "linear", 0)
	top := body(op, "topk", 0)
	w, bias := op.Args[1].W, op.Args[2].W
	if w.DType == ir.MXFP4 {
		return nil, fmt.Errorf("an MXFP4 router is not supported")
	}
	_ = lin
	b.args()
	b.value("x", op.Args[0].V, false)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	b.value("routes", op.Results[0], true)
	data := map[string]any{"In": int(w.Shape[1]), "E": int(w.Shape[0]), "K": int(top.Attrs.Int("k")),
		"Load": weightInfo(w)["Load"], "Bias": bias != nil}
	if bias != nil {
		data["BiasLoad"] = weightInfo(bias)["Load"]
	}
	desc := fmt.Sprintf("%s_e%d_k%d", w.DType, w.Shape[0], top.Attrs.Int("k"))
	return []spec{{variant: Any, template: "router", desc: desc, threads: threads(wideThreads), tgmem: []int{4 * max(int(w.Shape[0]), wideSG)}, grid: tokensGrid(), data: data}}, nil
}

// specExpertUp covers expert_linear and moe_gate_up (expert_linear +
// swiglu).
func specExpertUp(b *builder) ([]spec, error) {
	op := b.op
	el := body(op, "expert_linear", 0)
	sw := body(op, "swiglu", 0)
	x, routes, w, bias := op.Args[0].V, op.Args[1].V, op.Args[2].W, op.Args[3].W
	b.args()
	b.value("x", x, false)
	b.value("routes", routes, false)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	b.value("out", op.Results[0], true)
	k := int(el.Results[0].Type.Shape[1])
	rows := int(w.Shape[1])
	outW := rows
	data := weightInfo(w)
	for kk, v := range map[string]any{
		"In": int(w.Shape[2]), "Rows": rows, "K": k, "Shared": len(x.Type.Shape) == 2,
		"Bias": bias != nil, "RowsPerSG": rowsPerSG, "SwiGLU": sw != nil,
	} {
		data[kk] = v
	}
	if bias != nil {
		data["BiasLoad"] = weightInfo(bias)["Load"]
	}
	if sw != nil {
		a := sw.Attrs
		outW = rows / 2
		data["Interleaved"] = a.String("layout") == "interleaved"
		if l := a.Float("limit"); l > 0 {
			data["Limit"] = hexFloat(float32(l))
		}
		data["Alpha"] = hexFloat(float32(a.Float("alpha")))
		data["UpOffset"] = hexFloat(float32(a.Float("up_offset")))
	}
	data["OutW"] = outW
	desc := fmt.Sprintf("%s_e%d_%dx%d_k%d", w.DType, w.Shape[0], w.Shape[1], w.Shape[2], k)
	grid := Grid{{Const: (outW + sgPerTG*rowsPerSG - 1) / (sgPerTG * rowsPerSG)}, {PerTile: k, Tile: 1}, {Const: 1}}
	return []spec{{variant: Any, template: "expert_up", desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 16}, grid: grid, data: data}}, nil
}

// specExpertDown covers moe_down (expert_linear + mix + residual add).
func specExpertDown(b *builder) ([]spec, error) {
	op := b.op
	residual, y, routes, w, bias := op.Args[0].V, op.Args[1].V, op.Args[2].V, op.Args[3].W, op.Args[4].W
	b.args()
	b.value("residual", residual, false)
	b.value("y", y, false)
	b.value("routes", routes, false)
	b.weight("w", w)
	b.optionalWeight("bias", bias)
	b.value("out", op.Results[0], true)
	k := int(routes.Type.Shape[1])
	data := weightInfo(w)
	for kk, v := range map[string]any{"In": int(w.Shape[2]), "Rows": int(w.Shape[1]), "K": k, "Bias": bias != nil, "RowsPerSG": rowsPerSG} {
		data[kk] = v
	}
	if bias != nil {
		data["BiasLoad"] = weightInfo(bias)["Load"]
	}
	desc := fmt.Sprintf("%s_e%d_%dx%d_k%d", w.DType, w.Shape[0], w.Shape[1], w.Shape[2], k)
	return []spec{{variant: Any, template: "expert_down", desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 16}, grid: rowsGrid(int(w.Shape[1]), sgPerTG*rowsPerSG), data: data}}, nil
}

func specRope(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	b.value("x", op.Args[0].V, false)
	b.value("out", op.Results[0], true)
	inv, scale := ir.RopeFrequencies(op.Attrs)
	n := int(op.Results[0].Type.Shape.Last())
	data := map[string]any{"N": n, "HD": int(op.Attrs.Int("head_dim")), "Half": len(inv), "Inv": inv, "Scale": hexFloat(scale)}
	return []spec{{variant: Any, template: "rope", desc: fmt.Sprintf("n%d_hd%d", n, op.Attrs.Int("head_dim")), threads: threads(tgThreads), tgmem: []int{16}, grid: tokensGrid(), data: data}}, nil
}

func specCacheKV(b *builder) ([]spec, error) {
	op := b.op
	a := op.Attrs
	cache := int(a.Int("cache"))
	l := b.ctx.KV.Layer(cache)
	b.args()
	b.value("q", op.Args[0].V, false)
	b.value("k", op.Args[1].V, false)
	b.value("v", op.Args[2].V, false)
	b.value("qout", op.Results[0], true)
	b.kv(cache)
	kv, err := kvData(b.ctx, cache)
	if err != nil {
		return nil, err
	}
	if l.HeadDim > 256 || l.VDim > 256 {
		return nil, fmt.Errorf("heads wider than 256 are not supported")
	}
	format := b.ctx.KV.Format
	data := map[string]any{"KV": kv, "HD": int(l.HeadDim), "VD": int(l.VDim), "KVH": int(l.KVHeads),
		"Ring": l.Ring, "Capacity": int(l.Capacity), "KRow": int(format.RowBytes(l.HeadDim)), "VRow": int(format.RowBytes(l.VDim)),
		"QN": int(op.Args[0].V.Type.Shape.Last())}
	grid := Grid{{Const: int(l.KVHeads)}, {PerTile: 1, Tile: 1}, {Const: 1}}
	desc := fmt.Sprintf("kv%d_d%d_%s", l.KVHeads, l.HeadDim, format)
	return []spec{{variant: Any, template: "cache_kv", desc: desc, threads: threads(tgThreads), tgmem: []int{4 * 512}, grid: grid, data: data}}, nil
}

// specRows covers topk and softmax (over rows or routes).
func specRows(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	x := op.Args[0].V
	b.value("x", x, false)
	b.value("out", op.Results[0], true)
	n := int(x.Type.Shape.Last())
	data := map[string]any{"N": n}
	tmplName := op.Kind
	if op.Kind == "topk" {
		data["K"] = int(op.Attrs.Int("k"))
	} else {
		data["Routes"] = x.Type.DType == ir.Route
	}
	return []spec{{variant: Any, template: tmplName, desc: fmt.Sprintf("n%d", n), threads: threads(tgThreads), tgmem: []int{4 * sgPerTG}, grid: tokensGrid(), data: data}}, nil
}

var unaryExpr = map[string]string{
	"silu":      "silu(v)",
	"sigmoid":   "sigmoid(v)",
	"tanh":      "tanh(v)",
	"relu":      "max(v, 0.0f)",
	"exp":       "exp(v)",
	"gelu":      "0.5f * v * (1.0f + erf_nr(v * 0.70710678118654752f))",
	"gelu_tanh": "0.5f * v * (1.0f + tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)))",
}

var binarySymbol = map[string]string{"add": "+", "sub": "-", "mul": "*", "div": "/"}

// specElementwise covers swiglu, mix, the binary ops, affine and the
// activations: one threadgroup per token.
func specElementwise(b *builder) ([]spec, error) {
	op := b.op
	b.args()
	data := map[string]any{"Op": op.Kind, "N": int(op.Results[0].Type.Shape.RowElems())}
	desc := ""
	switch op.Kind {
	case "swiglu":
		b.value("x", op.Args[0].V, false)
		a := op.Attrs
		data["Half"] = int(op.Results[0].Type.Shape.Last())
		data["Interleaved"] = a.String("layout") == "interleaved"
		if l := a.Float("limit"); l > 0 {
			data["Limit"] = hexFloat(float32(l))
		}
		data["Alpha"] = hexFloat(float32(a.Float("alpha")))
		data["UpOffset"] = hexFloat(float32(a.Float("up_offset")))
	case "mix":
		b.value("y", op.Args[0].V, false)
		b.value("routes", op.Args[1].V, false)
		data["K"] = int(op.Args[1].V.Type.Shape[1])
	case "add", "sub", "mul", "div":
		b.value("a", op.Args[0].V, false)
		data["Binary"], data["Symbol"] = true, binarySymbol[op.Kind]
		if w := op.Args[1].W; w != nil {
			b.weight("b", w)
			data["Broadcast"], data["BLoad"] = true, weightInfo(w)["Load"]
			desc = "bcast"
		} else {
			b.value("b", op.Args[1].V, false)
		}
	case "affine":
		b.value("x", op.Args[0].V, false)
		data["Expr"] = fmt.Sprintf("v * %sf + %sf", hexFloat(float32(op.Attrs.Float("mul"))), hexFloat(float32(op.Attrs.Float("add"))))
	default:
		b.value("x", op.Args[0].V, false)
		data["Expr"] = unaryExpr[op.Kind]
	}
	if op.Kind == "mix" {
		b.value("out", op.Results[0], true)
	} else {
		b.value("out", op.Results[0], true)
	}
	desc = fmt.Sprintf("%s_n%d", desc, data["N"])
	return []spec{{variant: Any, template: "elementwise", desc: desc, threads: threads(tgThreads), tgmem: []int{16}, grid: tokensGrid(), data: data}}, nil
}
