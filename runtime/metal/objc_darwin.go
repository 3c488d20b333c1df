//go:build darwin && arm64

package metal

// The Objective-C plumbing under metal_darwin.go. Rules it follows (see also
// docs/metal.md):
//
//   - Thread: every method that creates, receives or releases Objective-C
//     objects runs inside enter(), which pins the goroutine to its OS thread
//     (runtime.LockOSThread) and opens an autorelease pool
//     (objc_autoreleasePoolPush) that it pops on the same thread before
//     unpinning. Autoreleased objects therefore never outlive the method and
//     never land on a thread with no pool. LockOSThread nests, so callers that
//     already lock their thread lose nothing.
//   - The Encoder's per-dispatch methods (setComputePipelineState:,
//     setBuffer:offset:atIndex:, setBytes:length:atIndex:,
//     setThreadgroupMemoryLength:atIndex:, dispatchThreadgroups:...,
//     memoryBarrierWithScope:) return void and create no objects, so they skip
//     the pool and cost one C call each.
//   - Selectors are registered once, as package variables (sel_registerName
//     takes the runtime's global lock).
//   - Ownership: objects from alloc/new*/copy and from Create functions are +1
//     and are released by whoever holds them; objects returned by other
//     methods are autoreleased and are retained when kept past the pool.
//   - Every object-returning call is checked for nil, and every NSError** out
//     parameter is turned into a Go error with its localizedDescription.

import (
	"fmt"
	"runtime"
	"structs"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"
)

const (
	libobjcPath      = "/usr/lib/libobjc.A.dylib"
	foundationPath   = "/System/Library/Frameworks/Foundation.framework/Foundation"
	coreGraphicsPath = "/System/Library/Frameworks/CoreGraphics.framework/CoreGraphics"
	metalPath        = "/System/Library/Frameworks/Metal.framework/Metal"
)

// rt holds the C entry points, loaded once by loadRuntime.
var rt struct {
	once sync.Once
	err  error

	msgSend  uintptr // objc_msgSend, called directly through purego.SyscallN
	poolPush uintptr // objc_autoreleasePoolPush
	poolPop  uintptr // objc_autoreleasePoolPop

	createSystemDefaultDevice func() objc.ID // MTLCreateSystemDefaultDevice, +1
	copyAllDevices            func() objc.ID // MTLCopyAllDevices, +1 NSArray

	// encoderInfoErrorKey is the NSString MTLCommandBufferEncoderInfoErrorKey
	// (macOS 11), or 0 if Metal does not export it.
	encoderInfoErrorKey objc.ID

	// Classes, looked up once (objc_getClass). commandBufferDescriptor is 0
	// before macOS 11.
	nsString, nsURL, nsProcessInfo, compileOptions, commandBufferDescriptor objc.ID
}

// Typed objc_msgSend signatures, registered once with purego.RegisterFunc.
// They are for calls off the per-dispatch path; purego marshals their
// arguments by reflection.
var (
	sendUint      func(id objc.ID, sel objc.SEL, args ...any) uint64
	sendInt       func(id objc.ID, sel objc.SEL, args ...any) int64
	sendBool      func(id objc.ID, sel objc.SEL, args ...any) bool
	sendDouble    func(id objc.ID, sel objc.SEL) float64
	sendPointer   func(id objc.ID, sel objc.SEL) unsafe.Pointer
	sendCString   func(id objc.ID, sel objc.SEL) string
	sendOSVersion func(id objc.ID, sel objc.SEL) nsOperatingSystemVersion
)

// nsOperatingSystemVersion is Foundation's NSOperatingSystemVersion: three
// NSIntegers, 24 bytes, so arm64 returns it through memory addressed by x8,
// which purego's struct-return support handles (func.go, arm64_r8).
type nsOperatingSystemVersion struct {
	_                                        structs.HostLayout
	majorVersion, minorVersion, patchVersion int64
}

// mtlSize is Metal's MTLSize: three NSUIntegers, 24 bytes. AAPCS64 passes a
// composite larger than 16 bytes that is not a floating-point aggregate as a
// pointer to a caller-made copy (rule B.4), so the per-dispatch path passes
// &size to objc_msgSend through SyscallN. purego's objc.Send does the same
// for a struct argument (struct_arm64.go, placeStack) but through
// reflection.
type mtlSize struct {
	_                    structs.HostLayout
	width, height, depth uint64
}

func loadRuntime() error {
	rt.once.Do(func() { rt.err = doLoadRuntime() })
	return rt.err
}

func doLoadRuntime() error {
	open := func(path string) (uintptr, error) {
		h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			return 0, fmt.Errorf("metal: cannot load %s (%v): %w", path, err, ErrUnsupported)
		}
		return h, nil
	}
	sym := func(h uintptr, lib, name string) (uintptr, error) {
		p, err := purego.Dlsym(h, name)
		if err != nil || p == 0 {
			return 0, fmt.Errorf("metal: %s has no symbol %s (%v): %w", lib, name, err, ErrUnsupported)
		}
		return p, nil
	}

	libobjc, err := open(libobjcPath)
	if err != nil {
		return err
	}
	if _, err := open(foundationPath); err != nil {
		return err
	}
	// Apple's documentation of MTLCreateSystemDefaultDevice: "In macOS, in
	// order for the system to provide a default Metal device object, you must
	// link to the Core Graphics framework ... such as command line tools."
	// Loading it is our equivalent of linking it.
	if _, err := open(coreGraphicsPath); err != nil {
		return err
	}
	metal, err := open(metalPath)
	if err != nil {
		return err
	}

	for _, s := range []struct {
		dst       *uintptr
		h         uintptr
		lib, name string
	}{
		{&rt.msgSend, libobjc, libobjcPath, "objc_msgSend"},
		{&rt.poolPush, libobjc, libobjcPath, "objc_autoreleasePoolPush"},
		{&rt.poolPop, libobjc, libobjcPath, "objc_autoreleasePoolPop"},
	} {
		if *s.dst, err = sym(s.h, s.lib, s.name); err != nil {
			return err
		}
	}
	create, err := sym(metal, metalPath, "MTLCreateSystemDefaultDevice")
	if err != nil {
		return err
	}
	purego.RegisterFunc(&rt.createSystemDefaultDevice, create)
	copyAll, err := sym(metal, metalPath, "MTLCopyAllDevices")
	if err != nil {
		return err
	}
	purego.RegisterFunc(&rt.copyAllDevices, copyAll)

	// MTLCommandBufferEncoderInfoErrorKey is an exported NSString * const; the
	// symbol's address is the address of that pointer, in Metal's data
	// segment. The double indirection keeps go vet's unsafeptr check quiet
	// about a C address that Go's garbage collector never sees.
	if key, err := purego.Dlsym(metal, "MTLCommandBufferEncoderInfoErrorKey"); err == nil && key != 0 {
		rt.encoderInfoErrorKey = **(**objc.ID)(unsafe.Pointer(&key))
	}

	for _, c := range []struct {
		dst  *objc.ID
		name string
	}{
		{&rt.nsString, "NSString"},
		{&rt.nsURL, "NSURL"},
		{&rt.nsProcessInfo, "NSProcessInfo"},
		{&rt.compileOptions, "MTLCompileOptions"},
	} {
		if *c.dst = objc.ID(objc.GetClass(c.name)); *c.dst == 0 {
			return fmt.Errorf("metal: the Objective-C class %s is missing after loading Foundation and Metal: %w", c.name, ErrUnsupported)
		}
	}
	rt.commandBufferDescriptor = objc.ID(objc.GetClass("MTLCommandBufferDescriptor"))

	purego.RegisterFunc(&sendUint, rt.msgSend)
	purego.RegisterFunc(&sendInt, rt.msgSend)
	purego.RegisterFunc(&sendBool, rt.msgSend)
	purego.RegisterFunc(&sendDouble, rt.msgSend)
	purego.RegisterFunc(&sendPointer, rt.msgSend)
	purego.RegisterFunc(&sendCString, rt.msgSend)
	purego.RegisterFunc(&sendOSVersion, rt.msgSend)
	return nil
}

// enter pins the goroutine to its OS thread and pushes an autorelease pool;
// the function it returns pops the pool and unpins. Use as defer enter()().
func enter() (leave func()) {
	runtime.LockOSThread()
	pool, _, _ := purego.SyscallN(rt.poolPush)
	return func() {
		purego.SyscallN(rt.poolPop, pool)
		runtime.UnlockOSThread()
	}
}

// msg0..msg3 send a message whose arguments are integers or object ids (never
// pointers into Go memory, floats or structs) and whose result is an integer,
// an object id or void. They skip purego's reflection, for the per-dispatch
// path.
func msg0(id objc.ID, sel objc.SEL) uintptr {
	r, _, _ := purego.SyscallN(rt.msgSend, uintptr(id), uintptr(sel))
	return r
}

func msg1(id objc.ID, sel objc.SEL, a uintptr) uintptr {
	r, _, _ := purego.SyscallN(rt.msgSend, uintptr(id), uintptr(sel), a)
	return r
}

func msg2(id objc.ID, sel objc.SEL, a, b uintptr) uintptr {
	r, _, _ := purego.SyscallN(rt.msgSend, uintptr(id), uintptr(sel), a, b)
	return r
}

func msg3(id objc.ID, sel objc.SEL, a, b, c uintptr) uintptr {
	r, _, _ := purego.SyscallN(rt.msgSend, uintptr(id), uintptr(sel), a, b, c)
	return r
}

// Selectors, registered once.
var (
	// NSObject
	selAlloc              = objc.RegisterName("alloc")
	selInit               = objc.RegisterName("init")
	selRetain             = objc.RegisterName("retain")
	selRelease            = objc.RegisterName("release")
	selRespondsToSelector = objc.RegisterName("respondsToSelector:")

	// NSString, NSURL, NSArray, NSDictionary, NSError, NSProcessInfo
	selInitWithBytesLengthEncoding = objc.RegisterName("initWithBytes:length:encoding:")
	selUTF8String                  = objc.RegisterName("UTF8String")
	selFileURLWithPath             = objc.RegisterName("fileURLWithPath:")
	selCount                       = objc.RegisterName("count")
	selObjectAtIndex               = objc.RegisterName("objectAtIndex:")
	selObjectForKey                = objc.RegisterName("objectForKey:")
	selLocalizedDescription        = objc.RegisterName("localizedDescription")
	selCode                        = objc.RegisterName("code")
	selUserInfo                    = objc.RegisterName("userInfo")
	selProcessInfo                 = objc.RegisterName("processInfo")
	selOperatingSystemVersion      = objc.RegisterName("operatingSystemVersion")
	selOperatingSystemVersionStr   = objc.RegisterName("operatingSystemVersionString")

	// MTLDevice
	selName                         = objc.RegisterName("name")
	selHasUnifiedMemory             = objc.RegisterName("hasUnifiedMemory")
	selRecommendedMaxWorkingSetSize = objc.RegisterName("recommendedMaxWorkingSetSize")
	selMaxBufferLength              = objc.RegisterName("maxBufferLength")
	selMaxThreadgroupMemoryLength   = objc.RegisterName("maxThreadgroupMemoryLength")
	selCurrentAllocatedSize         = objc.RegisterName("currentAllocatedSize")
	selSupportsFamily               = objc.RegisterName("supportsFamily:")
	selNewCommandQueue              = objc.RegisterName("newCommandQueue")
	selNewLibraryWithSource         = objc.RegisterName("newLibraryWithSource:options:error:")
	selNewLibraryWithURL            = objc.RegisterName("newLibraryWithURL:error:")
	selNewComputePipelineState      = objc.RegisterName("newComputePipelineStateWithFunction:error:")
	selNewBufferWithLength          = objc.RegisterName("newBufferWithLength:options:")
	selNewBufferWithBytesNoCopy     = objc.RegisterName("newBufferWithBytesNoCopy:length:options:deallocator:")

	// MTLCompileOptions
	selSetLanguageVersion = objc.RegisterName("setLanguageVersion:")
	selSetMathMode        = objc.RegisterName("setMathMode:")
	selSetFastMathEnabled = objc.RegisterName("setFastMathEnabled:")

	// MTLLibrary, MTLComputePipelineState, MTLBuffer, labels
	selNewFunctionWithName           = objc.RegisterName("newFunctionWithName:")
	selFunctionNames                 = objc.RegisterName("functionNames")
	selMaxTotalThreadsPerThreadgroup = objc.RegisterName("maxTotalThreadsPerThreadgroup")
	selThreadExecutionWidth          = objc.RegisterName("threadExecutionWidth")
	selStaticThreadgroupMemoryLength = objc.RegisterName("staticThreadgroupMemoryLength")
	selContents                      = objc.RegisterName("contents")
	selSetLabel                      = objc.RegisterName("setLabel:")
	selLabel                         = objc.RegisterName("label")

	// MTLCommandQueue, MTLCommandBufferDescriptor, MTLCommandBuffer
	selCommandBuffer               = objc.RegisterName("commandBuffer")
	selCommandBufferWithDescriptor = objc.RegisterName("commandBufferWithDescriptor:")
	selSetErrorOptions             = objc.RegisterName("setErrorOptions:")
	selComputeEncoderWithDispatch  = objc.RegisterName("computeCommandEncoderWithDispatchType:")
	selCommit                      = objc.RegisterName("commit")
	selWaitUntilCompleted          = objc.RegisterName("waitUntilCompleted")
	selStatus                      = objc.RegisterName("status")
	selError                       = objc.RegisterName("error")
	selGPUStartTime                = objc.RegisterName("GPUStartTime")
	selGPUEndTime                  = objc.RegisterName("GPUEndTime")
	selErrorState                  = objc.RegisterName("errorState")

	// MTLComputeCommandEncoder
	selSetComputePipelineState    = objc.RegisterName("setComputePipelineState:")
	selSetBufferOffsetAtIndex     = objc.RegisterName("setBuffer:offset:atIndex:")
	selSetBytesLengthAtIndex      = objc.RegisterName("setBytes:length:atIndex:")
	selSetThreadgroupMemoryLength = objc.RegisterName("setThreadgroupMemoryLength:atIndex:")
	selDispatchThreadgroups       = objc.RegisterName("dispatchThreadgroups:threadsPerThreadgroup:")
	selDispatchThreads            = objc.RegisterName("dispatchThreads:threadsPerThreadgroup:")
	selMemoryBarrierWithScope     = objc.RegisterName("memoryBarrierWithScope:")
	selEndEncoding                = objc.RegisterName("endEncoding")
)

// Constants from Apple's headers.
const (
	nsUTF8StringEncoding = 4 // NSString.h

	mtlResourceStorageModeShared = 0 // MTLStorageModeShared << MTLResourceStorageModeShift (MTLResource.h)

	mtlDispatchTypeSerial     = 0 // MTLDispatchType (MTLCommandBuffer.h)
	mtlDispatchTypeConcurrent = 1

	mtlBarrierScopeBuffers = 1 // MTLBarrierScope (MTLCommandEncoder.h)

	mtlCommandBufferStatusError                       = 5 // MTLCommandBufferStatus
	mtlCommandBufferErrorOptionEncoderExecutionStatus = 1 // MTLCommandBufferErrorOption (macOS 11)
)

// retain and release adjust an object's reference count; both ignore nil.
func retain(id objc.ID) objc.ID {
	if id != 0 {
		msg0(id, selRetain)
	}
	return id
}

func release(id objc.ID) {
	if id != 0 {
		msg0(id, selRelease)
	}
}

// newNSString returns a +1 NSString holding a copy of s.
func newNSString(s string) objc.ID {
	// initWithBytes:length:encoding: copies the bytes, so Go memory is only
	// read during the call; unlike stringWithUTF8String: it needs no NUL and
	// no extra copy of a large kernel source.
	return rt.nsString.Send(selAlloc).Send(selInitWithBytesLengthEncoding,
		unsafe.Pointer(unsafe.StringData(s)), uint64(len(s)), uint64(nsUTF8StringEncoding))
}

// goString copies an NSString; nil gives "". Call inside enter(): the UTF8String
// buffer lives until the pool is popped.
func goString(s objc.ID) string {
	if s == 0 {
		return ""
	}
	return sendCString(s, selUTF8String)
}

// stringArray copies an NSArray of NSStrings.
func stringArray(arr objc.ID) []string {
	if arr == 0 {
		return nil
	}
	n := sendUint(arr, selCount)
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, goString(arr.Send(selObjectAtIndex, i)))
	}
	return out
}

// nsErrorText is an NSError's localizedDescription, or fallback when the
// error pointer is nil (some Metal calls fail without setting it).
func nsErrorText(err objc.ID, fallback string) string {
	if err == 0 {
		return fallback
	}
	return goString(err.Send(selLocalizedDescription))
}

// respondsTo reports whether obj implements sel; sending an unimplemented
// selector raises an Objective-C exception, which would abort the process.
func respondsTo(obj objc.ID, sel objc.SEL) bool {
	return sendBool(obj, selRespondsToSelector, sel)
}

// setLabel sets an object's label property (it is declared copy).
func setLabel(obj objc.ID, label string) {
	s := newNSString(label)
	obj.Send(selSetLabel, s)
	release(s)
}
