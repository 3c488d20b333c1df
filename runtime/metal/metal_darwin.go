//go:build darwin && arm64

package metal

// The Objective-C work behind api.go. Each function says which Metal
// selector it sends; objc_darwin.go holds the rules (thread, autorelease
// pool, ownership) and the plumbing. Not yet run on a Mac by us.

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"
)

func openDevice() (*Device, error) {
	if err := loadRuntime(); err != nil {
		return nil, err
	}
	defer enter()()

	dev := rt.createSystemDefaultDevice() // +1 (Create rule)
	if dev == 0 {
		// MTLCreateSystemDefaultDevice can return nil for a process without a
		// window-server connection; MTLCopyAllDevices (+1 NSArray) still
		// lists the GPUs.
		if all := rt.copyAllDevices(); all != 0 {
			if sendUint(all, selCount) > 0 {
				dev = retain(all.Send(selObjectAtIndex, uint64(0)))
			}
			release(all)
		}
	}
	if dev == 0 {
		return nil, fmt.Errorf("metal: no Metal device (MTLCreateSystemDefaultDevice and MTLCopyAllDevices found none): %w", ErrUnsupported)
	}

	d := &Device{device: uintptr(dev), pageSize: os.Getpagesize()}
	d.info = readInfo(dev)
	if err := checkFamily(d.info.Name, d.info.AppleFamily); err != nil {
		release(dev)
		return nil, err
	}
	queue := dev.Send(selNewCommandQueue) // +1
	if queue == 0 {
		release(dev)
		return nil, fmt.Errorf("metal: -[MTLDevice newCommandQueue] returned nil on %q", d.info.Name)
	}
	d.queue = uintptr(queue)
	if rt.commandBufferDescriptor != 0 && respondsTo(queue, selCommandBufferWithDescriptor) { // macOS 11
		// One descriptor serves every command buffer: the queue reads its
		// properties when making one.
		desc := rt.commandBufferDescriptor.Send(selAlloc).Send(selInit) // +1, released by Close
		if desc != 0 {
			msg1(desc, selSetErrorOptions, mtlCommandBufferErrorOptionEncoderExecutionStatus)
			d.commandBufferDescriptor = uintptr(desc)
		}
	}
	return d, nil
}

// readInfo queries the device's properties. Call inside enter().
func readInfo(dev objc.ID) Info {
	info := Info{
		Name:                         goString(dev.Send(selName)),
		HasUnifiedMemory:             sendBool(dev, selHasUnifiedMemory),
		RecommendedMaxWorkingSetSize: sendUint(dev, selRecommendedMaxWorkingSetSize),
		MaxBufferLength:              sendUint(dev, selMaxBufferLength),
		MaxThreadgroupMemoryLength:   int(sendUint(dev, selMaxThreadgroupMemoryLength)),
		LanguageVersion:              DefaultLanguageVersion,
	}
	for _, f := range gpuFamilies {
		if sendBool(dev, selSupportsFamily, f.value) { // -[MTLDevice supportsFamily:]
			info.Families = append(info.Families, f.name)
			info.AppleFamily = max(info.AppleFamily, f.apple)
		}
	}
	pi := rt.nsProcessInfo.Send(selProcessInfo) // autoreleased singleton
	v := sendOSVersion(pi, selOperatingSystemVersion)
	info.OS = OSVersion{int(v.majorVersion), int(v.minorVersion), int(v.patchVersion)}
	info.OSDescription = goString(pi.Send(selOperatingSystemVersionStr))
	info.MaxLanguageVersion = maxLanguageVersion(info.OS.Major)
	return info
}

func (d *Device) closeDevice() {
	defer enter()()
	release(objc.ID(d.commandBufferDescriptor))
	release(objc.ID(d.queue))
	release(objc.ID(d.device))
}

func (d *Device) allocatedSize() uint64 {
	return sendUint(objc.ID(d.device), selCurrentAllocatedSize)
}

func (d *Device) compileLibrary(source string, v LanguageVersion, math MathMode, label string) (*Library, error) {
	defer enter()()
	name := libraryName(label)

	opts := rt.compileOptions.Send(selAlloc).Send(selInit) // +1
	if opts == 0 {
		return nil, fmt.Errorf("metal: compiling %s: [[MTLCompileOptions alloc] init] returned nil", name)
	}
	defer release(opts)
	msg1(opts, selSetLanguageVersion, uintptr(v))
	if respondsTo(opts, selSetMathMode) { // macOS 15
		msg1(opts, selSetMathMode, uintptr(math))
	} else {
		opts.Send(selSetFastMathEnabled, math == MathFast)
	}

	src := newNSString(source) // +1
	if src == 0 {
		return nil, fmt.Errorf("metal: compiling %s: the source is not valid UTF-8", name)
	}
	defer release(src)

	nsErr := new(objc.ID)                                                                    // NSError ** out parameter; autoreleased, read inside the pool
	lib := objc.ID(d.device).Send(selNewLibraryWithSource, src, opts, unsafe.Pointer(nsErr)) // +1
	if lib == 0 {
		return nil, fmt.Errorf("metal: compiling %s (MSL %s): %s", name, v,
			nsErrorText(*nsErr, "newLibraryWithSource:options:error: returned nil without an error"))
	}
	l := &Library{dev: d, lib: uintptr(lib), label: label}
	if *nsErr != 0 { // success with warnings
		l.compileLog = nsErrorText(*nsErr, "")
	}
	if label != "" {
		setLabel(lib, label)
	}
	return l, nil
}

func (d *Device) loadLibrary(path string) (*Library, error) {
	defer enter()()
	p := newNSString(path) // +1
	if p == 0 {
		return nil, fmt.Errorf("metal: LoadLibrary: the path %q is not valid UTF-8", path)
	}
	defer release(p)
	url := rt.nsURL.Send(selFileURLWithPath, p) // autoreleased
	if url == 0 {
		return nil, fmt.Errorf("metal: LoadLibrary: +[NSURL fileURLWithPath:] returned nil for %s", path)
	}
	nsErr := new(objc.ID)
	lib := objc.ID(d.device).Send(selNewLibraryWithURL, url, unsafe.Pointer(nsErr)) // +1
	if lib == 0 {
		return nil, fmt.Errorf("metal: loading %s: %s", path,
			nsErrorText(*nsErr, "newLibraryWithURL:error: returned nil without an error"))
	}
	return &Library{dev: d, lib: uintptr(lib), label: path}, nil
}

func libraryName(label string) string {
	if label == "" {
		return "library"
	}
	return fmt.Sprintf("library %q", label)
}

func (l *Library) newPipeline(name string) (*Pipeline, error) {
	defer enter()()
	lib := objc.ID(l.lib)
	n := newNSString(name) // +1
	if n == 0 {
		return nil, fmt.Errorf("metal: kernel name %q is not valid UTF-8", name)
	}
	fn := lib.Send(selNewFunctionWithName, n) // +1
	release(n)
	if fn == 0 {
		have := stringArray(lib.Send(selFunctionNames))
		return nil, fmt.Errorf("metal: %s has no kernel %q; it has: %s", libraryName(l.label), name, strings.Join(have, ", "))
	}
	nsErr := new(objc.ID)
	ps := objc.ID(l.dev.device).Send(selNewComputePipelineState, fn, unsafe.Pointer(nsErr)) // +1
	// The pipeline keeps what it needs of the function.
	release(fn)
	if ps == 0 {
		return nil, fmt.Errorf("metal: building the pipeline of kernel %q: %s", name,
			nsErrorText(*nsErr, "newComputePipelineStateWithFunction:error: returned nil without an error"))
	}
	return &Pipeline{
		id:                uintptr(ps),
		name:              name,
		maxThreads:        int(sendUint(ps, selMaxTotalThreadsPerThreadgroup)),
		executionWidth:    int(sendUint(ps, selThreadExecutionWidth)),
		staticThreadgroup: int(sendUint(ps, selStaticThreadgroupMemoryLength)),
	}, nil
}

func releaseObject(id uintptr) {
	defer enter()()
	release(objc.ID(id))
}

func setObjectLabel(id uintptr, label string) {
	defer enter()()
	setLabel(objc.ID(id), label)
}

func (d *Device) newBuffer(length int) (*Buffer, error) {
	defer enter()()
	buf := objc.ID(d.device).Send(selNewBufferWithLength, uint64(length), uint64(mtlResourceStorageModeShared)) // +1
	if buf == 0 {
		return nil, fmt.Errorf("metal: newBufferWithLength:%d options:shared returned nil; the device is out of memory (it has %d bytes allocated)",
			length, d.allocatedSize())
	}
	p := sendPointer(buf, selContents)
	if p == nil {
		release(buf)
		return nil, errors.New("BUG: metal: a shared MTLBuffer returned nil contents")
	}
	return &Buffer{id: uintptr(buf), contents: unsafe.Slice((*byte)(p), length), length: length}, nil
}

func (d *Device) newBufferNoCopy(mem []byte, rounded int) (*Buffer, error) {
	defer enter()()
	buf := objc.ID(d.device).Send(selNewBufferWithBytesNoCopy,
		unsafe.Pointer(unsafe.SliceData(mem)), uint64(rounded), uint64(mtlResourceStorageModeShared), uintptr(0)) // +1; nil deallocator
	if buf == 0 {
		return nil, fmt.Errorf("metal: newBufferWithBytesNoCopy over %d bytes (%d with the last page) returned nil; "+
			"the memory must be one mapping from mmap, not Go or malloc memory", len(mem), rounded)
	}
	return &Buffer{id: uintptr(buf), contents: mem, length: rounded}, nil
}

func (d *Device) newCommandBuffer() (uintptr, error) {
	defer enter()()
	queue := objc.ID(d.queue)
	var cb objc.ID
	if d.commandBufferDescriptor != 0 {
		cb = queue.Send(selCommandBufferWithDescriptor, objc.ID(d.commandBufferDescriptor)) // autoreleased
	} else {
		cb = queue.Send(selCommandBuffer) // autoreleased
	}
	if cb == 0 {
		return 0, errors.New("metal: the command queue returned no command buffer")
	}
	return uintptr(retain(cb)), nil
}

func (cb *CommandBuffer) newComputeEncoder(concurrent bool) (uintptr, error) {
	defer enter()()
	t := uintptr(mtlDispatchTypeSerial)
	if concurrent {
		t = mtlDispatchTypeConcurrent
	}
	enc := objc.ID(msg1(objc.ID(cb.id), selComputeEncoderWithDispatch, t)) // autoreleased
	if enc == 0 {
		return 0, fmt.Errorf("metal: computeCommandEncoderWithDispatchType: returned nil for command buffer %q", cb.label)
	}
	return uintptr(retain(enc)), nil
}

func (cb *CommandBuffer) commit() {
	defer enter()()
	msg0(objc.ID(cb.id), selCommit)
}

func (cb *CommandBuffer) waitUntilCompleted() {
	defer enter()()
	msg0(objc.ID(cb.id), selWaitUntilCompleted)
}

func (cb *CommandBuffer) gpuError() error {
	defer enter()()
	id := objc.ID(cb.id)
	if sendUint(id, selStatus) != mtlCommandBufferStatusError {
		return nil
	}
	e := &GPUError{Label: cb.label}
	nsErr := id.Send(selError)
	if nsErr == 0 {
		e.Reason = "unknown error"
		e.Description = "MTLCommandBufferStatusError without an NSError"
		return e
	}
	e.Code = sendInt(nsErr, selCode)
	e.Reason = commandBufferErrorName(e.Code)
	e.Description = nsErrorText(nsErr, "")
	if key := rt.encoderInfoErrorKey; key != 0 {
		if userInfo := nsErr.Send(selUserInfo); userInfo != 0 {
			if infos := userInfo.Send(selObjectForKey, key); infos != 0 {
				n := sendUint(infos, selCount)
				for i := range n {
					info := infos.Send(selObjectAtIndex, i) // id<MTLCommandBufferEncoderInfo>
					e.Encoders = append(e.Encoders, EncoderStatus{
						Label: goString(info.Send(selLabel)),
						State: encoderStateName(sendInt(info, selErrorState)),
					})
				}
			}
		}
	}
	return e
}

func (cb *CommandBuffer) gpuTimes() (start, end float64) {
	id := objc.ID(cb.id)
	return sendDouble(id, selGPUStartTime), sendDouble(id, selGPUEndTime)
}

// The per-dispatch path: one objc_msgSend each, through SyscallN.

func encSetPipeline(enc, pipeline uintptr) {
	msg1(objc.ID(enc), selSetComputePipelineState, pipeline)
}

func encSetBuffer(enc, buf uintptr, offset, index int) {
	msg3(objc.ID(enc), selSetBufferOffsetAtIndex, buf, uintptr(offset), uintptr(index))
}

func encSetBytes(enc uintptr, data []byte, index int) {
	// Metal copies the bytes during the call. The conversion sits in the
	// SyscallN call itself, whose go:uintptrescapes keeps data alive and in
	// place for the call (unsafe.Pointer rule 4).
	purego.SyscallN(rt.msgSend, enc, uintptr(selSetBytesLengthAtIndex),
		uintptr(unsafe.Pointer(unsafe.SliceData(data))), uintptr(len(data)), uintptr(index))
}

func encSetThreadgroupMemory(enc uintptr, n, index int) {
	msg2(objc.ID(enc), selSetThreadgroupMemoryLength, uintptr(n), uintptr(index))
}

func encDispatch(enc uintptr, grid, group [3]int, exact bool) {
	g := mtlSize{width: uint64(grid[0]), height: uint64(grid[1]), depth: uint64(grid[2])}
	t := mtlSize{width: uint64(group[0]), height: uint64(group[1]), depth: uint64(group[2])}
	sel := selDispatchThreadgroups
	if exact {
		sel = selDispatchThreads
	}
	// Each MTLSize goes as a pointer to a copy (see mtlSize).
	purego.SyscallN(rt.msgSend, enc, uintptr(sel), uintptr(unsafe.Pointer(&g)), uintptr(unsafe.Pointer(&t)))
}

func encBarrier(enc uintptr) {
	msg1(objc.ID(enc), selMemoryBarrierWithScope, mtlBarrierScopeBuffers)
}

func encEnd(enc uintptr) {
	defer enter()()
	msg0(objc.ID(enc), selEndEncoding)
	release(objc.ID(enc))
}
