package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minerva-ml/minerva/compiler"
	"github.com/minerva-ml/minerva/internal/golden"
	"github.com/minerva-ml/minerva/runtime/mslemu"
)

// translateCase compiles the program a golden case names (args: arch=,
// kv=, disable=) and translates its kernels.metal.
func translateCase(t *testing.T, a *golden.Archive) (string, string) {
	t.Helper()
	args, ok := a.Get("args")
	if !ok {
		t.Fatal("the case has no args section")
	}
	kv := map[string]string{}
	for _, f := range strings.Fields(args) {
		k, v, _ := strings.Cut(f, "=")
		kv[k] = v
	}
	opts, err := compiler.SourceOptions(kv["arch"], "", nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Plan = compiler.PlanOptions{KV: kv["kv"], Ctx: 256, Batch: 16}
	if d := kv["disable"]; d != "" {
		opts.Disable = strings.Split(d, ",")
	}
	u, err := compiler.Compile(opts)
	if err != nil {
		t.Fatal(err)
	}
	descs := mslemu.Signatures(u.Generated.Kernels)
	for i, k := range u.Generated.Kernels {
		descs[i].MaxTotalThreadsPerThreadgroup = k.Threads[0] * k.Threads[1] * k.Threads[2]
	}
	src, ks, err := Translate(u.Generated.Metal, descs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != len(u.Generated.Kernels) {
		t.Fatalf("%d entries for %d kernels", len(ks), len(u.Generated.Kernels))
	}
	if !strings.Contains(src, Prelude) {
		t.Fatal("the translated source does not carry the prelude")
	}
	return src, strings.Replace(src, Prelude, "// (prelude.cuh)\n", 1)
}

// TestTranslateGolden checks the CUDA source generated for every shipped
// kernel: both shipped architectures and the all-ops model, in every KV
// format (f16, q4, f32, q8), fused and unfused.
func TestTranslateGolden(t *testing.T) {
	golden.Cases(t, "testdata/golden", func(t *testing.T, path string, a *golden.Archive) {
		_, body := translateCase(t, a)
		golden.Check(t, path, a, []string{"args"}, map[string]string{"kernels.cu": body})
	})
}

// TestTranslatedSourceCompiles compiles each golden case's full source
// (prelude included) with g++ -fsyntax-only against testdata/host_shim.h,
// which stands in for what NVRTC predefines. NVRTC itself runs only on a
// machine with the CUDA toolkit (runtime/gpu's CUDA tests).
func TestTranslatedSourceCompiles(t *testing.T) {
	gxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("needs g++ (apt-get install g++); .ci/run installs it")
	}
	shim, err := filepath.Abs("testdata/host_shim.h")
	if err != nil {
		t.Fatal(err)
	}
	golden.Cases(t, "testdata/golden", func(t *testing.T, path string, a *golden.Archive) {
		src, _ := translateCase(t, a)
		f := filepath.Join(t.TempDir(), "kernels.cu")
		if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(gxx, "-std=c++17", "-fsyntax-only", "-Wno-unknown-pragmas", "-include", shim, "-x", "c++", f).CombinedOutput()
		if err != nil {
			t.Fatalf("g++ rejects the translated source:\n%s", out)
		}
	})
}

// TestRewrite checks the token rewriting on the constructs that a text
// substitution gets wrong.
func TestRewrite(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// device is dropped as a token; __device__ is another token.
		{"device float* x; __device__ int y;", " float* x; __device__ int y;"},
		{"constant float T[2] = {1, 2};", "__device__ const float T[2] = {1, 2};"},
		{"void f(constant Args& a) { constant int k = 1; }", "void f(const Args& a) { const int k = 1; }"},
		{"kernel void k(device float* x [[buffer(0)]]) {}", "static __device__ __forceinline__ void k__msl( float* x ) {}"},
		{"float4 v = float4(0); v.xy = 1; max(a, b); int max = 2;", "metal::float4 v = metal::float4(0); v.xy = 1; metal::max(a, b); int max = 2;"},
		{"half h = 1.5h; threadgroup_barrier(mem_flags::mem_threadgroup);", "metal::half h = metal::half(1.5f); metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);"},
		{"#include <metal_stdlib>\nusing namespace metal;", "// #include <metal_stdlib>\n/* using namespace metal; */"},
		{"// device in a comment\n\"device\"", "// device in a comment\n\"device\""},
		{"precise::exp(x)", "metal::precise::exp(x)"},
	} {
		got, err := rewrite(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("rewrite(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	if _, err := rewrite("kernel int k() {}"); err == nil {
		t.Error("a kernel that is not `kernel void NAME(` was accepted")
	}
	if _, err := rewrite("void f() {"); err == nil {
		t.Error("unbalanced braces were accepted")
	}
}

// TestEntryRefusesWhatItCannotLaunch checks the clear errors for kernel
// signatures the CUDA entries cannot express.
func TestEntryRefusesWhatItCannotLaunch(t *testing.T) {
	for _, c := range []struct {
		p    mslemu.Param
		want string
	}{
		{mslemu.Param{Name: "x", Kind: mslemu.ParamBuffer, Index: 1, Type: "float*"}, "device or constant pointer"},
		{mslemu.Param{Name: "x", Kind: mslemu.ParamBuffer, Index: 1, Type: "device float*; evil()"}, "outside an MSL type"},
		{mslemu.Param{Name: "p", Kind: mslemu.ParamAttr, Attr: "thread_position_in_grid", AttrType: "float"}, "not one the CUDA layer provides"},
		{mslemu.Param{Name: "tg", Kind: mslemu.ParamThreadgroupMem, Index: 0, Type: "device float*"}, "threadgroup pointer"},
	} {
		_, _, err := Translate("kernel void k() {}", []mslemu.Kernel{{Name: "k", Params: []mslemu.Param{c.p}}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one saying %q", c.p, err, c.want)
		}
	}
}

// TestSwizzles checks the generated swizzle members: every 2- to 4-component
// sequence of each vector's components, in both spellings.
func TestSwizzles(t *testing.T) {
	m := swizzleMacros()
	for _, want := range []string{") xy;", ") yx;", ") xyzw;", ") wzyx;", ") rgba;", ") bgr;", ") xxxx;"} {
		if !strings.Contains(m, want) {
			t.Errorf("no swizzle %s", want)
		}
	}
	if n := strings.Count(m, "MINERVA_SWZ("); n != 2*(4+8+16+9+27+81+16+64+256) {
		t.Errorf("%d swizzle members, want %d", n, 2*(4+8+16+9+27+81+16+64+256))
	}
}

// TestRewriteKeepsLines checks that constructs the rewriting drops keep
// their line breaks, so NVRTC's errors point at kernels.metal's lines.
func TestRewriteKeepsLines(t *testing.T) {
	for _, in := range []string{
		"kernel\nvoid\nk(device float* x [[\nbuffer(0)\n]]) {}\n",
		"using\nnamespace\nmetal\n;\nint x;",
	} {
		got, err := rewrite(in)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(got, "\n") != strings.Count(in, "\n") {
			t.Errorf("rewrite(%q) = %q: %d line breaks, want %d", in, got, strings.Count(got, "\n"), strings.Count(in, "\n"))
		}
	}
}

// TestEntryWaitsUnlessTheKernelDoes checks programmatic dependent launch's
// wait: at the entry of a kernel that does not call wait_inputs, and left
// to the kernel that does (only it knows which of its loads are weights),
// even where a helper after it or a comment mentions the name.
func TestEntryWaitsUnlessTheKernelDoes(t *testing.T) {
	src := `kernel void plain(device float* x [[buffer(0)]]) { x[0] = 1; }
// wait_inputs in a comment is not a call
kernel void early(device const float* w [[buffer(0)]], device float* x [[buffer(1)]]) {
  float v = w[0];
  { wait_inputs(); }
  x[0] = v;
}
kernel void after(device float* x [[buffer(0)]]) { if (x[0] > 0) { x[1] = 2; } }
inline void helper() { wait_inputs(); }
`
	buf := func(i int, typ string) mslemu.Param {
		return mslemu.Param{Name: "xw"[i : i+1], Kind: mslemu.ParamBuffer, Index: i, Type: typ}
	}
	out, _, err := Translate(src, []mslemu.Kernel{
		{Name: "plain", Params: []mslemu.Param{buf(0, "device float*")}},
		{Name: "early", Params: []mslemu.Param{buf(1, "device const float*"), buf(0, "device float*")}},
		{Name: "after", Params: []mslemu.Param{buf(0, "device float*")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	entries := out[strings.Index(out, "---- entries"):]
	for name, waits := range map[string]bool{"plain": true, "early": false, "after": true} {
		at := strings.Index(entries, "void "+name+"(")
		if at < 0 {
			t.Fatalf("no entry for %s in\n%s", name, entries)
		}
		e := entries[at:]
		e = e[:strings.Index(e, "\n}\n")]
		if got := strings.Contains(e, "griddepcontrol.wait"); got != waits {
			t.Errorf("entry of %s: waits %v, want %v:\n%s", name, got, waits, e)
		}
	}
}
