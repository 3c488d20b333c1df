package msl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLintAcceptsTestKernels(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "runtime", "mslemu", "testdata", "kernels.metal"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Lint(string(src)); err != nil {
		t.Fatalf("Lint rejects correct kernels:\n%v", err)
	}
}

const lintPrelude = "#include <metal_stdlib>\nusing namespace metal;\n"

func TestLintRejects(t *testing.T) {
	for _, c := range []struct {
		name, src, construct string
		line                 int
	}{
		{"function constant", "constant bool use_bias [[function_constant(0)]];\n", "function constant ([[function_constant(n)]])", 3},
		{"threadgroup array in a body", "kernel void k(device float* o [[buffer(0)]]) {\n  threadgroup float buf[256];\n  o[0] = buf[0];\n}\n",
			"threadgroup variable declared in a function body", 4},
		{"threadgroup scalar in a body", "kernel void k() {\n  threadgroup atomic_uint n;\n}\n", "threadgroup variable declared in a function body", 4},
		{"texture", "kernel void k(texture2d<float> t [[texture(0)]]) {}\n", "texture", 3},
		{"sampler", "kernel void k(sampler s [[sampler(0)]]) {}\n", "sampler", 3},
		{"imageblock", "struct S { float x [[imageblock_data]]; };\n", "imageblock", 3},
		{"stage_in", "kernel void k(float4 p [[stage_in]]) {}\n", "[[stage_in]]", 3},
		{"vertex function", "vertex float4 vs(uint v [[vertex_id]]) { return 0; }\n", "vertex or fragment function", 3},
		{"indirect command buffer", "kernel void k(device command_buffer* cb [[buffer(0)]]) {}\n", "indirect command buffer", 3},
		{"ray tracing", "kernel void k() {\n  raytracing::intersector<> i;\n}\n", "ray tracing", 4},
		{"pragma METAL", "#pragma METAL internals : enable\n", "#pragma METAL", 3},
		{"visible function", "[[visible]] float f(float x) { return x; }\n", "visible function", 3},
		{"host_name", "template [[host_name(\"k_f32\")]] kernel void k<float>(device float*);\n", "[[host_name]] kernel instantiation", 3},
		{"thread_elements", "kernel void k() {\n  simdgroup_float8x8 m;\n  float2 e = m.thread_elements()[0];\n}\n", "simdgroup_matrix thread_elements()", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Lint(lintPrelude + c.src)
			var le *LintError
			if !errors.As(err, &le) {
				t.Fatalf("Lint returned %v, want a *LintError", err)
			}
			if len(le.Issues) != 1 {
				t.Fatalf("got %d issues, want 1:\n%v", len(le.Issues), err)
			}
			is := le.Issues[0]
			if is.Construct != c.construct || is.Line != c.line {
				t.Errorf("got %q at line %d, want %q at line %d", is.Construct, is.Line, c.construct, c.line)
			}
			if !strings.HasPrefix(err.Error(), "kernels.metal:") || !strings.Contains(err.Error(), c.construct+" is not modelled by mslemu: ") {
				t.Errorf("message %q does not name the construct", err)
			}
		})
	}
}

func TestLintAccepts(t *testing.T) {
	for _, src := range []string{
		"kernel void k(threadgroup float* s [[threadgroup(0)]], uint t [[thread_index_in_threadgroup]]) {\n" +
			"  threadgroup float* row = s + t * 4;\n" +
			"  threadgroup const float& r = s[0];\n" +
			"  threadgroup float4* v = (threadgroup float4*)s;\n" +
			"  auto p = static_cast<threadgroup float*>(s);\n" +
			"  threadgroup_barrier(mem_flags::mem_threadgroup);\n" +
			"  for (threadgroup float* q = s; q < s + 4; q++) *q = 0;\n" +
			"}\n",
		"// threadgroup float buf[256]; texture2d sampler [[function_constant(0)]]\n" +
			"/* #pragma METAL internals */\n" +
			"constant char* s = \"threadgroup float x; [[stage_in]]\";\n",
		"float depth_of(float vertex_count) { float depth = vertex_count; return depth; }\n",
	} {
		if err := Lint(lintPrelude + src); err != nil {
			t.Errorf("Lint rejects valid source:\n%s\n%v", src, err)
		}
	}
}

func TestLintReportsAllIssuesInLineOrder(t *testing.T) {
	src := lintPrelude + "#pragma METAL internals : enable\nkernel void k(sampler s) {\n  threadgroup float a[4];\n}\nconstant int n [[function_constant(1)]];\n"
	err := Lint(src)
	want := "kernels.metal:3: #pragma METAL is not modelled by mslemu: the layer has no Metal internals\n" +
		"kernels.metal:4: sampler is not modelled by mslemu: use device buffers\n" +
		"kernels.metal:5: threadgroup variable declared in a function body is not modelled by mslemu: pass it as a `threadgroup T* name [[threadgroup(n)]]` kernel parameter and set its length with ThreadgroupMemory\n" +
		"kernels.metal:7: function constant ([[function_constant(n)]]) is not modelled by mslemu: specialise the source text instead"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func FuzzLint(f *testing.F) {
	src, err := os.ReadFile(filepath.Join("..", "..", "runtime", "mslemu", "testdata", "kernels.metal"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(src))
	f.Add(lintPrelude + "kernel void k() { threadgroup float a[4]; }")
	f.Add("\"unterminated /* 'x")
	f.Add("threadgroup")
	f.Fuzz(func(t *testing.T, src string) {
		err := Lint(src)
		if err2 := Lint(src); (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatal("Lint is not deterministic")
		}
		var le *LintError
		if err != nil && (!errors.As(err, &le) || len(le.Issues) == 0) {
			t.Fatalf("Lint returned %T %v", err, err)
		}
		if le != nil {
			lines := strings.Count(src, "\n") + 1
			for _, is := range le.Issues {
				if is.Line < 1 || is.Line > lines {
					t.Fatalf("issue on line %d of a %d-line source", is.Line, lines)
				}
			}
		}
	})
}
