// Package metal assembles a compiled program's kernels.metal: the common
// header (with the argument struct rendered from codegen/abi), then every
// distinct kernel, sorted by name so the file is deterministic. It lints
// its own output for constructs the Metal-compatibility layer does not
// model, and describes each kernel's signature for mslemu's launch glue.
package metal

import (
	"bytes"
	"fmt"
	"strings"
	"text/template"

	"github.com/minerva-ml/minerva/codegen/abi"
	"github.com/minerva-ml/minerva/codegen/kernels"
	"github.com/minerva-ml/minerva/runtime/mslemu"
	"github.com/minerva-ml/minerva/templates"
)

var header = template.Must(template.ParseFS(templates.FS, "common.metal.tmpl"))

// Source renders kernels.metal.
func Source(model string, ks []*kernels.Kernel) (string, error) {
	var b bytes.Buffer
	if err := header.ExecuteTemplate(&b, "common", map[string]any{"Model": model, "Args": abi.MSL(abi.StepArgs{})}); err != nil {
		return "", fmt.Errorf("BUG: common template: %v", err)
	}
	for _, k := range ks {
		b.WriteString("\n// ---------------------------------------------------------------------------\n")
		fmt.Fprintf(&b, "// %s: %s kernel of %s (%s)\n", k.Name, k.Variant, k.Kind, strings.Join(k.Ops, " + "))
		b.WriteString(strings.TrimSpace(k.Source))
		b.WriteString("\n")
	}
	src := b.String()
	if err := mslemu.Lint(src); err != nil {
		return "", fmt.Errorf("BUG: the emitted Metal uses constructs the compatibility layer cannot check: %w", err)
	}
	return src, nil
}

// attrs are the thread-position parameters every kernel declares (see
// kernels.signature).
var attrs = []mslemu.Param{
	{Name: "tgid", Kind: mslemu.ParamAttr, Attr: "threadgroup_position_in_grid", AttrType: "uint3"},
	{Name: "tid", Kind: mslemu.ParamAttr, Attr: "thread_index_in_threadgroup", AttrType: "uint"},
	{Name: "lane", Kind: mslemu.ParamAttr, Attr: "thread_index_in_simdgroup", AttrType: "uint"},
	{Name: "sg", Kind: mslemu.ParamAttr, Attr: "simdgroup_index_in_threadgroup", AttrType: "uint"},
	{Name: "nsg", Kind: mslemu.ParamAttr, Attr: "simdgroups_per_threadgroup", AttrType: "uint"},
}

// Glue describes every kernel's signature to mslemu, which generates the
// launch code from it rather than re-parsing the source.
func Glue(ks []*kernels.Kernel) []mslemu.Kernel {
	var out []mslemu.Kernel
	for _, k := range ks {
		mk := mslemu.Kernel{Name: k.Name}
		for _, p := range k.Params {
			mk.Params = append(mk.Params, mslemu.Param{Name: p.Name, Kind: mslemu.ParamBuffer, Index: p.Index, Type: p.Type})
		}
		mk.Params = append(mk.Params, mslemu.Param{Name: "tg", Kind: mslemu.ParamThreadgroupMem, Index: 0, Type: "threadgroup float*"})
		mk.Params = append(mk.Params, attrs...)
		out = append(out, mk)
	}
	return out
}
