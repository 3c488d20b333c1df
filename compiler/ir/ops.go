package ir

import (
	"fmt"
	"sort"
)

// InputKind says what an op input accepts.
type InputKind uint8

const (
	TensorIn InputKind = iota // an activation
	WeightIn                  // a declared weight
	AnyIn                     // either: elementwise ops broadcast a weight vector over tokens
)

// InputDef describes one input of an op.
type InputDef struct {
	Name     string
	Kind     InputKind
	Optional bool
	// Role says what a weight operand does (WeightIn and AnyIn inputs).
	Role WeightRole
}

// AttrKind is the type of an attribute.
type AttrKind uint8

const (
	IntAttr AttrKind = iota
	FloatAttr
	BoolAttr
	StringAttr
)

func (k AttrKind) String() string {
	return [...]string{"int", "float", "bool", "string"}[k]
}

// AttrDef describes one attribute. A nil Default means the attribute is
// required.
type AttrDef struct {
	Name    string
	Kind    AttrKind
	Default any
	Enum    []string // allowed values of a string attribute
}

// Describer names an op's i-th operand in messages: the front end passes
// source expressions, the verifier the operand's printed form.
type Describer func(i int) string

// OpDef defines an op kind: its operands, attributes, type rule and the
// properties that passes and backends ask about. It is the single
// description that the front end, verifier, printer, parser, planners and
// backends share, like the Go compiler's opInfo: a property of an op lives
// here and nowhere else.
type OpDef struct {
	Name   OpKind
	Doc    string
	Inputs []InputDef
	Attrs  []AttrDef
	// Stated are attributes an .arch call may give to make an implicit
	// behaviour explicit, such as rmsnorm's group=: CheckStated checks
	// them against the op once its types are known. They change nothing
	// the op computes, so the IR does not keep them.
	Stated      []AttrDef
	CheckStated func(op *Op, stated Attrs, describe Describer) error
	// Infer computes result types from operand types and attributes, or
	// explains why they do not fit.
	Infer func(op *Op, describe Describer) ([]Type, error)
	// Commutative ops match fusion patterns with operands in either order.
	Commutative bool
	// Internal ops are made by passes; .arch files cannot call them.
	Internal bool
	// Fused ops are made by fusion rules; their operands are named by
	// Inputs, which every rule that makes the kind must bind by name (an
	// optional input a rule does not bind is absent), and their types come
	// from the body.
	Fused bool
	// Rewritten names the pass that replaces every op of this kind before
	// code generation: no backend ever sees one.
	Rewritten string
	// InPlace ops may write their result over an operand that dies at the
	// op: each output element depends only on input elements at the same
	// index (or, for rope, the same rotated pair), so one pass that reads
	// then writes each element is safe on every backend.
	InPlace bool
	// SideEffects ops write state besides their results (the KV cache), so
	// dead-code elimination must keep them. A fused op has the side
	// effects of its body.
	SideEffects bool
	// Cost is the op's work for one token at position pos; nil means one
	// flop per result element and every weight operand read once. A fused
	// op costs what its body costs.
	Cost func(op *Op, pos int64) Cost
}

var defs = map[OpKind]*OpDef{}

// Lookup returns an op definition.
func Lookup(kind OpKind) (*OpDef, bool) {
	d, ok := defs[kind]
	return d, ok
}

// MustLookup returns the definition of a kind that must exist: an op in
// the IR always has one, because the verifier and parser check it.
func MustLookup(kind OpKind) *OpDef {
	d, ok := defs[kind]
	if !ok {
		panic("BUG: op kind " + string(kind) + " is not registered")
	}
	return d
}

// AllOps lists every registered op kind, sorted.
func AllOps() []OpKind {
	var out []OpKind
	for n := range defs {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// UserOps lists the ops an .arch file may call, sorted.
func UserOps() []string {
	var out []string
	for n, d := range defs {
		if !d.Internal && !d.Fused {
			out = append(out, string(n))
		}
	}
	sort.Strings(out)
	return out
}

// register adds an op definition; duplicate names are a bug. The registry
// is static: every kind is declared in this package.
func register(d *OpDef) {
	if _, dup := defs[d.Name]; dup {
		panic("BUG: op " + string(d.Name) + " registered twice")
	}
	defs[d.Name] = d
}

// HasSideEffects reports whether an op writes state besides its results,
// counting the ops of a fused body.
func HasSideEffects(op *Op) bool {
	if MustLookup(op.Kind).SideEffects {
		return true
	}
	for _, b := range op.Body {
		if HasSideEffects(b) {
			return true
		}
	}
	return false
}

// OpCost is op's work for one token at position pos (see OpDef.Cost).
// Fusion saves memory traffic of activations, not arithmetic or weight
// reads, so a fused op costs what its body costs.
func OpCost(op *Op, pos int64) Cost {
	if len(op.Body) > 0 {
		var c Cost
		for _, b := range op.Body {
			bc := OpCost(b, pos)
			c.Flops += bc.Flops
			c.WeightBytes += bc.WeightBytes
		}
		return c
	}
	if f := MustLookup(op.Kind).Cost; f != nil {
		return f(op, pos)
	}
	var c Cost
	for i := range op.Args {
		c.WeightBytes += weightBytes(op, i)
	}
	if len(op.Results) > 0 {
		c.Flops = op.Results[0].Type.Shape.RowElems()
	}
	return c
}

// weightBytes is the checkpoint size of operand i when it is a weight.
func weightBytes(op *Op, i int) int64 {
	if i < len(op.Args) && op.Args[i].W != nil {
		return op.Args[i].W.Bytes()
	}
	return 0
}

// Input returns the operand bound to a named input: op.Input("wq"). An
// absent optional operand is the zero Arg; a name the op's definition does
// not have is a bug.
func (o *Op) Input(name string) Arg {
	i := MustLookup(o.Kind).InputIndex(name)
	if i < 0 || i >= len(o.Args) {
		panic(fmt.Sprintf("BUG: op %s has no input %q", o.Kind, name))
	}
	return o.Args[i]
}

func (d *OpDef) attr(name string) *AttrDef {
	for i := range d.Attrs {
		if d.Attrs[i].Name == name {
			return &d.Attrs[i]
		}
	}
	return nil
}

// HasAttr reports whether the op accepts an attribute.
func (d *OpDef) HasAttr(name string) bool { return d.attr(name) != nil }

// InputIndex returns the position of a named input, or -1.
func (d *OpDef) InputIndex(name string) int {
	for i, in := range d.Inputs {
		if in.Name == name {
			return i
		}
	}
	return -1
}

// argType returns the type of operand i: an activation's type, or the
// declared type of a weight.
func argType(op *Op, i int) (Type, bool) {
	if i >= len(op.Args) {
		return Type{}, false
	}
	a := op.Args[i]
	switch {
	case a.V != nil:
		return a.V.Type, true
	case a.W != nil:
		return Type{DType: a.W.DType, Shape: a.W.Shape}, true
	}
	return Type{}, false
}

func f32(shape ...int64) Type { return Type{DType: F32, Shape: shape} }

// features returns the trailing dimension of an activation of shape
// [seq, n] and checks the rank.
func features(op *Op, i int, describe Describer) (int64, error) {
	t, _ := argType(op, i)
	if t.DType != F32 || len(t.Shape) != 2 || t.Shape[0] != Seq {
		return 0, fmt.Errorf("%s must be a [seq, n] float tensor, not %s", describe(i), t)
	}
	return t.Shape[1], nil
}

func init() {
	for _, d := range baseOps {
		register(d)
	}
	for _, d := range fusedOps {
		d.Fused = true
		register(d)
	}
	// Ops made by the kv_cache pass.
	register(&OpDef{
		Name:        OpCacheKV,
		Doc:         "writes k and v of the new tokens into the layer's KV cache and passes q through, so that attention is ordered after the write",
		Inputs:      []InputDef{{Name: "q", Kind: TensorIn}, {Name: "k", Kind: TensorIn}, {Name: "v", Kind: TensorIn}},
		Attrs:       []AttrDef{{Name: "cache", Kind: IntAttr}, {Name: "kv_heads", Kind: IntAttr}, {Name: "head_dim", Kind: IntAttr}, {Name: "window", Kind: IntAttr, Default: int64(0)}},
		Internal:    true,
		SideEffects: true,
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			t, _ := argType(op, 0)
			return []Type{t}, nil
		},
	})
	register(&OpDef{
		Name:     OpAttend,
		Doc:      "attention of the new tokens' queries over the layer's KV cache: scores, sinks, window, softmax and weighted sum in one op",
		Inputs:   []InputDef{{Name: "q", Kind: TensorIn}, {Name: "sinks", Kind: WeightIn, Optional: true, Role: RoleLogits}},
		Attrs:    append([]AttrDef{{Name: "cache", Kind: IntAttr}}, attentionAttrs...),
		Internal: true,
		// Scores and the weighted sum over the positions the token sees.
		Cost: func(op *Op, pos int64) Cost {
			a := op.Attrs
			seen := pos + 1
			if w := a.Int("window"); w > 0 && w < seen {
				seen = w
			}
			return Cost{Flops: 2 * seen * a.Int("heads") * (a.Int("head_dim") + VHeadDim(a)), WeightBytes: weightBytes(op, 1)}
		},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			qd, err := features(op, 0, describe)
			if err != nil {
				return nil, err
			}
			heads, hd := op.Attrs.Int("heads"), op.Attrs.Int("head_dim")
			if qd != heads*hd {
				return nil, fmt.Errorf("%s has %d features; heads*head_dim is %d", describe(0), qd, heads*hd)
			}
			return []Type{f32(Seq, heads*VHeadDim(op.Attrs))}, nil
		},
	})
}

// VHeadDim is the width of a value head of an attention op (attention,
// attend): its v_head_dim, or head_dim when v_head_dim is 0 (unset, as in
// most models, whose values are as wide as their keys). Every pass and
// backend reads the width through it.
func VHeadDim(a Attrs) int64 {
	if v := a.Int("v_head_dim"); v != 0 {
		return v
	}
	return a.Int("head_dim")
}

var attentionAttrs = []AttrDef{
	{Name: "heads", Kind: IntAttr},
	{Name: "kv_heads", Kind: IntAttr},
	{Name: "head_dim", Kind: IntAttr},
	{Name: "v_head_dim", Kind: IntAttr, Default: int64(0)},
	{Name: "window", Kind: IntAttr, Default: int64(0)},
	{Name: "scale", Kind: FloatAttr, Default: 0.0},
	{Name: "softcap", Kind: FloatAttr, Default: 0.0},
}

var ropeAttrs = []AttrDef{
	{Name: "head_dim", Kind: IntAttr},
	{Name: "theta", Kind: FloatAttr},
	{Name: "type", Kind: StringAttr, Default: RopeDefault, Enum: []string{RopeDefault, RopeLinear, RopeYaRN, RopeLlama3}},
	{Name: "factor", Kind: FloatAttr, Default: 1.0},
	{Name: "beta_fast", Kind: FloatAttr, Default: 32.0},
	{Name: "beta_slow", Kind: FloatAttr, Default: 1.0},
	{Name: "original_max", Kind: IntAttr, Default: int64(0)},
	{Name: "truncate", Kind: BoolAttr, Default: true},
	{Name: "low_freq_factor", Kind: FloatAttr, Default: 1.0},
	{Name: "high_freq_factor", Kind: FloatAttr, Default: 4.0},
	{Name: "attention_factor", Kind: FloatAttr, Default: 0.0},
	{Name: "rotary_dim", Kind: IntAttr, Default: int64(0)},
}

func unary(name OpKind, doc string) *OpDef {
	return &OpDef{
		Name:    name,
		Doc:     doc,
		Inputs:  []InputDef{{Name: "x", Kind: TensorIn}},
		Infer:   sameAsInput,
		InPlace: true,
	}
}

func sameAsInput(op *Op, describe Describer) ([]Type, error) {
	t, _ := argType(op, 0)
	if t.DType != F32 || len(t.Shape) == 0 || t.Shape[0] != Seq {
		return nil, fmt.Errorf("%s must be a float activation, not %s", describe(0), t)
	}
	return []Type{t}, nil
}

// binary defines an elementwise op of two operands; role is what a weight
// b does (a vector broadcast over tokens).
func binary(name OpKind, doc string, commutative bool, role WeightRole) *OpDef {
	return &OpDef{
		Name:        name,
		Doc:         doc,
		Inputs:      []InputDef{{Name: "a", Kind: TensorIn}, {Name: "b", Kind: AnyIn, Role: role}},
		Commutative: commutative,
		InPlace:     true,
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			a, _ := argType(op, 0)
			b, _ := argType(op, 1)
			if a.DType != F32 || len(a.Shape) == 0 || a.Shape[0] != Seq {
				return nil, fmt.Errorf("%s must be a float activation, not %s", describe(0), a)
			}
			if op.Args[1].W != nil {
				// A weight vector broadcasts over tokens.
				if len(b.Shape) != 1 || b.Shape[0] != a.Shape.Last() || b.DType == MXFP4 {
					return nil, fmt.Errorf("%s is %s; to combine it with %s (%s) it must be a vector of %d", describe(1), b, describe(0), a, a.Shape.Last())
				}
				return []Type{a}, nil
			}
			if !a.Equal(b) {
				return nil, fmt.Errorf("%s is %s but %s is %s: elementwise operands must have the same shape", describe(0), a, describe(1), b)
			}
			return []Type{a}, nil
		},
	}
}

var baseOps = []*OpDef{
	{
		Name:   OpEmbedding,
		Doc:    "looks up one row of the table per token id",
		Inputs: []InputDef{{Name: "table", Kind: WeightIn, Role: RoleMatrix}, {Name: "ids", Kind: TensorIn}},
		// One row of the table.
		Cost: func(op *Op, pos int64) Cost {
			w := op.Args[0].W
			return Cost{WeightBytes: w.Bytes() / w.Shape[0]}
		},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			w, _ := argType(op, 0)
			ids, _ := argType(op, 1)
			if len(w.Shape) != 2 || w.DType == MXFP4 {
				return nil, fmt.Errorf("%s must be a dense [vocab, hidden] table, not %s", describe(0), w)
			}
			if ids.DType != I32 || !ids.Shape.Equal(Shape{Seq}) {
				return nil, fmt.Errorf("%s must be the token ids (i32[seq]), not %s", describe(1), ids)
			}
			return []Type{f32(Seq, w.Shape[1])}, nil
		},
	},
	{
		Name:   OpLinear,
		Doc:    "x @ w^T + b for a [out, in] weight, dense or MXFP4",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
		Cost: func(op *Op, pos int64) Cost {
			return Cost{Flops: 2 * op.Args[1].W.Shape.Elems(), WeightBytes: weightBytes(op, 1) + weightBytes(op, 2)}
		},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			in, err := features(op, 0, describe)
			if err != nil {
				return nil, err
			}
			w, _ := argType(op, 1)
			if len(w.Shape) != 2 {
				return nil, fmt.Errorf("%s must be a [out, in] matrix, not %s", describe(1), w)
			}
			if w.Shape[1] != in {
				return nil, fmt.Errorf("%s takes %d inputs (it is %s) but %s has %d features", describe(1), w.Shape[1], w, describe(0), in)
			}
			if b, ok := argType(op, 2); ok {
				if !b.Shape.Equal(Shape{w.Shape[0]}) || b.DType == MXFP4 {
					return nil, fmt.Errorf("bias %s must be a vector of %d (the weight's outputs), not %s", describe(2), w.Shape[0], b)
				}
			}
			return []Type{f32(Seq, w.Shape[0])}, nil
		},
	},
	{
		Name:   OpRMSNorm,
		Doc:    "x / sqrt(mean(x^2) + eps) * (w + offset); a weight shorter than x normalises each group (e.g. per head)",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn, Role: RoleScale}},
		Attrs:  []AttrDef{{Name: "eps", Kind: FloatAttr, Default: 1e-6}, {Name: "offset", Kind: FloatAttr, Default: 0.0}},
		Infer:  normInfer,
		Stated: []AttrDef{groupAttr}, CheckStated: checkNormGroup,
	},
	{
		Name:   OpLayerNorm,
		Doc:    "(x - mean) / sqrt(var + eps) * w + b",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn, Role: RoleScale}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
		Attrs:  []AttrDef{{Name: "eps", Kind: FloatAttr, Default: 1e-5}},
		Infer:  normInfer,
		Stated: []AttrDef{groupAttr}, CheckStated: checkNormGroup,
	},
	{
		Name:    OpRope,
		Doc:     "rotary position embedding of each head (halves rotated, not interleaved pairs); types default, linear, yarn, llama3",
		Inputs:  []InputDef{{Name: "x", Kind: TensorIn}},
		Attrs:   ropeAttrs,
		InPlace: true,
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			d, err := features(op, 0, describe)
			if err != nil {
				return nil, err
			}
			if err := CheckRope(op.Attrs); err != nil {
				return nil, err
			}
			hd := op.Attrs.Int("head_dim")
			if d%hd != 0 {
				return nil, fmt.Errorf("%s has %d features, not a multiple of head_dim %d", describe(0), d, hd)
			}
			return []Type{f32(Seq, d)}, nil
		},
	},
	{
		Name:      OpAttention,
		Doc:       "causal grouped-query attention with optional learned sinks and sliding window",
		Inputs:    []InputDef{{Name: "q", Kind: TensorIn}, {Name: "k", Kind: TensorIn}, {Name: "v", Kind: TensorIn}, {Name: "sinks", Kind: WeightIn, Optional: true, Role: RoleLogits}},
		Attrs:     attentionAttrs,
		Rewritten: "kv_cache",
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			a := op.Attrs
			heads, kvh, hd, vhd := a.Int("heads"), a.Int("kv_heads"), a.Int("head_dim"), VHeadDim(a)
			if heads <= 0 || kvh <= 0 || hd <= 0 {
				return nil, fmt.Errorf("heads, kv_heads and head_dim must be positive (got %d, %d, %d)", heads, kvh, hd)
			}
			if heads%kvh != 0 {
				return nil, fmt.Errorf("heads (%d) must be a multiple of kv_heads (%d)", heads, kvh)
			}
			if a.Int("window") < 0 {
				return nil, fmt.Errorf("window must be 0 (no window) or positive, not %d", a.Int("window"))
			}
			want := []int64{heads * hd, kvh * hd, kvh * vhd}
			for i, w := range want {
				d, err := features(op, i, describe)
				if err != nil {
					return nil, err
				}
				if d != w {
					return nil, fmt.Errorf("%s has %d features; %s", describe(i), d, [...]string{
						fmt.Sprintf("queries need heads*head_dim = %d*%d = %d", heads, hd, w),
						fmt.Sprintf("keys need kv_heads*head_dim = %d*%d = %d", kvh, hd, w),
						fmt.Sprintf("values need kv_heads*v_head_dim = %d*%d = %d", kvh, vhd, w)}[i])
				}
			}
			if s, ok := argType(op, 3); ok && (!s.Shape.Equal(Shape{heads}) || s.DType == MXFP4) {
				return nil, fmt.Errorf("sinks %s must hold one logit per query head (%d), not %s", describe(3), heads, s)
			}
			return []Type{f32(Seq, heads*vhd)}, nil
		},
	},
	{
		Name:   OpTopK,
		Doc:    "the k largest entries of each row, as routes (index and value)",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}},
		Attrs:  []AttrDef{{Name: "k", Kind: IntAttr}},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			n, err := features(op, 0, describe)
			if err != nil {
				return nil, err
			}
			k := op.Attrs.Int("k")
			if k < 1 || k > n {
				return nil, fmt.Errorf("k must be between 1 and %d (the row length of %s), not %d", n, describe(0), k)
			}
			return []Type{{DType: Route, Shape: Shape{Seq, k}}}, nil
		},
	},
	{
		Name:   OpSoftmax,
		Doc:    "softmax over the last dimension; on routes, over the selected experts' values",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			t, _ := argType(op, 0)
			if (t.DType != F32 && t.DType != Route) || len(t.Shape) != 2 || t.Shape[0] != Seq {
				return nil, fmt.Errorf("%s must be a [seq, n] tensor or routes, not %s", describe(0), t)
			}
			return []Type{t}, nil
		},
	},
	{
		Name:   OpExpertLinear,
		Doc:    "for each token and each of its routes, x @ w[expert]^T + b[expert]",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "routes", Kind: TensorIn}, {Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
		// Only the k chosen experts' rows are read.
		Cost: func(op *Op, pos int64) Cost {
			w := op.Args[2].W
			k := op.Results[0].Type.Shape[1]
			experts := w.Shape[0]
			return Cost{Flops: 2 * k * (w.Shape.Elems() / experts), WeightBytes: (weightBytes(op, 2) + weightBytes(op, 3)) * k / experts}
		},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			x, _ := argType(op, 0)
			r, _ := argType(op, 1)
			w, _ := argType(op, 2)
			if r.DType != Route || len(r.Shape) != 2 {
				return nil, fmt.Errorf("%s must be routes from topk, not %s", describe(1), r)
			}
			k := r.Shape[1]
			if len(w.Shape) != 3 {
				return nil, fmt.Errorf("%s must be [experts, out, in], not %s", describe(2), w)
			}
			var in int64
			switch {
			case x.DType == F32 && len(x.Shape) == 2 && x.Shape[0] == Seq:
				in = x.Shape[1]
			case x.DType == F32 && len(x.Shape) == 3 && x.Shape[0] == Seq && x.Shape[1] == k:
				in = x.Shape[2]
			default:
				return nil, fmt.Errorf("%s must be [seq, in] or [seq, %d, in], not %s", describe(0), k, x)
			}
			if w.Shape[2] != in {
				return nil, fmt.Errorf("%s takes %d inputs (it is %s) but %s has %d features", describe(2), w.Shape[2], w, describe(0), in)
			}
			if b, ok := argType(op, 3); ok && (!b.Shape.Equal(Shape{w.Shape[0], w.Shape[1]}) || b.DType == MXFP4) {
				return nil, fmt.Errorf("bias %s must be [%d, %d] (experts, out), not %s", describe(3), w.Shape[0], w.Shape[1], b)
			}
			return []Type{f32(Seq, k, w.Shape[1])}, nil
		},
	},
	{
		Name:   OpSwiGLU,
		Doc:    "(clamp(up) + up_offset) * g * sigmoid(alpha * g) with g = min(gate, limit); gate and up interleaved by row or in halves",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}},
		Attrs: []AttrDef{
			{Name: "alpha", Kind: FloatAttr, Default: 1.0},
			{Name: "limit", Kind: FloatAttr, Default: 0.0},
			{Name: "up_offset", Kind: FloatAttr, Default: 0.0},
			{Name: "layout", Kind: StringAttr, Default: "halves", Enum: []string{"halves", "interleaved"}},
		},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			t, _ := argType(op, 0)
			if t.DType != F32 || len(t.Shape) < 2 || t.Shape[0] != Seq || t.Shape.Last()%2 != 0 {
				return nil, fmt.Errorf("%s must be a float activation with an even last dimension (gate and up), not %s", describe(0), t)
			}
			out := append(Shape(nil), t.Shape...)
			out[len(out)-1] /= 2
			return []Type{{DType: F32, Shape: out}}, nil
		},
	},
	{
		Name:   OpMix,
		Doc:    "sums each token's expert outputs weighted by its routes",
		Inputs: []InputDef{{Name: "y", Kind: TensorIn}, {Name: "routes", Kind: TensorIn}},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			y, _ := argType(op, 0)
			r, _ := argType(op, 1)
			if r.DType != Route || len(r.Shape) != 2 {
				return nil, fmt.Errorf("%s must be routes from topk, not %s", describe(1), r)
			}
			if y.DType != F32 || len(y.Shape) != 3 || y.Shape[0] != Seq || y.Shape[1] != r.Shape[1] {
				return nil, fmt.Errorf("%s must be [seq, %d, n] (one row per route), not %s", describe(0), r.Shape[1], y)
			}
			return []Type{f32(Seq, y.Shape[2])}, nil
		},
	},
	{
		Name:    OpAffine,
		Doc:     "x * mul + add with constants (what `x * 2.0` or `x - 1.0` compiles to)",
		Inputs:  []InputDef{{Name: "x", Kind: TensorIn}},
		Attrs:   []AttrDef{{Name: "mul", Kind: FloatAttr, Default: 1.0}, {Name: "add", Kind: FloatAttr, Default: 0.0}},
		Infer:   sameAsInput,
		InPlace: true,
	},
	binary(OpAdd, "a + b", true, RoleOther),
	binary(OpSub, "a - b", false, RoleOther),
	binary(OpMul, "a * b", true, RoleScale),
	binary(OpDiv, "a / b", false, RoleScale),
	unary(OpSiLU, "x * sigmoid(x)"),
	unary(OpGELU, "the exact (erf) GELU"),
	unary(OpGELUTanh, "the tanh approximation of GELU"),
	unary(OpSigmoid, "1 / (1 + exp(-x))"),
	unary(OpTanh, "tanh(x)"),
	unary(OpReLU, "max(x, 0)"),
	unary(OpExp, "exp(x)"),
	{
		Name:   OpNarrow,
		Doc:    "features start..start+size of each token: one part of a fused projection (Phi-3's qkv_proj)",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}},
		Attrs:  []AttrDef{{Name: "start", Kind: IntAttr}, {Name: "size", Kind: IntAttr}},
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			n, err := features(op, 0, describe)
			if err != nil {
				return nil, err
			}
			start, size := op.Attrs.Int("start"), op.Attrs.Int("size")
			if start < 0 || size <= 0 || start+size > n {
				return nil, fmt.Errorf("narrow start=%d size=%d does not fit the %d features of %s (it needs 0 <= start and start + size <= %d, size > 0)", start, size, n, describe(0), n)
			}
			return []Type{f32(Seq, size)}, nil
		},
	},
}

// fusedOps are the kinds the fusion rules make. Their inputs are the
// rules' pattern variables by name and in this order: every rule that
// makes a kind binds these names, and an optional input a rule leaves
// unbound is absent (qkv_rope_store without a norm in front). Their type
// rules and attributes are their bodies'.
var fusedOps = []*OpDef{
	{
		Name: OpQKVRopeStore,
		Doc:  "q, k and v as one matmul over the (optionally normalised) row, RoPE on q and k, and the KV-cache write",
		Inputs: []InputDef{
			{Name: "x", Kind: TensorIn}, {Name: "norm", Kind: WeightIn, Optional: true, Role: RoleScale},
			{Name: "wq", Kind: WeightIn, Role: RoleMatrix}, {Name: "bq", Kind: WeightIn, Optional: true, Role: RoleBias},
			{Name: "wk", Kind: WeightIn, Role: RoleMatrix}, {Name: "bk", Kind: WeightIn, Optional: true, Role: RoleBias},
			{Name: "wv", Kind: WeightIn, Role: RoleMatrix}, {Name: "bv", Kind: WeightIn, Optional: true, Role: RoleBias},
		},
	},
	{
		Name:   OpRouter,
		Doc:    "router logits, top-k and the softmax over the chosen experts",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
	},
	{
		Name:   OpMoEGateUp,
		Doc:    "each routed expert's gate/up matmul with the SwiGLU in its epilogue",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "routes", Kind: TensorIn}, {Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
	},
	{
		Name: OpMoEDown,
		Doc:  "each routed expert's down matmul, weighted by its route and added to the residual",
		Inputs: []InputDef{{Name: "residual", Kind: TensorIn}, {Name: "y", Kind: TensorIn}, {Name: "routes", Kind: TensorIn},
			{Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
	},
	{
		Name: OpGLU,
		Doc:  "dense gate and up projections with SwiGLU",
		Inputs: []InputDef{{Name: "h", Kind: TensorIn},
			{Name: "wg", Kind: WeightIn, Role: RoleMatrix}, {Name: "bg", Kind: WeightIn, Optional: true, Role: RoleBias},
			{Name: "wu", Kind: WeightIn, Role: RoleMatrix}, {Name: "bu", Kind: WeightIn, Optional: true, Role: RoleBias}},
	},
	{
		Name: OpAddRMSNormRouter,
		Doc:  "the residual add and the RMS norm, then the router over the normalised row; the normalised row and the sum are second and third results",
		Inputs: []InputDef{{Name: "a", Kind: TensorIn}, {Name: "b", Kind: TensorIn}, {Name: "norm", Kind: WeightIn, Role: RoleScale},
			{Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "bias", Kind: WeightIn, Optional: true, Role: RoleBias}},
	},
	{
		Name:   OpAddRMSNorm,
		Doc:    "the residual add and the RMS norm after it; the sum is a second result",
		Inputs: []InputDef{{Name: "a", Kind: TensorIn}, {Name: "b", Kind: TensorIn}, {Name: "norm", Kind: WeightIn, Role: RoleScale}},
	},
	{
		Name:   OpRMSNormLinear,
		Doc:    "an RMS norm as a matmul's prologue",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "norm", Kind: WeightIn, Role: RoleScale}, {Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
	},
	{
		Name:   OpLinearAdd,
		Doc:    "a matmul with the residual added in its epilogue",
		Inputs: []InputDef{{Name: "residual", Kind: TensorIn}, {Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn, Role: RoleMatrix}, {Name: "b", Kind: WeightIn, Optional: true, Role: RoleBias}},
	},
}

// groupAttr states that a norm normalises groups of features (each head)
// rather than the whole row: a weight shorter than the row does that, and
// a checkpoint with the wrong length would do it silently.
var groupAttr = AttrDef{Name: "group", Kind: IntAttr, Default: int64(0)}

// checkNormGroup requires group= exactly when the weight is shorter than
// the row, and then equal to the weight's length.
func checkNormGroup(op *Op, stated Attrs, describe Describer) error {
	x, _ := argType(op, 0)
	w, _ := argType(op, 1)
	n, g := x.Shape.Last(), w.Shape[0]
	group, given := stated.Get("group")
	switch {
	case !given && g != n:
		return fmt.Errorf("%s has %d entries but %s has %d features, so this normalises each group of %d features separately; if that is meant (per head), say so with group=%d", describe(1), g, describe(0), n, g, g)
	case given && group.(int64) != g:
		return fmt.Errorf("group=%d but %s has %d entries: the weight holds one group's scales", group.(int64), describe(1), g)
	}
	return nil
}

func normInfer(op *Op, describe Describer) ([]Type, error) {
	x, _ := argType(op, 0)
	w, _ := argType(op, 1)
	if x.DType != F32 || len(x.Shape) != 2 || x.Shape[0] != Seq {
		return nil, fmt.Errorf("%s must be a [seq, n] float tensor, not %s", describe(0), x)
	}
	if len(w.Shape) != 1 || w.DType == MXFP4 {
		return nil, fmt.Errorf("%s must be a vector, not %s", describe(1), w)
	}
	if w.Shape[0] == 0 || x.Shape[1]%w.Shape[0] != 0 {
		return nil, fmt.Errorf("%s has %d entries but %s has %d features (a shorter weight must divide it, to normalise per group)", describe(1), w.Shape[0], describe(0), x.Shape[1])
	}
	if b, ok := argType(op, 2); ok && !b.Shape.Equal(w.Shape) {
		return nil, fmt.Errorf("bias %s must match the weight %s, not %s", describe(2), w, b)
	}
	if e, ok := op.Attrs.Get("eps"); ok && e.(float64) <= 0 {
		return nil, fmt.Errorf("eps must be positive, not %g", e)
	}
	return []Type{x}, nil
}

// CheckRope validates the parameters a RoPE type needs.
func CheckRope(a Attrs) error {
	if a.Int("head_dim") <= 0 || a.Int("head_dim")%2 != 0 {
		return fmt.Errorf("head_dim must be positive and even, not %d", a.Int("head_dim"))
	}
	if rd := a.Int("rotary_dim"); rd < 0 || rd > a.Int("head_dim") || rd%2 != 0 {
		return fmt.Errorf("rotary_dim must be even and at most head_dim, not %d", rd)
	}
	if a.Float("theta") <= 0 {
		return fmt.Errorf("theta must be positive, not %g", a.Float("theta"))
	}
	switch a.String("type") {
	case RopeLinear:
		if a.Float("factor") <= 0 {
			return fmt.Errorf("linear RoPE needs factor > 0, not %g", a.Float("factor"))
		}
	case RopeYaRN:
		if a.Float("factor") <= 0 || a.Int("original_max") <= 0 {
			return fmt.Errorf("yarn RoPE needs factor > 0 and original_max > 0 (got factor=%g, original_max=%d)", a.Float("factor"), a.Int("original_max"))
		}
	case RopeLlama3:
		if a.Float("factor") <= 0 || a.Int("original_max") <= 0 || a.Float("high_freq_factor") <= a.Float("low_freq_factor") {
			return fmt.Errorf("llama3 RoPE needs factor > 0, original_max > 0 and high_freq_factor > low_freq_factor (got factor=%g, original_max=%d, low=%g, high=%g)",
				a.Float("factor"), a.Int("original_max"), a.Float("low_freq_factor"), a.Float("high_freq_factor"))
		}
	}
	return nil
}
