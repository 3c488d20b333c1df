package abi

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLayoutMatchesCompiledStruct compiles the rendered Metal struct with
// the system C++ compiler (Metal's scalar types have C++'s sizes and
// alignments) and checks every field's offset and the struct's size
// against Go's layout and the bytes Bytes packs.
func TestLayoutMatchesCompiledStruct(t *testing.T) {
	cxx, err := exec.LookPath("g++")
	if err != nil {
		t.Skip("needs a C++ compiler (apt-get install g++)")
	}
	var prog strings.Builder
	prog.WriteString("#include <cstdio>\n#include <cstddef>\ntypedef unsigned int uint;\n")
	prog.WriteString(MSL(StepArgs{}))
	prog.WriteString("int main() {\n  std::printf(\"size %zu\\n\", sizeof(StepArgs));\n")
	for _, f := range Fields(StepArgs{}) {
		prog.WriteString("  std::printf(\"" + f.Name + " %zu\\n\", offsetof(StepArgs, " + f.Name + "));\n")
	}
	prog.WriteString("}\n")
	dir := t.TempDir()
	src := filepath.Join(dir, "layout.cpp")
	if err := os.WriteFile(src, []byte(prog.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "layout")
	if out, err := exec.Command(cxx, "-std=c++17", "-o", exe, src).CombinedOutput(); err != nil {
		t.Fatalf("compiling the rendered struct: %v\n%s", err, out)
	}
	out, err := exec.Command(exe).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, v, _ := strings.Cut(line, " ")
		n, _ := strconv.Atoi(v)
		got[name] = n
	}
	if got["size"] != len(StepArgs{}.Bytes()) {
		t.Errorf("Metal struct is %d bytes; Bytes packs %d", got["size"], len(StepArgs{}.Bytes()))
	}
	for _, f := range Fields(StepArgs{}) {
		if got[f.Name] != f.Offset {
			t.Errorf("field %s: Metal offset %d, Go offset %d", f.Name, got[f.Name], f.Offset)
		}
	}
	// The packed bytes put each field at its offset.
	a := StepArgs{Seq: 0x01020304, Pos: 0x0a0b0c0d, Batched: 1, SeqBytes: 0x11223344}
	a.Tok[2*MaxStepTokens-1] = 0x55667788
	b := a.Bytes()
	if b[0] != 0x04 || b[4] != 0x0d || b[8] != 1 || b[12] != 0x44 || b[len(b)-4] != 0x88 {
		t.Errorf("Bytes does not pack little-endian fields at their offsets: % x", b)
	}
}
