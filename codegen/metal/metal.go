// Package metal assembles a compiled program's kernels.metal: the common
// header (with the argument struct rendered from program/abi), then every
// distinct kernel, sorted by name so the file is deterministic. It lints
// its own output for constructs the Metal-compatibility layer does not
// model (internal/msl).
package metal

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"text/template"

	"github.com/minerva-ml/minerva/codegen/kernels"
	"github.com/minerva-ml/minerva/internal/msl"
	"github.com/minerva-ml/minerva/program/abi"
	"github.com/minerva-ml/minerva/templates"
)

// header is parsed on first use, not at package initialisation, which
// every minervac and minerva command would pay, kernels or not.
var header = sync.OnceValue(func() *template.Template {
	return template.Must(template.ParseFS(templates.FS, "common.metal.tmpl"))
})

// Source renders kernels.metal.
func Source(model string, ks []*kernels.Kernel) (string, error) {
	var b bytes.Buffer
	if err := header().ExecuteTemplate(&b, "common", map[string]any{"Model": model, "Args": abi.MSL(abi.StepArgs{})}); err != nil {
		return "", fmt.Errorf("BUG: common template: %v", err)
	}
	for _, k := range ks {
		b.WriteString("\n// ---------------------------------------------------------------------------\n")
		fmt.Fprintf(&b, "// %s: %s kernel of %s (%s)\n", k.Name, k.Variant, k.Kind, strings.Join(k.Ops, " + "))
		b.WriteString(strings.TrimSpace(k.Source))
		b.WriteString("\n")
	}
	src := b.String()
	if err := msl.Lint(src); err != nil {
		return "", fmt.Errorf("BUG: the emitted Metal uses constructs the compatibility layer cannot check: %w", err)
	}
	return src, nil
}
