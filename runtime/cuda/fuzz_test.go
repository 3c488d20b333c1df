package cuda

import (
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/runtime/mslemu"
)

// FuzzTranslate feeds arbitrary text through the MSL tokenizer and the
// rewriting: it must return a source or an error, never panic or hang,
// and a source keeps every line break (NVRTC's line numbers are
// kernels.metal's).
func FuzzTranslate(f *testing.F) {
	for _, s := range []string{
		"#include <metal_stdlib>\nusing namespace metal;\nkernel void k(device float* x [[buffer(0)]], uint tid [[thread_index_in_threadgroup]]) { x[tid] = simd_sum(x[tid]); }\n",
		"constant float T[2] = {0.5h, 1e-3f};\ninline float f(thread float* a) { return max(a[0], 1.0); }",
		"/* unterminated", "\"str", "[[buffer(", "kernel", "kernel void", "a.xy = b.zw; ::max(1, 2); x->device;",
	} {
		f.Add(s)
	}
	k := []mslemu.Kernel{{Name: "k", Params: []mslemu.Param{
		{Name: "x", Kind: mslemu.ParamBuffer, Index: 0, Type: "device float*"},
		{Name: "tid", Kind: mslemu.ParamAttr, Attr: "thread_index_in_threadgroup", AttrType: "uint"},
	}}}
	f.Fuzz(func(t *testing.T, src string) {
		out, err := rewrite(src)
		if err == nil && strings.Count(out, "\n") != strings.Count(src, "\n") {
			t.Fatalf("line breaks: %d in, %d out", strings.Count(src, "\n"), strings.Count(out, "\n"))
		}
		Translate(src, k)
	})
}
