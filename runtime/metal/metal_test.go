package metal

import (
	"errors"
	"strings"
	"testing"
)

// The enum values below are copied from Apple's headers (MTLLibrary.h:
// MTLLanguageVersion; MTLDevice.h: MTLGPUFamily), the oracle for the
// constants this package sends to Metal.

func TestLanguageVersionValuesMatchMTLLibraryH(t *testing.T) {
	for _, c := range []struct {
		v    LanguageVersion
		want uint64 // MTLLanguageVersionX_Y
		text string
	}{
		{MSL2_4, (2 << 16) + 4, "2.4"},
		{MSL3_0, (3 << 16) + 0, "3.0"},
		{MSL3_1, 196609, "3.1"}, // (3 << 16) + 1, the brief's default
		{MSL3_2, (3 << 16) + 2, "3.2"},
		{MSL4_0, (4 << 16) + 0, "4.0"},
	} {
		if uint64(c.v) != c.want || c.v.String() != c.text {
			t.Errorf("MSL %s = %d, want %d (%s)", c.v, uint64(c.v), c.want, c.text)
		}
	}
	if DefaultLanguageVersion != MSL3_1 {
		t.Errorf("DefaultLanguageVersion = %s, want 3.1", DefaultLanguageVersion)
	}
}

func TestCheckLanguageVersion(t *testing.T) {
	for _, c := range []struct {
		v       LanguageVersion
		osMajor int
		want    string // "" for no error
	}{
		{MSL3_1, 14, ""},
		{MSL3_1, 15, ""},
		{MSL3_2, 15, ""},
		{MSL4_0, 26, ""},
		{MSL3_1, 13, "metal: MSL 3.1 needs macOS 14 or later, and this Mac runs macOS 13; compile with MSL 3.0 or update macOS"},
		{MSL4_0, 15, "metal: MSL 4.0 needs macOS 26 or later, and this Mac runs macOS 15; compile with MSL 3.2 or update macOS"},
		{3<<16 + 9, 15, "metal: unknown MSL version 3.9 (MTLLanguageVersion 196617); use one of the metal.MSL* constants"},
	} {
		err := checkLanguageVersion(c.v, c.osMajor)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("checkLanguageVersion(%s, macOS %d) = %q, want %q", c.v, c.osMajor, got, c.want)
		}
	}
}

func TestMaxLanguageVersion(t *testing.T) {
	for os, want := range map[int]LanguageVersion{11: 0, 12: MSL2_4, 13: MSL3_0, 14: MSL3_1, 15: MSL3_2, 16: MSL3_2, 26: MSL4_0} {
		if got := maxLanguageVersion(os); got != want {
			t.Errorf("maxLanguageVersion(%d) = %s, want %s", os, got, want)
		}
	}
}

func TestGPUFamilyValuesMatchMTLDeviceH(t *testing.T) {
	want := map[string]int64{
		"Apple1": 1001, "Apple2": 1002, "Apple3": 1003, "Apple4": 1004, "Apple5": 1005,
		"Apple6": 1006, "Apple7": 1007, "Apple8": 1008, "Apple9": 1009, "Apple10": 1010,
		"Mac2": 2002, "Common1": 3001, "Common2": 3002, "Common3": 3003,
		"Metal3": 5001, "Metal4": 5002,
	}
	if len(gpuFamilies) != len(want) {
		t.Errorf("%d families probed, want %d", len(gpuFamilies), len(want))
	}
	for _, f := range gpuFamilies {
		if want[f.name] != f.value {
			t.Errorf("MTLGPUFamily%s = %d, want %d", f.name, f.value, want[f.name])
		}
		if strings.HasPrefix(f.name, "Apple") && f.value-1000 != int64(f.apple) {
			t.Errorf("family %s has apple = %d", f.name, f.apple)
		}
	}
}

func TestCheckFamily(t *testing.T) {
	if err := checkFamily("Apple M1", 7); err != nil {
		t.Errorf("Apple7: %v", err)
	}
	err := checkFamily("Apple Paravirtual device", 5)
	want := `metal: device "Apple Paravirtual device" supports GPU family Apple5, and Minerva's kernels need Apple7 (M1) or later; ` +
		"a virtual machine's paravirtual GPU is not enough: the Metal backend needs macOS on Apple Silicon; use --backend cpu"
	if err == nil || err.Error() != want {
		t.Errorf("Apple5: got %v\nwant %s", err, want)
	}
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("Apple5 error does not wrap ErrUnsupported")
	}
	if err := checkFamily("x", 0); err == nil || !strings.Contains(err.Error(), "supports no Apple GPU family") {
		t.Errorf("no family: %v", err)
	}
}

func TestNoCopyLength(t *testing.T) {
	const page = 16384 // vm_page_size on Apple Silicon
	const maxLen = 1 << 32
	for _, c := range []struct {
		addr uintptr
		n    int
		want int
		err  string
	}{
		{0x1_0000_0000, 1, page, ""},
		{0x1_0000_0000, 12000, page, ""},
		{0x1_0000_0000, page, page, ""},
		{0x1_0000_0000, page + 1, 2 * page, ""},
		{0x1_0000_4000, 3 * page, 3 * page, ""},
		{0x1_0000_0004, 100, 0, "metal: NewBufferNoCopy: memory at 0x100000004 is 4 bytes past a 16384-byte page boundary; " +
			"Metal wraps whole pages, so pass the whole mapping from mmap (e.g. the checkpoint file) and address tensors with buffer offsets"},
		{0x1_0000_0000, 0, 0, "metal: NewBufferNoCopy of an empty region; pass the memory-mapped bytes to wrap"},
		{0x1_0000_0000, maxLen + 1, 0, "metal: NewBufferNoCopy: 4294967297 bytes (4294983680 rounded up to whole pages) exceed this device's maxBufferLength of 4294967296 bytes; " +
			"map the file in several page-aligned pieces, each at most that long"},
	} {
		got, err := noCopyLength(c.addr, c.n, page, maxLen)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != c.want || msg != c.err {
			t.Errorf("noCopyLength(%#x, %d) = %d, %q; want %d, %q", c.addr, c.n, got, msg, c.want, c.err)
		}
	}
}

func TestCheckDispatch(t *testing.T) {
	if err := checkDispatch("Dispatch", [3]int{4, 1, 1}, [3]int{1024, 1, 1}, 1024); err != nil {
		t.Errorf("1024 threads within 1024: %v", err)
	}
	for _, c := range []struct {
		what        string
		grid, group [3]int
		want        string
	}{
		{"Dispatch", [3]int{4, 1, 1}, [3]int{32, 32, 2}, "Dispatch: 2048 threads per threadgroup ([32 32 2]) exceed the pipeline's maxTotalThreadsPerThreadgroup of 1024; use smaller threadgroups"},
		{"Dispatch", [3]int{0, 1, 1}, [3]int{32, 1, 1}, "Dispatch: every dimension must be at least 1, got threadgroups [0 1 1] and threads per threadgroup [32 1 1]"},
		{"DispatchThreads", [3]int{100, 1, 1}, [3]int{32, 0, 1}, "DispatchThreads: every dimension must be at least 1, got threads [100 1 1] and threads per threadgroup [32 0 1]"},
	} {
		err := checkDispatch(c.what, c.grid, c.group, 1024)
		if err == nil || err.Error() != c.want {
			t.Errorf("checkDispatch(%v, %v) = %v, want %s", c.grid, c.group, err, c.want)
		}
	}
}

func TestGPUErrorMessage(t *testing.T) {
	e := &GPUError{
		Label: "decode step 3", Code: 3, Reason: commandBufferErrorName(3),
		Description: "Caused GPU Address Fault Error (0000000b:kIOGPUCommandBufferCallbackErrorPageFault)",
		Encoders: []EncoderStatus{
			{"layer0.attn", encoderStateName(1)},
			{"layer0.moe", encoderStateName(4)},
			{"layer1.attn", encoderStateName(3)},
		},
	}
	want := `metal: command buffer "decode step 3" failed: page fault (MTLCommandBufferError 3): ` +
		`Caused GPU Address Fault Error (0000000b:kIOGPUCommandBufferCallbackErrorPageFault); ` +
		`faulting encoder: "layer0.moe"; encoders in order: "layer0.attn" completed, "layer0.moe" faulted, "layer1.attn" pending`
	if got := e.Error(); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// MTLCommandBuffer.h: MTLCommandBufferErrorTimeout = 2, ...StackOverflow = 12.
	for code, name := range map[int64]string{2: "timeout", 8: "out of memory", 12: "stack overflow", 5: "unknown error 5"} {
		if got := commandBufferErrorName(code); got != name {
			t.Errorf("commandBufferErrorName(%d) = %q, want %q", code, got, name)
		}
	}
}

func TestInfoString(t *testing.T) {
	i := Info{
		Name: "Apple M2 Pro", HasUnifiedMemory: true,
		RecommendedMaxWorkingSetSize: 22906503168, MaxBufferLength: 17179869184,
		MaxThreadgroupMemoryLength: 32768, AppleFamily: 8,
		Families:        []string{"Apple7", "Apple8", "Mac2", "Metal3"},
		LanguageVersion: MSL3_1, MaxLanguageVersion: MSL3_2,
		OS: OSVersion{15, 1, 0}, OSDescription: "Version 15.1 (Build 24B83)",
	}
	want := `device:                  Apple M2 Pro
unified memory:          true
recommended working set: 22906503168 bytes (21.3 GiB)
max buffer length:       17179869184 bytes (16.0 GiB)
threadgroup memory:      32768 bytes
GPU family:              Apple8 (supports Apple7, Apple8, Mac2, Metal3)
MSL version:             3.1 (newest this macOS compiles: 3.2)
macOS:                   15.1.0 (Version 15.1 (Build 24B83))
`
	if got := i.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
