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

// OpDef defines an op kind: its operands, attributes and type rule. It is
// the single description that the front end, verifier, printer and parser
// share.
type OpDef struct {
	Name   string
	Doc    string
	Inputs []InputDef
	Attrs  []AttrDef
	// Infer computes result types from operand types and attributes, or
	// explains why they do not fit.
	Infer func(op *Op, describe Describer) ([]Type, error)
	// Commutative ops match fusion patterns with operands in either order.
	Commutative bool
	// Internal ops are made by passes; .arch files cannot call them.
	Internal bool
	// Fused ops are made by fusion rules; their operands are the rule's
	// pattern variables and their types come from the body.
	Fused bool
}

var defs = map[string]*OpDef{}

// Lookup returns an op definition.
func Lookup(kind string) (*OpDef, bool) {
	d, ok := defs[kind]
	return d, ok
}

// AllOps lists every registered op kind, sorted.
func AllOps() []string {
	var out []string
	for n := range defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// UserOps lists the ops an .arch file may call, sorted.
func UserOps() []string {
	var out []string
	for n, d := range defs {
		if !d.Internal && !d.Fused {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Register adds an op definition; duplicate names are a bug.
func Register(d *OpDef) {
	if _, dup := defs[d.Name]; dup {
		panic("BUG: op " + d.Name + " registered twice")
	}
	defs[d.Name] = d
}

// RegisterFused declares a fused op kind made by a fusion rule.
func RegisterFused(name, doc string) {
	if d, ok := defs[name]; ok {
		if !d.Fused {
			panic("BUG: fused op " + name + " clashes with a base op")
		}
		return
	}
	Register(&OpDef{Name: name, Doc: doc, Fused: true})
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
		Register(d)
	}
	// Ops made by the kv_cache pass.
	Register(&OpDef{
		Name:     "cache_kv",
		Doc:      "writes k and v of the new tokens into the layer's KV cache and passes q through, so that attention is ordered after the write",
		Inputs:   []InputDef{{Name: "q", Kind: TensorIn}, {Name: "k", Kind: TensorIn}, {Name: "v", Kind: TensorIn}},
		Attrs:    []AttrDef{{Name: "cache", Kind: IntAttr}, {Name: "kv_heads", Kind: IntAttr}, {Name: "head_dim", Kind: IntAttr}, {Name: "window", Kind: IntAttr, Default: int64(0)}},
		Internal: true,
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			t, _ := argType(op, 0)
			return []Type{t}, nil
		},
	})
	Register(&OpDef{
		Name:     "attend",
		Doc:      "attention of the new tokens' queries over the layer's KV cache: scores, sinks, window, softmax and weighted sum in one op",
		Inputs:   []InputDef{{Name: "q", Kind: TensorIn}, {Name: "sinks", Kind: WeightIn, Optional: true}},
		Attrs:    append([]AttrDef{{Name: "cache", Kind: IntAttr}}, attentionAttrs...),
		Internal: true,
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			qd, err := features(op, 0, describe)
			if err != nil {
				return nil, err
			}
			heads, hd := op.Attrs.Int("heads"), op.Attrs.Int("head_dim")
			if qd != heads*hd {
				return nil, fmt.Errorf("%s has %d features; heads*head_dim is %d", describe(0), qd, heads*hd)
			}
			vhd := op.Attrs.Int("v_head_dim")
			if vhd == 0 {
				vhd = hd
			}
			return []Type{f32(Seq, heads*vhd)}, nil
		},
	})
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
	{Name: "type", Kind: StringAttr, Default: "default", Enum: []string{"default", "linear", "yarn", "llama3"}},
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

func unary(name, doc string) *OpDef {
	return &OpDef{
		Name:   name,
		Doc:    doc,
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}},
		Infer:  sameAsInput,
	}
}

func sameAsInput(op *Op, describe Describer) ([]Type, error) {
	t, _ := argType(op, 0)
	if t.DType != F32 || len(t.Shape) == 0 || t.Shape[0] != Seq {
		return nil, fmt.Errorf("%s must be a float activation, not %s", describe(0), t)
	}
	return []Type{t}, nil
}

func binary(name, doc string, commutative bool) *OpDef {
	return &OpDef{
		Name:        name,
		Doc:         doc,
		Inputs:      []InputDef{{Name: "a", Kind: TensorIn}, {Name: "b", Kind: AnyIn}},
		Commutative: commutative,
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
		Name:   "embedding",
		Doc:    "looks up one row of the table per token id",
		Inputs: []InputDef{{Name: "table", Kind: WeightIn}, {Name: "ids", Kind: TensorIn}},
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
		Name:   "linear",
		Doc:    "x @ w^T + b for a [out, in] weight, dense or MXFP4",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn}, {Name: "b", Kind: WeightIn, Optional: true}},
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
		Name:   "rmsnorm",
		Doc:    "x / sqrt(mean(x^2) + eps) * (w + offset); a weight shorter than x normalises each group (e.g. per head)",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn}},
		Attrs:  []AttrDef{{Name: "eps", Kind: FloatAttr, Default: 1e-6}, {Name: "offset", Kind: FloatAttr, Default: 0.0}},
		Infer:  normInfer,
	},
	{
		Name:   "layernorm",
		Doc:    "(x - mean) / sqrt(var + eps) * w + b",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "w", Kind: WeightIn}, {Name: "b", Kind: WeightIn, Optional: true}},
		Attrs:  []AttrDef{{Name: "eps", Kind: FloatAttr, Default: 1e-5}},
		Infer:  normInfer,
	},
	{
		Name:   "rope",
		Doc:    "rotary position embedding of each head (halves rotated, not interleaved pairs); types default, linear, yarn, llama3",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}},
		Attrs:  ropeAttrs,
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
		Name:   "attention",
		Doc:    "causal grouped-query attention with optional learned sinks and sliding window",
		Inputs: []InputDef{{Name: "q", Kind: TensorIn}, {Name: "k", Kind: TensorIn}, {Name: "v", Kind: TensorIn}, {Name: "sinks", Kind: WeightIn, Optional: true}},
		Attrs:  attentionAttrs,
		Infer: func(op *Op, describe Describer) ([]Type, error) {
			a := op.Attrs
			heads, kvh, hd, vhd := a.Int("heads"), a.Int("kv_heads"), a.Int("head_dim"), a.Int("v_head_dim")
			if vhd == 0 {
				vhd = hd
			}
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
		Name:   "topk",
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
		Name:   "softmax",
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
		Name:   "expert_linear",
		Doc:    "for each token and each of its routes, x @ w[expert]^T + b[expert]",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}, {Name: "routes", Kind: TensorIn}, {Name: "w", Kind: WeightIn}, {Name: "b", Kind: WeightIn, Optional: true}},
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
		Name:   "swiglu",
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
		Name:   "mix",
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
		Name:   "affine",
		Doc:    "x * mul + add with constants (what `x * 2.0` or `x - 1.0` compiles to)",
		Inputs: []InputDef{{Name: "x", Kind: TensorIn}},
		Attrs:  []AttrDef{{Name: "mul", Kind: FloatAttr, Default: 1.0}, {Name: "add", Kind: FloatAttr, Default: 0.0}},
		Infer:  sameAsInput,
	},
	binary("add", "a + b", true),
	binary("sub", "a - b", false),
	binary("mul", "a * b", true),
	binary("div", "a / b", false),
	unary("silu", "x * sigmoid(x)"),
	unary("gelu", "the exact (erf) GELU"),
	unary("gelu_tanh", "the tanh approximation of GELU"),
	unary("sigmoid", "1 / (1 + exp(-x))"),
	unary("tanh", "tanh(x)"),
	unary("relu", "max(x, 0)"),
	unary("exp", "exp(x)"),
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
	case "linear":
		if a.Float("factor") <= 0 {
			return fmt.Errorf("linear RoPE needs factor > 0, not %g", a.Float("factor"))
		}
	case "yarn":
		if a.Float("factor") <= 0 || a.Int("original_max") <= 0 {
			return fmt.Errorf("yarn RoPE needs factor > 0 and original_max > 0 (got factor=%g, original_max=%d)", a.Float("factor"), a.Int("original_max"))
		}
	case "llama3":
		if a.Float("factor") <= 0 || a.Int("original_max") <= 0 || a.Float("high_freq_factor") <= a.Float("low_freq_factor") {
			return fmt.Errorf("llama3 RoPE needs factor > 0, original_max > 0 and high_freq_factor > low_freq_factor (got factor=%g, original_max=%d, low=%g, high=%g)",
				a.Float("factor"), a.Int("original_max"), a.Float("low_freq_factor"), a.Float("high_freq_factor"))
		}
	}
	return nil
}
