package mslemu

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/minerva-ml/minerva/program"
)

// ParamKind says how a kernel parameter receives its value.
type ParamKind int

const (
	// ParamBuffer is a [[buffer(n)]] parameter: a device or constant pointer or
	// reference, bound with Binding.
	ParamBuffer ParamKind = iota
	// ParamThreadgroupMem is a [[threadgroup(n)]] pointer whose length the host
	// sets with ThreadgroupMemory.
	ParamThreadgroupMem
	// ParamAttr is a thread-position attribute such as [[thread_position_in_grid]].
	ParamAttr
)

func (k ParamKind) String() string {
	switch k {
	case ParamBuffer:
		return "ParamBuffer"
	case ParamThreadgroupMem:
		return "ParamThreadgroupMem"
	case ParamAttr:
		return "ParamAttr"
	}
	return fmt.Sprintf("ParamKind(%d)", int(k))
}

// Kernel describes the signature of one kernel function of kernels.metal,
// as the code generator emitted it.
type Kernel struct {
	// Name is the kernel function's name. A name qualified with a C++
	// namespace (ns::fn) is called as written and dispatched as fn.
	Name   string
	Params []Param
	// MaxTotalThreadsPerThreadgroup repeats the kernel's
	// [[max_total_threads_per_threadgroup(n)]]; 0 means none (1024).
	MaxTotalThreadsPerThreadgroup int
}

// Param describes one kernel parameter.
type Param struct {
	Name string
	Kind ParamKind
	// Index is n of [[buffer(n)]] or [[threadgroup(n)]].
	Index int
	// Type is the MSL parameter type as written, e.g. "device const float*",
	// "constant RmsnormArgs&", "threadgroup float*".
	Type string
	// Attr names the attribute of a ParamAttr parameter, e.g.
	// "thread_position_in_grid"; AttrType is its declared type ("uint",
	// "ushort2", "uint3", ...).
	Attr     string
	AttrType string
}

// attrSource says where the glue finds an attribute's value: a field of
// mslemu::rt::Thread (three components) or a C++ expression (one).
type attrSource struct {
	field string
	three bool
}

var attrSources = map[string]attrSource{
	"thread_position_in_grid":             {"thread_position_in_grid", true},
	"threadgroup_position_in_grid":        {"threadgroup_position_in_grid", true},
	"thread_position_in_threadgroup":      {"thread_position_in_threadgroup", true},
	"threads_per_threadgroup":             {"threads_per_threadgroup", true},
	"threadgroups_per_grid":               {"threadgroups_per_grid", true},
	"threads_per_grid":                    {"threads_per_grid", true},
	"dispatch_threads_per_threadgroup":    {"dispatch_threads_per_threadgroup", true},
	"thread_index_in_threadgroup":         {"T->thread_index_in_threadgroup", false},
	"simdgroup_index_in_threadgroup":      {"T->simdgroup_index_in_threadgroup", false},
	"thread_index_in_simdgroup":           {"T->thread_index_in_simdgroup", false},
	"simdgroups_per_threadgroup":          {"T->simdgroups_per_threadgroup", false},
	"threads_per_simdgroup":               {"32u", false},
	"thread_execution_width":              {"32u", false},
	"quadgroup_index_in_threadgroup":      {"T->thread_index_in_threadgroup / 4u", false},
	"thread_index_in_quadgroup":           {"T->thread_index_in_threadgroup % 4u", false},
	"quadgroups_per_threadgroup":          {"(T->threads_per_threadgroup[0] * T->threads_per_threadgroup[1] * T->threads_per_threadgroup[2] + 3u) / 4u", false},
	"dispatch_simdgroups_per_threadgroup": {"T->simdgroups_per_threadgroup", false},
}

var (
	identRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	qualNameRE = regexp.MustCompile(`^(?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*$`)
	typeRE     = regexp.MustCompile(`^[A-Za-z0-9_:<>, *&]+$`)
	wordRE     = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// maxThreadsPerThreadgroup is Metal's limit on threads per threadgroup.
const maxThreadsPerThreadgroup = 1024

// maxBindings is Metal's number of buffer and threadgroup-memory slots.
const maxBindings = 31

// Signatures describes compiled kernels' signatures as Glue (and
// runtime/cuda's translation) read them, rather than re-parsing the
// source: the buffers, the threadgroup memory, then the thread positions
// every kernel declares (program.ThreadAttrs).
func Signatures(ks []*program.Kernel) []Kernel {
	var out []Kernel
	for _, k := range ks {
		mk := Kernel{Name: k.Name}
		for _, p := range k.Params {
			mk.Params = append(mk.Params, Param{Name: p.Name, Kind: ParamBuffer, Index: p.Index, Type: p.Type})
		}
		mk.Params = append(mk.Params, Param{Name: "tg", Kind: ParamThreadgroupMem, Index: 0, Type: "threadgroup float*"})
		for _, a := range program.ThreadAttrs {
			mk.Params = append(mk.Params, Param{Name: a.Name, Kind: ParamAttr, Attr: a.Attr, AttrType: a.Type})
		}
		out = append(out, mk)
	}
	return out
}

// Glue returns the C++ launch glue for the kernels: one launcher per kernel
// with the uniform signature void(const Launch*, const Thread*), and the
// table mslemu_kernels the driver dispatches from. The glue is compiled in
// the same translation unit as kernels.metal, after it.
func Glue(kernels []Kernel) (string, error) {
	if len(kernels) == 0 {
		return "", errors.New("mslemu.Glue: no kernels to describe")
	}
	var errs []error
	seen := map[string]bool{}
	var b strings.Builder
	b.WriteString("// Code generated by mslemu.Glue; DO NOT EDIT.\n")
	b.WriteString("#include <mslemu/metal_compat.hpp>\n\nnamespace {\n")
	var table strings.Builder
	for ki, k := range kernels {
		short, err := checkKernel(k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[short] {
			errs = append(errs, fmt.Errorf("kernel %s: described twice", short))
			continue
		}
		seen[short] = true
		args, infos, err := kernelArgs(k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(&b, "void mslemu_launch_%d(const ::mslemu::rt::Launch* L, const ::mslemu::rt::Thread* T) {\n", ki)
		b.WriteString("  (void)L;\n  (void)T;\n")
		fmt.Fprintf(&b, "  %s(", k.Name)
		for i, a := range args {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("\n      " + a)
		}
		b.WriteString(");\n}\n")
		fmt.Fprintf(&b, "const ::mslemu::rt::ParamInfo mslemu_params_%d[] = {", ki)
		if len(infos) == 0 {
			b.WriteString("{0, 0, nullptr}")
		}
		b.WriteString(strings.Join(infos, ", "))
		b.WriteString("};\n\n")
		maxThreads := k.MaxTotalThreadsPerThreadgroup
		if maxThreads == 0 {
			maxThreads = maxThreadsPerThreadgroup
		}
		fmt.Fprintf(&table, "    {%q, &mslemu_launch_%d, %du, mslemu_params_%d, %du},\n", short, ki, maxThreads, ki, len(infos))
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	b.WriteString("}  // namespace\n\n")
	b.WriteString("extern \"C\" const ::mslemu::rt::KernelInfo mslemu_kernels[] = {\n")
	b.WriteString(table.String())
	b.WriteString("};\n")
	fmt.Fprintf(&b, "extern \"C\" const unsigned mslemu_kernel_count = %du;\n", len(kernels))
	return b.String(), nil
}

// checkKernel validates the parts of a kernel description that do not
// depend on its parameters and returns the name it is dispatched by.
func checkKernel(k Kernel) (string, error) {
	if !qualNameRE.MatchString(k.Name) {
		return "", fmt.Errorf("kernel %q: the name is not a C++ identifier", k.Name)
	}
	short := k.Name[strings.LastIndex(k.Name, ":")+1:]
	if k.MaxTotalThreadsPerThreadgroup < 0 || k.MaxTotalThreadsPerThreadgroup > maxThreadsPerThreadgroup {
		return "", fmt.Errorf("kernel %s: MaxTotalThreadsPerThreadgroup %d is outside 0..%d", short, k.MaxTotalThreadsPerThreadgroup, maxThreadsPerThreadgroup)
	}
	return short, nil
}

// kernelArgs returns the C++ argument expressions of a kernel call and the
// ParamInfo initialisers of its bound parameters.
func kernelArgs(k Kernel) (args, infos []string, err error) {
	bufSeen := map[int]string{}
	tgSeen := map[int]string{}
	names := map[string]bool{}
	for _, p := range k.Params {
		where := fmt.Sprintf("kernel %s: parameter %q", k.Name, p.Name)
		if !identRE.MatchString(p.Name) {
			return nil, nil, fmt.Errorf("%s: the name is not a C++ identifier", where)
		}
		if names[p.Name] {
			return nil, nil, fmt.Errorf("%s: declared twice", where)
		}
		names[p.Name] = true
		switch p.Kind {
		case ParamBuffer, ParamThreadgroupMem:
			if p.Index < 0 || p.Index >= maxBindings {
				return nil, nil, fmt.Errorf("%s: index %d is outside Metal's 0..%d", where, p.Index, maxBindings-1)
			}
			seen, attr := bufSeen, "buffer"
			if p.Kind == ParamThreadgroupMem {
				seen, attr = tgSeen, "threadgroup"
			}
			if other, dup := seen[p.Index]; dup {
				return nil, nil, fmt.Errorf("%s: [[%s(%d)]] is also used by %q", where, attr, p.Index, other)
			}
			seen[p.Index] = p.Name
			expr, err := bindingArg(p)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", where, err)
			}
			args = append(args, expr)
			kind := 0
			if p.Kind == ParamThreadgroupMem {
				kind = 1
			}
			infos = append(infos, fmt.Sprintf("{%d, %d, %q}", kind, p.Index, p.Name))
		case ParamAttr:
			// An attribute's type is AttrType; a Type, if given, must still
			// be a plain MSL type, so a description never carries text the
			// glue would not check.
			if p.Type != "" && !typeRE.MatchString(p.Type) {
				return nil, nil, fmt.Errorf("%s: type %q has characters outside an MSL type", where, p.Type)
			}
			expr, err := attrArg(p)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", where, err)
			}
			args = append(args, expr)
		default:
			return nil, nil, fmt.Errorf("%s: unknown kind %v", where, p.Kind)
		}
	}
	return args, infos, nil
}

func bindingArg(p Param) (string, error) {
	// The raw text must be a plain MSL type: spaces around it are trimmed,
	// but no other whitespace or punctuation passes.
	t := strings.TrimSpace(p.Type)
	if !typeRE.MatchString(p.Type) || !typeRE.MatchString(t) {
		return "", fmt.Errorf("type %q has characters outside an MSL type", p.Type)
	}
	words := map[string]bool{}
	for _, w := range wordRE.FindAllString(t, -1) {
		words[w] = true
	}
	if p.Kind == ParamThreadgroupMem {
		if !words["threadgroup"] || !strings.HasSuffix(t, "*") {
			return "", fmt.Errorf("type %q of a [[threadgroup(%d)]] parameter must be a threadgroup pointer, e.g. \"threadgroup float*\"", p.Type, p.Index)
		}
		return fmt.Sprintf("(%s)(L->tgmem[%d])", t, p.Index), nil
	}
	if !words["device"] && !words["constant"] {
		return "", fmt.Errorf("type %q of a [[buffer(%d)]] parameter must name the device or constant address space", p.Type, p.Index)
	}
	switch {
	case strings.HasSuffix(t, "*"):
		return fmt.Sprintf("(%s)(L->buffers[%d])", t, p.Index), nil
	case strings.HasSuffix(t, "&"):
		base := strings.TrimSpace(strings.TrimSuffix(t, "&"))
		return fmt.Sprintf("*(%s*)(L->buffers[%d])", base, p.Index), nil
	}
	return "", fmt.Errorf("type %q of a [[buffer(%d)]] parameter must be a pointer or a reference", p.Type, p.Index)
}

var attrTypes = map[string]int{
	"uint": 1, "ushort": 1, "uint2": 2, "ushort2": 2, "uint3": 3, "ushort3": 3,
}

func attrArg(p Param) (string, error) {
	src, ok := attrSources[p.Attr]
	if !ok {
		return "", fmt.Errorf("attribute [[%s]] is not one mslemu provides (known: %s)", p.Attr, strings.Join(sortedKeys(attrSources), ", "))
	}
	n, ok := attrTypes[p.AttrType]
	if !ok {
		return "", fmt.Errorf("attribute type %q must be one of uint, ushort, uint2, ushort2, uint3, ushort3", p.AttrType)
	}
	if src.three {
		return fmt.Sprintf("::mslemu::glue::attr3<%s>(T->%s)", p.AttrType, src.field), nil
	}
	if n != 1 {
		return "", fmt.Errorf("attribute [[%s]] is a scalar; declare it uint or ushort, not %s", p.Attr, p.AttrType)
	}
	return fmt.Sprintf("%s(%s)", p.AttrType, src.field), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
