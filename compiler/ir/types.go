// Package ir is Minerva's intermediate representation: a typed dataflow
// graph of tensor operations over named weights, with one canonical text
// form (Print / Parse) and a verifier (Verify).
//
// A Func is a straight list of ops in execution order. Loops in the .arch
// source are unrolled by the front end, so every op belongs to one layer and
// carries concrete sizes: the only symbolic dimension is `seq`, the number of
// tokens a call processes. Fused ops keep the ops they replaced as a body,
// which is both their documentation and their reference semantics.
package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is an element type of an activation or a weight.
type DType uint8

const (
	Invalid DType = iota
	F32
	F16
	BF16
	I32
	U8
	// MXFP4 is a weight stored as 4-bit E2M1 values in blocks of 32 with one
	// E8M0 scale per block.
	MXFP4
	// Route is one token's choice of an expert and its weight: an int32
	// expert index and a float32 weight.
	Route
)

var dtypeNames = [...]string{Invalid: "invalid", F32: "f32", F16: "f16", BF16: "bf16", I32: "i32", U8: "u8", MXFP4: "mxfp4", Route: "route"}

func (d DType) String() string {
	if int(d) < len(dtypeNames) {
		return dtypeNames[d]
	}
	return fmt.Sprintf("dtype(%d)", d)
}

// ParseDType reads a dtype name.
func ParseDType(s string) (DType, bool) {
	for i, n := range dtypeNames {
		if n == s && i != 0 {
			return DType(i), true
		}
	}
	return Invalid, false
}

// Size is the byte size of one element, or 0 for packed types.
func (d DType) Size() int64 {
	switch d {
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case U8:
		return 1
	case Route:
		return 8
	}
	return 0
}

// Seq is the symbolic dimension: the number of tokens in a call.
const Seq int64 = -1

// Shape lists dimensions; Seq stands for the token count.
type Shape []int64

func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		if d == Seq {
			parts[i] = "seq"
		} else {
			parts[i] = strconv.FormatInt(d, 10)
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Equal reports whether two shapes are identical.
func (s Shape) Equal(o Shape) bool {
	if len(s) != len(o) {
		return false
	}
	for i := range s {
		if s[i] != o[i] {
			return false
		}
	}
	return true
}

// Last is the innermost dimension.
func (s Shape) Last() int64 {
	if len(s) == 0 {
		return 1
	}
	return s[len(s)-1]
}

// RowElems is the number of elements per token: the product of all
// dimensions but seq.
func (s Shape) RowElems() int64 {
	n := int64(1)
	for _, d := range s {
		if d != Seq {
			n *= d
		}
	}
	return n
}

// Elems is the element count of a shape with no seq dimension.
func (s Shape) Elems() int64 { return s.RowElems() }

// Type is the type of an activation.
type Type struct {
	DType DType
	Shape Shape
}

func (t Type) String() string { return t.DType.String() + t.Shape.String() }

// Equal reports whether two types are identical.
func (t Type) Equal(o Type) bool { return t.DType == o.DType && t.Shape.Equal(o.Shape) }

// RowBytes is the byte size of one token's slice of a value of this type.
func (t Type) RowBytes() int64 { return t.Shape.RowElems() * t.DType.Size() }

// Value is an SSA value: an op result or the function's input.
type Value struct {
	ID   int
	Type Type
	// Name is the source variable it was bound to, for people reading dumps.
	Name string
	// Def is the op that produces it; nil for the function input and for
	// the parameters of a fused body.
	Def *Op
	// Param is the index of a fused body's parameter, or -1.
	Param int
}

// Ref prints the value as an operand.
func (v *Value) Ref() string {
	if v.Param >= 0 {
		return "$" + strconv.Itoa(v.Param)
	}
	return "%" + strconv.Itoa(v.ID)
}

// Weight is a tensor of the checkpoint, as the model declares it.
type Weight struct {
	// Name is the declared name, with the layer index: "q_proj.3".
	Name string
	// DType is the declared storage: bf16, f16, f32 or mxfp4.
	DType DType
	// Shape is the logical shape; an mxfp4 weight's last dimension counts
	// values, not bytes.
	Shape Shape
	// Checkpoint is the tensor name in the checkpoint. For mxfp4 the file
	// holds Checkpoint+"_blocks" and Checkpoint+"_scales".
	Checkpoint string
	// Layer is the layer the weight belongs to, or -1.
	Layer int
	// Decl is the declaration's name ("q_proj" for "q_proj.3"), Pattern
	// its checkpoint name as written ("model.layers.{i}.q_proj.weight"),
	// and Pos, End the span of the declared name, so that a checkpoint
	// that does not fit is reported once per declaration, at it. The
	// front end fills them; the IR's text form does not keep them.
	Decl, Pattern string
	Pos, End      Pos
}

// Tensor is one physical tensor of the checkpoint.
type Tensor struct {
	Name  string
	DType DType
	Shape Shape
}

// Stack describes a weight stored as one checkpoint tensor per index of
// its first dimension (Qwen3-MoE's experts): its Checkpoint name holds one
// range "{lo..hi}", and part j is that name with the range replaced by
// lo+j. A range never occurs in a real tensor's name.
type Stack struct {
	Prefix, Suffix string
	Lo, Hi         int64
}

// Part is the checkpoint name of slice j of the first dimension.
func (s Stack) Part(j int64) string {
	return s.Prefix + strconv.FormatInt(s.Lo+j, 10) + s.Suffix
}

// StackRange formats the range a stacked weight's name holds.
func StackRange(lo, hi int64) string { return fmt.Sprintf("{%d..%d}", lo, hi) }

// Stacked reports whether the weight is stacked from one tensor per index
// of its first dimension, and how its parts are named.
func (w *Weight) Stacked() (Stack, bool) {
	open := strings.IndexByte(w.Checkpoint, '{')
	if open < 0 {
		return Stack{}, false
	}
	closing := strings.IndexByte(w.Checkpoint[open:], '}')
	if closing < 0 {
		return Stack{}, false
	}
	lo, hi, ok := strings.Cut(w.Checkpoint[open+1:open+closing], "..")
	if !ok {
		return Stack{}, false
	}
	a, err1 := strconv.ParseInt(lo, 10, 64)
	b, err2 := strconv.ParseInt(hi, 10, 64)
	if err1 != nil || err2 != nil || b <= a {
		return Stack{}, false
	}
	return Stack{Prefix: w.Checkpoint[:open], Suffix: w.Checkpoint[open+closing+1:], Lo: a, Hi: b}, true
}

// Bound lists the tensors kernels bind for the weight: the physical
// tensors, or for a stacked weight the one tensor the loader assembles
// from its parts (named by Checkpoint).
func (w *Weight) Bound() []Tensor {
	if _, ok := w.Stacked(); ok {
		return []Tensor{{Name: w.Checkpoint, DType: w.DType, Shape: w.Shape}}
	}
	return w.Tensors()
}

// Tensors lists the physical tensors that hold the weight.
func (w *Weight) Tensors() []Tensor {
	if st, ok := w.Stacked(); ok && w.DType != MXFP4 && len(w.Shape) > 1 {
		var out []Tensor
		for j := int64(0); j < st.Hi-st.Lo; j++ {
			out = append(out, Tensor{Name: st.Part(j), DType: w.DType, Shape: append(Shape(nil), w.Shape[1:]...)})
		}
		return out
	}
	if w.DType != MXFP4 {
		return []Tensor{{Name: w.Checkpoint, DType: w.DType, Shape: w.Shape}}
	}
	lead := append(Shape(nil), w.Shape[:len(w.Shape)-1]...)
	blocks := w.Shape.Last() / 32
	return []Tensor{
		{Name: w.Checkpoint + "_blocks", DType: U8, Shape: append(append(Shape(nil), lead...), blocks, 16)},
		{Name: w.Checkpoint + "_scales", DType: U8, Shape: append(append(Shape(nil), lead...), blocks)},
	}
}

// Bytes is the weight's size in the checkpoint.
func (w *Weight) Bytes() int64 {
	var n int64
	for _, t := range w.Tensors() {
		n += t.Shape.Elems() * t.DType.Size()
	}
	return n
}

// Ref prints the weight as an operand.
func (w *Weight) Ref() string { return "@" + w.Name }

// Arg is an operand: a value, a weight, or neither (an absent optional input).
type Arg struct {
	V *Value
	W *Weight
}

// IsNone reports whether the operand is absent.
func (a Arg) IsNone() bool { return a.V == nil && a.W == nil }

// Ref prints the operand.
func (a Arg) Ref() string {
	switch {
	case a.V != nil:
		return a.V.Ref()
	case a.W != nil:
		return a.W.Ref()
	}
	return "_"
}

// Attr is one named attribute of an op. Values are int64, float64, bool or
// string.
type Attr struct {
	Key   string
	Value any
}

// Attrs is an ordered attribute list; the op definition fixes the order.
type Attrs []Attr

// Get returns an attribute's value.
func (a Attrs) Get(key string) (any, bool) {
	for _, kv := range a {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Int returns an integer attribute; a missing attribute is a compiler bug
// because the verifier checks every op against its definition.
func (a Attrs) Int(key string) int64 { return mustAttr[int64](a, key) }

// Float returns a float attribute.
func (a Attrs) Float(key string) float64 { return mustAttr[float64](a, key) }

// Bool returns a bool attribute.
func (a Attrs) Bool(key string) bool { return mustAttr[bool](a, key) }

// String returns a string attribute.
func (a Attrs) String(key string) string { return mustAttr[string](a, key) }

func mustAttr[T any](a Attrs, key string) T {
	v, ok := a.Get(key)
	if !ok {
		panic(fmt.Sprintf("BUG: missing %T attribute %s", *new(T), key))
	}
	return v.(T)
}

// Set replaces or appends an attribute.
func (a *Attrs) Set(key string, v any) {
	for i := range *a {
		if (*a)[i].Key == key {
			(*a)[i].Value = v
			return
		}
	}
	*a = append(*a, Attr{key, v})
}

// Op is one operation.
type Op struct {
	Kind    OpKind
	Args    []Arg
	Attrs   Attrs
	Results []*Value
	// Body holds the ops a fused op replaced, over parameters $0..$n that
	// stand for Args; Yield lists the body values that are the results.
	Body  []*Op
	Yield []*Value
	// Layer is the source loop iteration the op came from, or -1.
	Layer int
	// Pos and End span the .arch source the op was lowered from, so that
	// a later pass can report a problem with it where the user wrote it.
	// Passes that replace ops pass them on; ops made from IR text have
	// none. They are not part of the text form.
	Pos, End Pos
}

// Pos is a position in an .arch file: line and column count from 1,
// Offset from 0. It mirrors dsl/diag.Pos, which the IR does not import:
// backends depend on the IR and nothing of the front end.
type Pos struct {
	File      string
	Line, Col int
	Offset    int
}

// IsValid reports whether the position points into a file.
func (p Pos) IsValid() bool { return p.Line > 0 }

// Result is the first (usually the only) result.
func (o *Op) Result() *Value { return o.Results[0] }

// Func is the forward pass.
type Func struct {
	Model   string
	Weights []*Weight
	Input   *Value
	Ops     []*Op
	Output  *Value
	// nextID numbers new values.
	nextID int
}

// NewFunc starts a function whose input is the token ids.
func NewFunc(model string) *Func {
	f := &Func{Model: model}
	f.Input = f.NewValue(Type{DType: I32, Shape: Shape{Seq}}, "tokens")
	return f
}

// NewValue creates a value with a fresh ID.
func (f *Func) NewValue(t Type, name string) *Value {
	v := &Value{ID: f.nextID, Type: t, Name: name, Param: -1}
	f.nextID++
	return v
}

// Renumber gives values consecutive IDs in definition order, so that the
// printed form depends only on the graph and not on the passes that made it.
func (f *Func) Renumber() {
	id := 0
	f.Input.ID = id
	id++
	for _, op := range f.Ops {
		for _, r := range op.Results {
			r.ID = id
			id++
		}
	}
	f.nextID = id
}

// Weight looks a weight up by name.
func (f *Func) Weight(name string) *Weight {
	for _, w := range f.Weights {
		if w.Name == name {
			return w
		}
	}
	return nil
}

// Uses counts, for every value, the ops that read it (the output counts as
// a use).
func (f *Func) Uses() map[*Value][]*Op {
	uses := map[*Value][]*Op{}
	for _, op := range f.Ops {
		for _, a := range op.Args {
			if a.V != nil {
				uses[a.V] = append(uses[a.V], op)
			}
		}
	}
	if f.Output != nil {
		uses[f.Output] = append(uses[f.Output], nil)
	}
	return uses
}
