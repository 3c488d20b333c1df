// Package metal is Minerva's thin layer over Apple's Metal API: it opens the
// GPU, compiles or loads Metal Shading Language (MSL) libraries, builds
// compute pipelines, wraps memory in MTLBuffers (including no-copy buffers
// over a memory-mapped checkpoint) and encodes, commits and waits for compute
// command buffers. It knows nothing about models; a compiled model's dispatch
// program drives it.
//
// The real implementation (metal_darwin.go, objc_darwin.go) talks to
// Metal.framework through github.com/ebitengine/purego and its objc package,
// so it builds with CGO_ENABLED=0. It exists only for darwin/arm64; on every
// other platform Open returns ErrUnsupported. docs/metal.md describes which
// Metal calls are used, the Objective-C rules the code follows and the
// checklist for the first run on a real Mac. None of the darwin code has been
// run by us: no machine we build on has an Apple GPU.
//
// # Ownership
//
// Every value returned by a New*, Open, CompileLibrary or LoadLibrary call
// holds one Objective-C reference and must be given back with Release (Close
// for a Device). Pipelines belong to their Library and are released with it.
// A CommandBuffer is released after it has completed; an Encoder is released
// by End.
//
// # Concurrency
//
// Device, Library, Pipeline and Buffer may be used from several goroutines at
// once (Metal documents MTLDevice, MTLLibrary, MTLComputePipelineState and
// MTLBuffer as thread-safe). A CommandBuffer and its Encoder must be used by
// one goroutine at a time, as Metal requires.
package metal

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"
)

// ErrUnsupported is returned (possibly wrapped) by Open where Metal cannot
// run Minerva's kernels: on any platform but macOS on Apple Silicon, on a Mac
// without a Metal device, and on a GPU older than Apple7 (M1), such as the
// paravirtual GPU of a macOS virtual machine.
var ErrUnsupported = errors.New("the Metal backend needs macOS on Apple Silicon; use --backend cpu")

// MinAppleFamily is the oldest Apple GPU family Open accepts: MTLGPUFamilyApple7,
// the M1. Minerva's kernels use SIMD-group reductions (simd_sum) and
// simdgroup matrices, which Apple's feature tables give to Apple7 and later.
const MinAppleFamily = 7

// LanguageVersion is an MSL version as Metal encodes it in MTLLanguageVersion:
// major<<16 + minor.
type LanguageVersion uint64

// MSL versions from MTLLibrary.h (MTLLanguageVersion2_4 ... MTLLanguageVersion4_0).
const (
	MSL2_4 LanguageVersion = 2<<16 + 4 // macOS 12
	MSL3_0 LanguageVersion = 3<<16 + 0 // macOS 13
	MSL3_1 LanguageVersion = 3<<16 + 1 // macOS 14
	MSL3_2 LanguageVersion = 3<<16 + 2 // macOS 15
	MSL4_0 LanguageVersion = 4<<16 + 0 // macOS 26
)

// DefaultLanguageVersion is the MSL version CompileLibrary uses when
// CompileOptions.LanguageVersion is zero. It is always set explicitly:
// MTLCompileOptions' own default depends on the SDK the binary was linked
// against, and a binary built without cgo links against none, so Metal would
// fall back to an old MSL and silently lose newer features.
const DefaultLanguageVersion = MSL3_1

func (v LanguageVersion) String() string {
	return fmt.Sprintf("%d.%d", uint64(v)>>16, uint64(v)&0xffff)
}

// minMacOS is the first macOS major version whose Metal compiler accepts v,
// from the API_AVAILABLE annotations of MTLLanguageVersion in MTLLibrary.h.
// ok is false for a version this package does not know.
func (v LanguageVersion) minMacOS() (major int, ok bool) {
	switch v {
	case MSL2_4:
		return 12, true
	case MSL3_0:
		return 13, true
	case MSL3_1:
		return 14, true
	case MSL3_2:
		return 15, true
	case MSL4_0:
		return 26, true
	}
	return 0, false
}

// maxLanguageVersion is the newest MSL version this package knows that
// macOS osMajor can compile.
func maxLanguageVersion(osMajor int) LanguageVersion {
	best := LanguageVersion(0)
	for _, v := range []LanguageVersion{MSL2_4, MSL3_0, MSL3_1, MSL3_2, MSL4_0} {
		if m, _ := v.minMacOS(); m <= osMajor {
			best = v
		}
	}
	return best
}

// checkLanguageVersion reports whether macOS osMajor can compile MSL v, as an
// error that says what to change.
func checkLanguageVersion(v LanguageVersion, osMajor int) error {
	need, ok := v.minMacOS()
	if !ok {
		return fmt.Errorf("metal: unknown MSL version %s (MTLLanguageVersion %d); use one of the metal.MSL* constants", v, uint64(v))
	}
	if osMajor < need {
		return fmt.Errorf("metal: MSL %s needs macOS %d or later, and this Mac runs macOS %d; compile with MSL %s or update macOS",
			v, need, osMajor, maxLanguageVersion(osMajor))
	}
	return nil
}

// MathMode chooses how freely the Metal compiler may rewrite floating-point
// arithmetic (MTLCompileOptions.mathMode, MTLMathMode). The zero value is
// MathSafe, which keeps results closest to the CPU backend; note that Metal's
// own default is MathFast.
//
// Which math-library functions a kernel calls (exp, log, ...) is not chosen
// here: kernels that need accurate ones call metal::precise:: explicitly, which
// does not depend on the macOS version.
type MathMode int

const (
	// MathSafe disables unsafe floating-point optimisations (MTLMathModeSafe).
	MathSafe MathMode = iota
	// MathRelaxed allows aggressive optimisations but keeps Inf and NaN
	// semantics (MTLMathModeRelaxed).
	MathRelaxed
	// MathFast allows aggressive optimisations with no Inf/NaN guarantees
	// (MTLMathModeFast; Metal's default).
	MathFast
)

func (m MathMode) String() string {
	switch m {
	case MathSafe:
		return "safe"
	case MathRelaxed:
		return "relaxed"
	case MathFast:
		return "fast"
	}
	return fmt.Sprintf("MathMode(%d)", int(m))
}

// CompileOptions configures CompileLibrary.
type CompileOptions struct {
	// LanguageVersion is the MSL version; zero means DefaultLanguageVersion.
	LanguageVersion LanguageVersion
	// Math is the floating-point optimisation mode. Before macOS 15, which
	// lacks mathMode, MathFast sets fastMathEnabled=YES and MathSafe and
	// MathRelaxed set it to NO.
	Math MathMode
	// Label names the library in errors and in Xcode's GPU tools.
	Label string
}

// gpuFamily is one MTLGPUFamily value probed with -[MTLDevice supportsFamily:].
type gpuFamily struct {
	name  string
	value int64
	apple int // N for MTLGPUFamilyAppleN, else 0
}

// gpuFamilies are the MTLGPUFamily values from MTLDevice.h that Info reports,
// in the order Info.Families lists them.
var gpuFamilies = []gpuFamily{
	{"Apple1", 1001, 1}, {"Apple2", 1002, 2}, {"Apple3", 1003, 3},
	{"Apple4", 1004, 4}, {"Apple5", 1005, 5}, {"Apple6", 1006, 6},
	{"Apple7", 1007, 7}, {"Apple8", 1008, 8}, {"Apple9", 1009, 9},
	{"Apple10", 1010, 10},
	{"Mac2", 2002, 0},
	{"Common1", 3001, 0}, {"Common2", 3002, 0}, {"Common3", 3003, 0},
	{"Metal3", 5001, 0}, {"Metal4", 5002, 0},
}

// OSVersion is a macOS version (NSProcessInfo.operatingSystemVersion).
type OSVersion struct {
	Major, Minor, Patch int
}

func (v OSVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Info describes an opened device.
type Info struct {
	// Name is MTLDevice.name, e.g. "Apple M2 Pro".
	Name string
	// HasUnifiedMemory is MTLDevice.hasUnifiedMemory: CPU and GPU share memory,
	// so shared buffers and no-copy buffers cost no transfers.
	HasUnifiedMemory bool
	// RecommendedMaxWorkingSetSize is MTLDevice.recommendedMaxWorkingSetSize in
	// bytes: how much memory the GPU can use without hurting performance.
	RecommendedMaxWorkingSetSize uint64
	// MaxBufferLength is MTLDevice.maxBufferLength: the largest single buffer.
	MaxBufferLength uint64
	// MaxThreadgroupMemoryLength is MTLDevice.maxThreadgroupMemoryLength in bytes.
	MaxThreadgroupMemoryLength int
	// AppleFamily is the highest N for which supportsFamily:MTLGPUFamilyAppleN
	// is true (7 = M1, 8 = M2, 9 = M3/M4); 0 if none.
	AppleFamily int
	// Families lists every probed MTLGPUFamily the device supports, by name
	// without the prefix ("Apple9", "Mac2", "Metal3", ...).
	Families []string
	// LanguageVersion is the MSL version CompileLibrary uses by default.
	LanguageVersion LanguageVersion
	// MaxLanguageVersion is the newest MSL version this macOS can compile.
	MaxLanguageVersion LanguageVersion
	// OS is the macOS version; OSDescription is NSProcessInfo's
	// operatingSystemVersionString, e.g. "Version 14.5 (Build 23F79)".
	OS            OSVersion
	OSDescription string
}

// GPUFamily is the highest Apple family as Metal names it, e.g. "Apple9";
// "none" when the device supports no Apple family.
func (i Info) GPUFamily() string {
	if i.AppleFamily == 0 {
		return "none"
	}
	return fmt.Sprintf("Apple%d", i.AppleFamily)
}

// String formats i as the lines `minerva info` prints.
func (i Info) String() string {
	var b strings.Builder
	for _, row := range [][2]string{
		{"device", i.Name},
		{"unified memory", fmt.Sprint(i.HasUnifiedMemory)},
		{"recommended working set", formatBytes(i.RecommendedMaxWorkingSetSize)},
		{"max buffer length", formatBytes(i.MaxBufferLength)},
		{"threadgroup memory", fmt.Sprintf("%d bytes", i.MaxThreadgroupMemoryLength)},
		{"GPU family", fmt.Sprintf("%s (supports %s)", i.GPUFamily(), strings.Join(i.Families, ", "))},
		{"MSL version", fmt.Sprintf("%s (newest this macOS compiles: %s)", i.LanguageVersion, i.MaxLanguageVersion)},
		{"macOS", fmt.Sprintf("%s (%s)", i.OS, i.OSDescription)},
	} {
		fmt.Fprintf(&b, "%-25s%s\n", row[0]+":", row[1])
	}
	return b.String()
}

func formatBytes(n uint64) string {
	const gib = 1 << 30
	return fmt.Sprintf("%d bytes (%.1f GiB)", n, float64(n)/gib)
}

// checkFamily refuses devices older than MinAppleFamily.
func checkFamily(name string, appleFamily int) error {
	if appleFamily >= MinAppleFamily {
		return nil
	}
	have := "no Apple GPU family"
	if appleFamily > 0 {
		have = fmt.Sprintf("GPU family Apple%d", appleFamily)
	}
	return fmt.Errorf("metal: device %q supports %s, and Minerva's kernels need Apple%d (M1) or later; "+
		"a virtual machine's paravirtual GPU is not enough: %w", name, have, MinAppleFamily, ErrUnsupported)
}

// Limits of the compute argument table. Metal's feature-set tables give 31
// buffer entries per stage; setBytes:length:atIndex: is for data up to 4 KiB.
const (
	maxBufferIndex = 31
	maxSetBytes    = 4096
)

// noCopyLength validates a region for newBufferWithBytesNoCopy:length:options:deallocator:
// and returns the length to pass. Metal wants a page-aligned pointer and a
// length that covers whole pages; the length is rounded up here, which is
// sound for memory from mmap, whose last page is mapped in full.
func noCopyLength(addr uintptr, n, pageSize int, maxBufferLength uint64) (int, error) {
	if n <= 0 {
		return 0, errors.New("metal: NewBufferNoCopy of an empty region; pass the memory-mapped bytes to wrap")
	}
	if off := addr % uintptr(pageSize); off != 0 {
		return 0, fmt.Errorf("metal: NewBufferNoCopy: memory at %#x is %d bytes past a %d-byte page boundary; "+
			"Metal wraps whole pages, so pass the whole mapping from mmap (e.g. the checkpoint file) and address tensors with buffer offsets",
			addr, off, pageSize)
	}
	rounded := (n + pageSize - 1) / pageSize * pageSize
	if uint64(rounded) > maxBufferLength {
		return 0, fmt.Errorf("metal: NewBufferNoCopy: %d bytes (%d rounded up to whole pages) exceed this device's maxBufferLength of %d bytes; "+
			"map the file in several page-aligned pieces, each at most that long", n, rounded, maxBufferLength)
	}
	return rounded, nil
}

// checkDispatch validates a dispatch before it reaches Metal, where a bad size
// is undefined behaviour rather than an error. maxThreads is the pipeline's
// maxTotalThreadsPerThreadgroup.
func checkDispatch(what string, grid, group [3]int, maxThreads int) error {
	for d := range 3 {
		if grid[d] < 1 || group[d] < 1 {
			return fmt.Errorf("%s: every dimension must be at least 1, got %s %v and threads per threadgroup %v", what, gridName(what), grid, group)
		}
	}
	if n := group[0] * group[1] * group[2]; n > maxThreads {
		return fmt.Errorf("%s: %d threads per threadgroup (%v) exceed the pipeline's maxTotalThreadsPerThreadgroup of %d; use smaller threadgroups",
			what, n, group, maxThreads)
	}
	return nil
}

func gridName(what string) string {
	if what == "DispatchThreads" {
		return "threads"
	}
	return "threadgroups"
}

// commandBufferErrorName names an MTLCommandBufferError code (MTLCommandBuffer.h).
func commandBufferErrorName(code int64) string {
	switch code {
	case 0:
		return "none"
	case 1:
		return "internal error"
	case 2:
		return "timeout"
	case 3:
		return "page fault"
	case 4:
		return "access revoked"
	case 7:
		return "not permitted"
	case 8:
		return "out of memory"
	case 9:
		return "invalid resource"
	case 10:
		return "memoryless limit"
	case 11:
		return "device removed"
	case 12:
		return "stack overflow"
	}
	return fmt.Sprintf("unknown error %d", code)
}

// encoderStateName names an MTLCommandEncoderErrorState (MTLCommandBuffer.h).
func encoderStateName(state int64) string {
	switch state {
	case 0:
		return "unknown"
	case 1:
		return "completed"
	case 2:
		return "affected"
	case 3:
		return "pending"
	case 4:
		return "faulted"
	}
	return fmt.Sprintf("state %d", state)
}

// EncoderStatus is what Metal reports about one encoder of a failed command
// buffer (MTLCommandBufferEncoderInfo).
type EncoderStatus struct {
	Label string
	// State is "completed", "affected", "pending", "faulted" or "unknown".
	State string
}

// GPUError is a command buffer that ended in MTLCommandBufferStatusError.
type GPUError struct {
	// Label is the command buffer's label.
	Label string
	// Code is the MTLCommandBufferError code; Reason names it.
	Code   int64
	Reason string
	// Description is the NSError's localizedDescription.
	Description string
	// Encoders lists the command buffer's encoders in recorded order, with
	// labels, when Metal provided them (MTLCommandBufferEncoderInfoErrorKey).
	Encoders []EncoderStatus
}

func (e *GPUError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "metal: command buffer %q failed: %s (MTLCommandBufferError %d): %s", e.Label, e.Reason, e.Code, e.Description)
	var faulted []string
	for _, enc := range e.Encoders {
		if enc.State == "faulted" {
			faulted = append(faulted, fmt.Sprintf("%q", enc.Label))
		}
	}
	if len(faulted) > 0 {
		fmt.Fprintf(&b, "; faulting encoder: %s", strings.Join(faulted, ", "))
	}
	if len(e.Encoders) > 0 {
		parts := make([]string, len(e.Encoders))
		for i, enc := range e.Encoders {
			parts[i] = fmt.Sprintf("%q %s", enc.Label, enc.State)
		}
		fmt.Fprintf(&b, "; encoders in order: %s", strings.Join(parts, ", "))
	}
	return b.String()
}

// addressOf is the address of mem's first byte, for alignment checks.
func addressOf(mem []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(mem))) }
