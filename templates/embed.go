// Package templates holds the Metal kernel templates, one file per op the
// optimiser emits (base ops and fused ops), plus common.metal.tmpl with the
// maths every kernel shares. codegen/kernels fills them with a model's
// constants; the .metal they produce is self-contained.
package templates

import "embed"

// FS holds every template.
//
//go:embed *.metal.tmpl
var FS embed.FS
