package mslemu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSwizzlesUpToDate(t *testing.T) {
	got, err := os.ReadFile(filepath.Join("include", "mslemu", "swizzles.inc"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != SwizzleSource() {
		t.Fatal("include/mslemu/swizzles.inc is stale: run go generate ./runtime/mslemu")
	}
	// 2-, 3- and 4-component swizzles of xyzw and rgba.
	for n, count := range map[int]int{2: 4 + 8 + 16, 3: 9 + 27 + 81, 4: 16 + 64 + 256} {
		section := strings.Split(strings.Split(string(got), fmt.Sprintf("#if MSLEMU_SWZ_N == %d\n", n))[1], "#endif")[0]
		if c := strings.Count(section, "\n"); c != 2*count {
			t.Errorf("%d-vectors have %d swizzles, want %d", n, c, 2*count)
		}
	}
}

const tinyKernel = `#include <metal_stdlib>
using namespace metal;
kernel void fill(device float* out [[buffer(0)]], uint gid [[thread_position_in_grid]]) {
  out[gid] = float(gid) * 0.5f;
}
`

var tinyKernels = []Kernel{{Name: "fill", Params: []Param{buf("out", 0, "device float*"), attr("gid", "thread_position_in_grid", "uint")}}}

// A second Build with the same inputs reuses the executable and runs no
// compiler; the wrapper compiler logs each call to show it.
func TestBuildCaches(t *testing.T) {
	needCompiler(t)
	cxx, _ := compilerPath()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls.log")
	wrapper := filepath.Join(dir, "cxx")
	script := fmt.Sprintf("#!/bin/sh\necho \"$@\" >> %s\nexec %s \"$@\"\n", log, cxx)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CXX", wrapper)
	glue, err := Glue(tinyKernels)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(dir, "cache")
	src := tinyKernel + fmt.Sprintf("// %d\n", time.Now().UnixNano())
	exe, err := Build(src, glue, cache)
	if err != nil {
		t.Fatal(err)
	}
	calls := func() int {
		b, _ := os.ReadFile(log)
		return strings.Count(string(b), " -c ") + strings.Count(string(b), " -o mslemu-driver")
	}
	first := calls()
	if first < 2 {
		t.Fatalf("the first Build ran the compiler %d times, want compile and link", first)
	}
	exe2, err := Build(src, glue, cache)
	if err != nil {
		t.Fatal(err)
	}
	if exe2 != exe || calls() != first {
		t.Errorf("second Build: %s with %d compiler calls, want %s with %d", exe2, calls(), exe, first)
	}
	// Another kernel source recompiles the kernels but reuses the driver object.
	exe3, err := Build(src+"// changed\n", glue, cache)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	if exe3 == exe || strings.Count(string(b), "driver.cpp") != 1 {
		t.Errorf("changed source: exe %s (first %s); driver.cpp compiled %d times, want once", exe3, exe, strings.Count(string(b), "driver.cpp"))
	}

	dev, err := Start(exe3)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	out := newBuffer(t, dev, 4*100)
	if err := dev.Dispatch(Dispatch{Kernel: "fill", Threads: grid(100, 1, 1), ThreadsPerThreadgroup: grid(32, 1, 1), Buffers: []Binding{{Index: 0, Buffer: out}}}); err != nil {
		t.Fatal(err)
	}
	for i, v := range floats(out, 100) {
		if v != float32(i)/2 {
			t.Fatalf("out[%d] = %v, want %v", i, v, float32(i)/2)
		}
	}
	if got := dev.Kernels(); len(got) != 1 || got[0] != "fill" {
		t.Errorf("Kernels() = %v", got)
	}
}

func TestBuildReportsCompileErrors(t *testing.T) {
	needCompiler(t)
	src := "#include <metal_stdlib>\nusing namespace metal;\nkernel void fill(device float* out [[buffer(0)]]) {\n  out[0] = undefined_name;\n}\n"
	glue, _ := Glue([]Kernel{{Name: "fill", Params: []Param{buf("out", 0, "device float*")}}})
	_, err := Build(src, glue, testCache(t))
	wantErr(t, err, "mslemu: compiling kernels.metal failed", "kernels.metal:4:", "error:", "undefined_name")
}

func TestBuildWithoutCompiler(t *testing.T) {
	t.Setenv("CXX", "/nonexistent/g++")
	_, err := Build(tinyKernel, "", t.TempDir())
	if !errors.Is(err, errNoCompiler) || !strings.HasPrefix(err.Error(), "mslemu needs a C++17 compiler: apt-get install g++") {
		t.Errorf("got %v, want the missing-compiler error", err)
	}
}
