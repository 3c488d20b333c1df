// Package kernels specialises the Metal templates for one op of a compiled
// program: it picks the template and its constants, the kernel's
// parameters and what the host binds to each, and the dispatch geometry.
// Ops that differ only in which weights and buffers they read share a
// kernel; the kernel's name encodes the op, the variant and the dtypes.
package kernels

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/minerva-ml/minerva/compiler/ir"
	"github.com/minerva-ml/minerva/compiler/plan"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/templates"
)

// The kernel table's types belong to the compiled program (package
// program), which backends read without importing codegen; the
// specialisers name them unqualified.
type (
	Variant  = program.Variant
	BindKind = program.BindKind
	Binding  = program.Binding
	Param    = program.Param
	Dim      = program.Dim
	Grid     = program.Grid
	Kernel   = program.Kernel
	Dispatch = program.Dispatch
)

const (
	Any     = program.VariantAny
	Decode  = program.VariantDecode
	Prefill = program.VariantPrefill

	BindArgs    = program.BindArgs
	BindValue   = program.BindValue
	BindWeight  = program.BindWeight
	BindKV      = program.BindKV
	BindScratch = program.BindScratch
)

// Context is what specialisation needs to know about the program.
type Context struct {
	Func *ir.Func
	KV   *plan.KV
	// kernels collects distinct kernels by name.
	kernels map[string]*Kernel
	// rendered remembers the kernel made from each (template, data):
	// most ops of a model share a specialisation, and rendering dominates.
	rendered map[string]*Kernel
}

// NewContext starts specialising a program.
func NewContext(f *ir.Func, kv *plan.KV) *Context {
	return &Context{Func: f, KV: kv, kernels: map[string]*Kernel{}, rendered: map[string]*Kernel{}}
}

// Kernels returns the distinct kernels, sorted by name.
func (c *Context) Kernels() []*Kernel {
	out := make([]*Kernel, 0, len(c.kernels))
	for _, k := range c.kernels {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// spec is what a kind's specialiser fills in for one variant.
type spec struct {
	variant  Variant
	template string
	// desc is a readable summary of the specialisation for the name.
	desc    string
	params  []Param
	threads [3]int
	tgmem   []int
	grid    Grid
	// data is the template's: a pointer to its family's struct (data.go).
	data templateData
	// stage makes the kernel a launch after the op's kernel in its variant
	// (Dispatch.Then), with its own parameters and bindings; name is then
	// the kernel's name before its description (the op kind otherwise).
	stage *builder
	name  string
	// upTo is, for a decode spec, the most tokens a call may have for it
	// to serve the call (Dispatch.DecodeUpTo).
	upTo int
}

// builder accumulates an op's parameters and bindings.
type builder struct {
	ctx      *Context
	op       *ir.Op
	params   []Param
	bindings []Binding
	// scratchBytes is the bytes of scratch the op's bindings address.
	scratchBytes int64
}

func (b *builder) add(name, typ string, bind Binding) {
	bind.Index = len(b.params)
	b.params = append(b.params, Param{Name: name, Index: bind.Index, Type: typ})
	b.bindings = append(b.bindings, bind)
}

// args binds StepArgs at index 0.
func (b *builder) args() { b.add("args", "constant StepArgs&", Binding{Kind: BindArgs}) }

// value binds an activation.
func (b *builder) value(name string, v *ir.Value, write bool) {
	typ := "device const float*"
	switch {
	case v.Type.DType == ir.I32:
		typ = "device const int*"
	case v.Type.DType == ir.Route && write:
		typ = "device Route*"
	case v.Type.DType == ir.Route:
		typ = "device const Route*"
	case write:
		typ = "device float*"
	}
	b.add(name, typ, Binding{Kind: BindValue, Value: v.ID, Write: write})
}

// weight binds a weight's tensors: one for dense storage, blocks and
// scales for MXFP4.
// optionalWeight binds w when the architecture declares it (biases are
// optional in most layers) and binds nothing otherwise.
func (b *builder) optionalWeight(name string, w *ir.Weight) {
	if w != nil {
		b.weight(name, w)
	}
}

func (b *builder) weight(name string, w *ir.Weight) {
	ts := w.Bound()
	switch w.DType {
	case ir.MXFP4:
		b.add(name+"_blocks", "device const uchar*", Binding{Kind: BindWeight, Tensor: ts[0].Name})
		b.add(name+"_scales", "device const uchar*", Binding{Kind: BindWeight, Tensor: ts[1].Name})
	case ir.F32:
		b.add(name, "device const float*", Binding{Kind: BindWeight, Tensor: ts[0].Name})
	default:
		b.add(name, "device const ushort*", Binding{Kind: BindWeight, Tensor: ts[0].Name})
	}
}

// kv binds a layer's keys and values; write says whether the kernel
// stores into them or only reads them.
func (b *builder) kv(cache int, write bool) {
	b.add("kcache", "device uchar*", Binding{Kind: BindKV, Cache: cache, Part: "k", Write: write})
	b.add("vcache", "device uchar*", Binding{Kind: BindKV, Cache: cache, Part: "v", Write: write})
}

// scratch binds the op's scratch region of n bytes (program.ScratchBase).
func (b *builder) scratch(name string, n int64, write bool) {
	typ := "device const float*"
	if write {
		typ = "device float*"
	}
	b.add(name, typ, Binding{Kind: BindScratch, Write: write})
	b.scratchBytes = max(b.scratchBytes, n)
}

// Specialize produces the dispatch of op i, adding its kernels to the
// context.
func (c *Context) Specialize(i int) (*Dispatch, error) {
	op := c.Func.Ops[i]
	if ls := Limits(op); len(ls) > 0 {
		return nil, fmt.Errorf("op %d (%s): %s", i, op.Kind, ls[0].Message)
	}
	b := &builder{ctx: c, op: op}
	specs, err := specialise(b)
	if err != nil {
		return nil, fmt.Errorf("op %d (%s): %w", i, op.Kind, err)
	}
	d := &Dispatch{Op: i, Kind: string(op.Kind), Layer: op.Layer, Kernels: map[Variant]string{}, Grids: map[Variant]Grid{}, Bindings: b.bindings}
	for _, s := range specs {
		s.params = b.params
		if s.stage != nil {
			s.params = s.stage.params
		}
		k, err := c.render(op, s)
		if err != nil {
			return nil, fmt.Errorf("op %d (%s): %w", i, op.Kind, err)
		}
		if s.stage != nil {
			d.Then = append(d.Then, program.Stage{Variant: s.variant, Kernel: k.Name, Grid: s.grid, Bindings: s.stage.bindings})
			d.Scratch = max(d.Scratch, s.stage.scratchBytes)
			continue
		}
		d.Kernels[s.variant] = k.Name
		d.Grids[s.variant] = s.grid
		if s.variant == Decode {
			d.DecodeUpTo = s.upTo
		}
	}
	d.Scratch = max(d.Scratch, b.scratchBytes)
	return d, nil
}

// tmpl parses the templates on first use rather than at package
// initialisation, which every command would otherwise pay.
var tmpl = sync.OnceValue(func() *template.Template { return parseTemplates() })

func parseTemplates() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"floats": mslFloats,
		"add":    func(a, b int) int { return a + b },
		"mul":    func(a, b int) int { return a * b },
		"div":    func(a, b int) int { return a / b },
	}).Option("missingkey=error").ParseFS(templates.FS, "*.metal.tmpl"))
}

// render fills a template. The kernel's name is the op kind, the variant,
// the readable description and a hash of the source, so equal
// specialisations share a kernel and different ones never collide.
func (c *Context) render(op *ir.Op, s spec) (*Kernel, error) {
	// fmt prints maps with sorted keys, so the memo key is deterministic.
	key := fmt.Sprintf("%s|%s|%s|%v|%v|%v|%v|%s", s.template, s.variant, s.desc, s.threads, s.tgmem, s.data, s.params, implements(op))
	prefix := string(op.Kind)
	if s.name != "" {
		prefix = s.name
	}
	if k, ok := c.rendered[key]; ok {
		return k, nil
	}
	*s.data.header() = Header{Name: "KERNEL_NAME", Sig: signature(s.params), Implements: implements(op), Variant: string(s.variant)}
	var buf bytes.Buffer
	if err := tmpl().ExecuteTemplate(&buf, s.template, s.data); err != nil {
		return nil, fmt.Errorf("BUG: template %s: %v", s.template, err)
	}
	src := buf.String()
	h := sha256.Sum256([]byte(src + fmt.Sprint(s.threads, s.tgmem)))
	name := sanitize(prefix + "_" + string(s.variant) + "_" + s.desc + "_" + hex.EncodeToString(h[:4]))
	if k, ok := c.kernels[name]; ok {
		c.rendered[key] = k
		return k, nil
	}
	k := &Kernel{
		Name: name, Kind: string(op.Kind), Variant: s.variant, Ops: implementsList(op),
		Params: s.params, Threads: s.threads, TGMem: s.tgmem,
		Source: strings.ReplaceAll(src, "KERNEL_NAME", name),
	}
	c.kernels[name] = k
	c.rendered[key] = k
	return k, nil
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

// signature renders the parameter list with the thread attributes every
// kernel receives.
func signature(params []Param) string {
	var parts []string
	for _, p := range params {
		parts = append(parts, fmt.Sprintf("%s %s [[buffer(%d)]]", p.Type, p.Name, p.Index))
	}
	parts = append(parts, "threadgroup float* tg [[threadgroup(0)]]")
	for _, a := range program.ThreadAttrs {
		parts = append(parts, fmt.Sprintf("%s %s [[%s]]", a.Type, a.Name, a.Attr))
	}
	return strings.Join(parts, ",\n    ")
}

func implementsList(op *ir.Op) []string {
	if len(op.Body) == 0 {
		return []string{string(op.Kind)}
	}
	var out []string
	for _, b := range op.Body {
		out = append(out, string(b.Kind))
	}
	return out
}

func implements(op *ir.Op) string {
	if len(op.Body) == 0 {
		return string(op.Kind)
	}
	return string(op.Kind) + " = " + strings.Join(implementsList(op), " + ")
}

// mslFloats renders float32 constants exactly (hex floats keep every bit).
func mslFloats(xs []float32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%sf", hexFloat(x))
	}
	return strings.Join(parts, ", ")
}

func hexFloat(x float32) string {
	s := strconv.FormatFloat(float64(x), 'g', 9, 32)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}
