package metal

// The exported API. It is the same on every platform: argument checks live
// here, and each type's Objective-C work is done by unexported functions in
// metal_darwin.go (darwin/arm64) or metal_other.go (everywhere else, where
// Open always fails and nothing past it is reachable). Handles to
// Objective-C objects are stored as uintptr (objc.ID's underlying type)
// because package objc only builds on darwin.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Device is an opened Metal GPU with one command queue
// (MTLCreateSystemDefaultDevice, -[MTLDevice newCommandQueue]).
type Device struct {
	device, queue uintptr
	info          Info
	pageSize      int
	// commandBufferDescriptor is an MTLCommandBufferDescriptor with
	// MTLCommandBufferErrorOptionEncoderExecutionStatus, so a GPU error names
	// the encoder that faulted; 0 before macOS 11.
	commandBufferDescriptor uintptr
}

// Open opens the system's default Metal device and a command queue on it.
// The error wraps ErrUnsupported when there is no usable device: not macOS
// on Apple Silicon, no Metal device, or a GPU older than Apple7 (M1).
func Open() (*Device, error) {
	return openDevice()
}

// Close releases the command queue and the device. Release every Library,
// Buffer and CommandBuffer first. Calling Close again does nothing.
func (d *Device) Close() {
	if d.device == 0 {
		return
	}
	d.closeDevice()
	d.device, d.queue, d.commandBufferDescriptor = 0, 0, 0
}

// Info describes the device; see Info's fields for the Metal properties.
func (d *Device) Info() Info {
	i := d.info
	i.Families = append([]string(nil), d.info.Families...)
	return i
}

// AllocatedSize is MTLDevice.currentAllocatedSize: the bytes of GPU memory
// this process has allocated on the device.
func (d *Device) AllocatedSize() uint64 {
	if d.device == 0 {
		return 0
	}
	return d.allocatedSize()
}

// CompileLibrary compiles MSL source (-[MTLDevice
// newLibraryWithSource:options:error:]). It always sets
// MTLCompileOptions.languageVersion, to opts.LanguageVersion or
// DefaultLanguageVersion. A compile error is returned with the compiler's
// message (the NSError's localizedDescription); compiler warnings on success
// are kept in Library.CompileLog.
func (d *Device) CompileLibrary(source string, opts CompileOptions) (*Library, error) {
	if d.device == 0 {
		return nil, errClosed("CompileLibrary")
	}
	v := opts.LanguageVersion
	if v == 0 {
		v = DefaultLanguageVersion
	}
	if err := checkLanguageVersion(v, d.info.OS.Major); err != nil {
		return nil, err
	}
	if opts.Math < MathSafe || opts.Math > MathFast {
		return nil, fmt.Errorf("metal: CompileOptions.Math is %v; use metal.MathSafe, MathRelaxed or MathFast", opts.Math)
	}
	if source == "" {
		return nil, errors.New("metal: CompileLibrary of empty source; pass the MSL text of the kernels")
	}
	return d.compileLibrary(source, v, opts.Math, opts.Label)
}

// LoadLibrary loads a precompiled .metallib file (-[MTLDevice
// newLibraryWithURL:error:]).
func (d *Device) LoadLibrary(metallibPath string) (*Library, error) {
	if d.device == 0 {
		return nil, errClosed("LoadLibrary")
	}
	abs, err := filepath.Abs(metallibPath)
	if err != nil {
		return nil, fmt.Errorf("metal: LoadLibrary %s: %w", metallibPath, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("metal: LoadLibrary: %w; build the .metallib with `xcrun metal` and `xcrun metallib`, or use CompileLibrary on the source", err)
	}
	return d.loadLibrary(abs)
}

// Library is a compiled MTLLibrary and the pipelines made from it.
type Library struct {
	dev        *Device
	lib        uintptr
	label      string
	compileLog string

	mu        sync.Mutex
	pipelines map[string]*Pipeline
}

// CompileLog holds the compiler's warnings, if it reported any while
// succeeding; "" otherwise and for loaded libraries.
func (l *Library) CompileLog() string { return l.compileLog }

// Pipeline returns the compute pipeline of the kernel function name
// (-[MTLLibrary newFunctionWithName:], -[MTLDevice
// newComputePipelineStateWithFunction:error:]), building it on first use and
// returning the same *Pipeline afterwards. Safe for concurrent use.
func (l *Library) Pipeline(name string) (*Pipeline, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lib == 0 {
		return nil, fmt.Errorf("metal: Pipeline(%q) on a released library; keep the Library until its pipelines are no longer used", name)
	}
	if p, ok := l.pipelines[name]; ok {
		return p, nil
	}
	p, err := l.newPipeline(name)
	if err != nil {
		return nil, err
	}
	if l.pipelines == nil {
		l.pipelines = make(map[string]*Pipeline)
	}
	l.pipelines[name] = p
	return p, nil
}

// Release releases the library and every pipeline made from it. Command
// buffers already committed keep what they use alive (Metal retains it).
func (l *Library) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lib == 0 {
		return
	}
	for _, p := range l.pipelines {
		releaseObject(p.id)
		p.id = 0
	}
	l.pipelines = nil
	releaseObject(l.lib)
	l.lib = 0
}

// Pipeline is an MTLComputePipelineState for one kernel. It belongs to its
// Library.
type Pipeline struct {
	id                uintptr
	name              string
	maxThreads        int
	executionWidth    int
	staticThreadgroup int
}

// Name is the kernel function's name.
func (p *Pipeline) Name() string { return p.name }

// MaxTotalThreadsPerThreadgroup is the pipeline's limit on threads per
// threadgroup; it can be below the device's when the kernel needs many
// registers.
func (p *Pipeline) MaxTotalThreadsPerThreadgroup() int { return p.maxThreads }

// ThreadExecutionWidth is the SIMD-group width the kernel runs at (32 on
// Apple GPUs).
func (p *Pipeline) ThreadExecutionWidth() int { return p.executionWidth }

// StaticThreadgroupMemoryLength is the threadgroup memory the kernel declares
// statically, in bytes.
func (p *Pipeline) StaticThreadgroupMemoryLength() int { return p.staticThreadgroup }

// Buffer is an MTLBuffer in shared storage (MTLResourceStorageModeShared):
// the CPU reads and writes it through Contents while no command buffer using
// it is running.
type Buffer struct {
	id       uintptr
	contents []byte
	length   int // Metal's length; above len(contents) for a no-copy buffer rounded to whole pages
}

// NewBuffer allocates a shared buffer of length bytes (-[MTLDevice
// newBufferWithLength:options:]).
func (d *Device) NewBuffer(length int) (*Buffer, error) {
	if d.device == 0 {
		return nil, errClosed("NewBuffer")
	}
	if length <= 0 {
		return nil, fmt.Errorf("metal: NewBuffer(%d): the length must be positive", length)
	}
	if uint64(length) > d.info.MaxBufferLength {
		return nil, fmt.Errorf("metal: NewBuffer(%d) exceeds this device's maxBufferLength of %d bytes; split the data over several buffers", length, d.info.MaxBufferLength)
	}
	return d.newBuffer(length)
}

// NewBufferNoCopy wraps existing memory in a shared buffer without copying it
// (-[MTLDevice newBufferWithBytesNoCopy:length:options:deallocator:], nil
// deallocator). mem must come from mmap (or vm_allocate), never from make or
// malloc, and must start on a page boundary: pass a whole mapping, such as a
// memory-mapped checkpoint file, and reach tensors with buffer offsets.
// Metal wraps whole pages, so the buffer covers mem rounded up to the page
// size; mmap maps that last partial page in full.
//
// The caller keeps the mapping alive and unmaps it only after releasing the
// buffer and every command buffer that used it (a command buffer holds the
// buffers it used until it is released). A read-only mapping gives a buffer
// kernels may only read.
func (d *Device) NewBufferNoCopy(mem []byte) (*Buffer, error) {
	if d.device == 0 {
		return nil, errClosed("NewBufferNoCopy")
	}
	var addr uintptr
	if len(mem) > 0 {
		addr = addressOf(mem)
	}
	rounded, err := noCopyLength(addr, len(mem), d.pageSize, d.info.MaxBufferLength)
	if err != nil {
		return nil, err
	}
	return d.newBufferNoCopy(mem, rounded)
}

// Contents is the buffer's memory, shared with the GPU. It is len bytes long
// for NewBuffer(len) and is mem itself for NewBufferNoCopy(mem). Do not use
// it after Release.
func (b *Buffer) Contents() []byte { return b.contents }

// Len is len(b.Contents()).
func (b *Buffer) Len() int { return len(b.contents) }

// SetLabel names the buffer in Xcode's GPU tools (setLabel:).
func (b *Buffer) SetLabel(label string) {
	if b.id != 0 {
		setObjectLabel(b.id, label)
	}
}

// Release releases the buffer. Command buffers already committed keep it
// alive until they complete. Calling Release again does nothing.
func (b *Buffer) Release() {
	if b.id == 0 {
		return
	}
	releaseObject(b.id)
	b.id, b.contents, b.length = 0, nil, 0
}

// CommandBuffer is one MTLCommandBuffer: encode with ComputeEncoder, then
// Commit, WaitUntilCompleted, check Error, and Release. Errors from encoding
// and misuse are kept and reported by Error; a command buffer with such an
// error is never committed, so a partly encoded program never runs.
type CommandBuffer struct {
	dev       *Device
	id        uintptr
	label     string
	open      *Encoder
	committed bool
	waited    bool
	err       error
}

// NewCommandBuffer makes a command buffer on the device's queue
// (-[MTLCommandQueue commandBufferWithDescriptor:] with
// MTLCommandBufferErrorOptionEncoderExecutionStatus, so a GPU error names
// the encoder that caused it; -[MTLCommandQueue commandBuffer] before macOS 11).
// It holds strong references to the buffers and pipelines it uses.
func (d *Device) NewCommandBuffer() (*CommandBuffer, error) {
	if d.device == 0 {
		return nil, errClosed("NewCommandBuffer")
	}
	id, err := d.newCommandBuffer()
	if err != nil {
		return nil, err
	}
	return &CommandBuffer{dev: d, id: id}, nil
}

// SetLabel names the command buffer in errors and in Xcode's GPU tools.
func (cb *CommandBuffer) SetLabel(label string) {
	cb.label = label
	if cb.id != 0 {
		setObjectLabel(cb.id, label)
	}
}

// ComputeEncoder starts a compute pass
// (-[MTLCommandBuffer computeCommandEncoderWithDispatchType:]). With
// concurrent true (MTLDispatchTypeConcurrent) dispatches may overlap, and the
// caller orders dependent ones with MemoryBarrier; with false
// (MTLDispatchTypeSerial) each dispatch sees the previous one's writes. Only
// one encoder may be open at a time; End it before the next.
func (cb *CommandBuffer) ComputeEncoder(concurrent bool) *Encoder {
	e := &Encoder{cb: cb}
	switch {
	case cb.id == 0:
		e.err = errors.New("metal: ComputeEncoder on a released command buffer")
	case cb.committed:
		e.err = fmt.Errorf("metal: ComputeEncoder on command buffer %q after Commit; make a new command buffer", cb.label)
	case cb.open != nil:
		e.err = fmt.Errorf("metal: ComputeEncoder while encoder %q of command buffer %q is open; call End on it first", cb.open.label, cb.label)
	default:
		id, err := cb.newComputeEncoder(concurrent)
		if err != nil {
			e.err = err
		} else {
			e.id = id
			cb.open = e
		}
	}
	if e.err != nil && cb.err == nil {
		cb.err = e.err
	}
	return e
}

// Commit submits the command buffer (-[MTLCommandBuffer commit]). It does
// nothing if an encoder is still open or encoding failed; Error says why.
func (cb *CommandBuffer) Commit() {
	switch {
	case cb.id == 0:
		cb.fail(errors.New("metal: Commit on a released command buffer"))
	case cb.committed:
		cb.fail(fmt.Errorf("metal: Commit called twice on command buffer %q", cb.label))
	case cb.open != nil:
		cb.fail(fmt.Errorf("metal: Commit of command buffer %q while encoder %q is open; call End first", cb.label, cb.open.label))
	case cb.err != nil:
		// Not submitted: the error is already recorded.
	default:
		cb.commit()
		cb.committed = true
	}
}

// WaitUntilCompleted blocks until the GPU has finished the command buffer
// (-[MTLCommandBuffer waitUntilCompleted]). Without a successful Commit it
// returns at once (waiting would never end) and Error reports it.
func (cb *CommandBuffer) WaitUntilCompleted() {
	if !cb.committed {
		if cb.err == nil {
			cb.fail(fmt.Errorf("metal: WaitUntilCompleted on command buffer %q before Commit", cb.label))
		}
		return
	}
	if cb.id != 0 && !cb.waited {
		cb.waitUntilCompleted()
		cb.waited = true
	}
}

// Error is the first encoding or usage error, or, after completion, the GPU's
// error as a *GPUError (MTLCommandBufferStatusError and its NSError, with the
// encoders' labels and states). It is nil while the command buffer is still
// running or when it succeeded. The caller adds which kernel or step failed.
func (cb *CommandBuffer) Error() error {
	if cb.err != nil {
		return cb.err
	}
	if !cb.committed || cb.id == 0 {
		return nil
	}
	if gpuErr := cb.gpuError(); gpuErr != nil {
		return gpuErr
	}
	return nil
}

// GPUDuration is the time the GPU spent on the command buffer
// (GPUEndTime - GPUStartTime); zero before it completes.
func (cb *CommandBuffer) GPUDuration() time.Duration {
	if !cb.waited || cb.id == 0 {
		return 0
	}
	start, end := cb.gpuTimes()
	if end <= start {
		return 0
	}
	return time.Duration((end - start) * float64(time.Second))
}

// Release releases the command buffer, ending an encoder left open. Release
// after WaitUntilCompleted; a committed command buffer that is released
// early still runs. Calling Release again does nothing.
func (cb *CommandBuffer) Release() {
	if cb.open != nil {
		cb.open.End()
	}
	if cb.id == 0 {
		return
	}
	releaseObject(cb.id)
	cb.id = 0
}

func (cb *CommandBuffer) fail(err error) {
	if cb.err == nil {
		cb.err = err
	}
}

// Encoder is an MTLComputeCommandEncoder. Its methods check their arguments
// and keep the first error, after which they do nothing; End returns it (as
// does the command buffer's Error), so a dispatch loop checks once, at the end.
type Encoder struct {
	cb       *CommandBuffer
	id       uintptr
	label    string
	pipeline *Pipeline
	ended    bool
	err      error
}

// SetLabel names the encoder; a GPU error lists encoders by label, so label
// each with what it runs.
func (e *Encoder) SetLabel(label string) {
	e.label = label
	if e.live() {
		setObjectLabel(e.id, label)
	}
}

// SetPipeline selects the kernel for the following dispatches
// (setComputePipelineState:).
func (e *Encoder) SetPipeline(p *Pipeline) {
	if !e.live() {
		return
	}
	if p == nil || p.id == 0 {
		e.fail("SetPipeline of a nil or released pipeline")
		return
	}
	e.pipeline = p
	encSetPipeline(e.id, p.id)
}

// SetBuffer binds b from byte offset to argument [[buffer(index)]]
// (setBuffer:offset:atIndex:).
func (e *Encoder) SetBuffer(b *Buffer, offset, index int) {
	if !e.live() {
		return
	}
	switch {
	case b == nil || b.id == 0:
		e.fail("SetBuffer(index %d) of a nil or released buffer", index)
	case index < 0 || index >= maxBufferIndex:
		e.fail("SetBuffer index %d is outside 0..%d", index, maxBufferIndex-1)
	case offset < 0 || offset >= b.length:
		e.fail("SetBuffer(index %d) offset %d is outside the buffer's %d bytes", index, offset, b.length)
	default:
		encSetBuffer(e.id, b.id, offset, index)
	}
}

// SetBytes copies data (at most 4 KiB) into argument [[buffer(index)]]
// (setBytes:length:atIndex:); use it for small constant arguments.
func (e *Encoder) SetBytes(data []byte, index int) {
	if !e.live() {
		return
	}
	switch {
	case len(data) == 0 || len(data) > maxSetBytes:
		e.fail("SetBytes(index %d) of %d bytes; it takes 1 to %d bytes, use a Buffer for more", index, len(data), maxSetBytes)
	case index < 0 || index >= maxBufferIndex:
		e.fail("SetBytes index %d is outside 0..%d", index, maxBufferIndex-1)
	default:
		encSetBytes(e.id, data, index)
	}
}

// SetThreadgroupMemoryLength sizes argument [[threadgroup(index)]] to n bytes,
// a multiple of 16 (setThreadgroupMemoryLength:atIndex:).
func (e *Encoder) SetThreadgroupMemoryLength(n, index int) {
	if !e.live() {
		return
	}
	limit := e.cb.dev.info.MaxThreadgroupMemoryLength
	switch {
	case n <= 0 || n%16 != 0:
		e.fail("SetThreadgroupMemoryLength(%d, index %d): the length must be a positive multiple of 16", n, index)
	case n > limit:
		e.fail("SetThreadgroupMemoryLength(%d, index %d) exceeds the device's maxThreadgroupMemoryLength of %d bytes", n, index, limit)
	case index < 0 || index >= maxBufferIndex:
		e.fail("SetThreadgroupMemoryLength index %d is outside 0..%d", index, maxBufferIndex-1)
	default:
		encSetThreadgroupMemory(e.id, n, index)
	}
}

// Dispatch runs the pipeline over threadgroups × threadsPerThreadgroup
// threads (dispatchThreadgroups:threadsPerThreadgroup:, two MTLSize values).
func (e *Encoder) Dispatch(threadgroups, threadsPerThreadgroup [3]int) {
	e.dispatch("Dispatch", threadgroups, threadsPerThreadgroup, false)
}

// DispatchThreads runs the pipeline over exactly threads threads, letting
// Metal trim the edge threadgroups (dispatchThreads:threadsPerThreadgroup:).
func (e *Encoder) DispatchThreads(threads, threadsPerThreadgroup [3]int) {
	e.dispatch("DispatchThreads", threads, threadsPerThreadgroup, true)
}

func (e *Encoder) dispatch(what string, grid, group [3]int, exact bool) {
	if !e.live() {
		return
	}
	if e.pipeline == nil {
		e.fail("%s before SetPipeline", what)
		return
	}
	if err := checkDispatch(what, grid, group, e.pipeline.maxThreads); err != nil {
		e.failErr(err)
		return
	}
	encDispatch(e.id, grid, group, exact)
}

// MemoryBarrier makes the writes of earlier dispatches to buffers visible to
// later ones (memoryBarrierWithScope:MTLBarrierScopeBuffers). Needed between
// dependent dispatches of a concurrent encoder.
func (e *Encoder) MemoryBarrier() {
	if e.live() {
		encBarrier(e.id)
	}
}

// Err is the first error the encoder kept, or nil.
func (e *Encoder) Err() error { return e.err }

// End finishes the pass (endEncoding) and releases the encoder. It returns
// the first error the encoder kept; such an error also stops the command
// buffer from being committed. Calling End again returns the same error.
func (e *Encoder) End() error {
	if e.ended {
		return e.err
	}
	e.ended = true
	if e.id != 0 {
		encEnd(e.id)
		e.id = 0
	}
	if e.cb.open == e {
		e.cb.open = nil
	}
	if e.err != nil {
		e.cb.fail(e.err)
	}
	return e.err
}

// live reports whether the encoder may encode.
func (e *Encoder) live() bool {
	if e.err != nil {
		return false
	}
	if e.ended {
		e.fail("used after End")
		return false
	}
	return e.id != 0
}

func (e *Encoder) fail(format string, args ...any) {
	e.failErr(errors.New(fmt.Sprintf(format, args...)))
}

func (e *Encoder) failErr(err error) {
	if e.err != nil {
		return
	}
	where := fmt.Sprintf("encoder %q", e.label)
	if e.pipeline != nil {
		where += fmt.Sprintf(" (kernel %s)", e.pipeline.name)
	}
	e.err = fmt.Errorf("metal: %s: %w", where, err)
}

func errClosed(what string) error {
	return fmt.Errorf("metal: %s on a closed Device; Open it again", what)
}
