//go:build linux || darwin

package cuda

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// The CUDA driver API and NVRTC, loaded at run time with purego: the
// binary links neither, and builds without cgo. Entry points whose ABI
// changed carry their version suffix (cuMemAlloc_v2, ...).
var api struct {
	once sync.Once
	err  error

	cuInit                    func(flags uint32) int32
	cuDeviceGet               func(dev *int32, ordinal int32) int32
	cuDeviceGetCount          func(n *int32) int32
	cuDeviceGetName           func(name *byte, n int32, dev int32) int32
	cuDeviceTotalMem          func(bytes *uint64, dev int32) int32
	cuDeviceGetAttribute      func(v *int32, attr int32, dev int32) int32
	cuDevicePrimaryCtxRetain  func(ctx *uintptr, dev int32) int32
	cuDevicePrimaryCtxRelease func(dev int32) int32
	cuCtxSetCurrent           func(ctx uintptr) int32
	cuCtxSynchronize          func() int32
	cuMemAlloc                func(p *uint64, n uint64) int32
	cuMemFree                 func(p uint64) int32
	cuMemcpyHtoD              func(dst uint64, src unsafe.Pointer, n uint64) int32
	cuMemcpyDtoH              func(dst unsafe.Pointer, src uint64, n uint64) int32
	cuMemcpyDtoDAsync         func(dst, src uint64, n uint64, stream uintptr) int32
	cuMemsetD8                func(dst uint64, v uint8, n uint64) int32
	cuMemGetInfo              func(free, total *uint64) int32
	cuModuleLoadData          func(mod *uintptr, image unsafe.Pointer) int32
	cuModuleUnload            func(mod uintptr) int32
	cuModuleGetFunction       func(f *uintptr, mod uintptr, name string) int32
	cuFuncSetAttribute        func(f uintptr, attr int32, v int32) int32
	cuFuncGetAttribute        func(v *int32, attr int32, f uintptr) int32
	cuLaunchKernel            func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32
	cuStreamCreate            func(s *uintptr, flags uint32) int32
	cuStreamDestroy           func(s uintptr) int32
	cuStreamSynchronize       func(s uintptr) int32
	cuEventCreate             func(ev *uintptr, flags uint32) int32
	cuEventRecord             func(ev uintptr, stream uintptr) int32
	cuEventSynchronize        func(ev uintptr) int32
	cuEventElapsedTime        func(ms *float32, start, end uintptr) int32
	cuEventDestroy            func(ev uintptr) int32
	cuGetErrorName            func(err int32, s **byte) int32
	cuDriverGetVersion        func(v *int32) int32

	// Optional: a driver without them runs launch by launch (graphs) or
	// kernel after kernel (programmatic dependent launch).
	cuLaunchKernelEx            func(cfg *launchConfig, f uintptr, params unsafe.Pointer, extra unsafe.Pointer) int32
	cuStreamBeginCapture        func(s uintptr, mode int32) int32
	cuStreamEndCapture          func(s uintptr, graph *uintptr) int32
	cuGraphInstantiateWithFlags func(exec *uintptr, graph uintptr, flags uint64) int32
	cuGraphLaunch               func(exec uintptr, s uintptr) int32
	cuGraphExecDestroy          func(exec uintptr) int32
	cuGraphDestroy              func(graph uintptr) int32

	nvrtcCreateProgram     func(prog *uintptr, src string, name string, n int32, headers, names unsafe.Pointer) int32
	nvrtcCompileProgram    func(prog uintptr, n int32, opts unsafe.Pointer) int32
	nvrtcGetProgramLogSize func(prog uintptr, n *uint64) int32
	nvrtcGetProgramLog     func(prog uintptr, log *byte) int32
	nvrtcGetCUBINSize      func(prog uintptr, n *uint64) int32
	nvrtcGetCUBIN          func(prog uintptr, out *byte) int32
	nvrtcDestroyProgram    func(prog *uintptr) int32
	nvrtcVersion           func(major, minor *int32) int32
}

// libraries to try, in order; MINERVA_LIBCUDA and MINERVA_LIBNVRTC name
// others.
func cudaLibs() []string {
	if p := os.Getenv("MINERVA_LIBCUDA"); p != "" {
		return []string{p}
	}
	return []string{"libcuda.so.1", "libcuda.so", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1"}
}

func nvrtcLibs() []string {
	if p := os.Getenv("MINERVA_LIBNVRTC"); p != "" {
		return []string{p}
	}
	var dirs []string
	for _, v := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if d := os.Getenv(v); d != "" {
			dirs = append(dirs, filepath.Join(d, "lib64"))
		}
	}
	dirs = append(dirs, "/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "")
	var out []string
	for _, d := range dirs {
		for _, n := range []string{"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"} {
			out = append(out, filepath.Join(d, n))
		}
	}
	return out
}

func open(names []string) (uintptr, error) {
	var errs []string
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err == nil {
			return h, nil
		}
		errs = append(errs, err.Error())
	}
	return 0, errors.New(strings.Join(errs, "; "))
}

func bind(lib uintptr, fn any, names ...string) error {
	for _, n := range names {
		if _, err := purego.Dlsym(lib, n); err == nil {
			purego.RegisterLibFunc(fn, lib, n)
			return nil
		}
	}
	return fmt.Errorf("symbol %s not found", names[0])
}

// load opens libcuda.so.1 and libnvrtc once.
func load() error {
	api.once.Do(func() {
		cu, err := open(cudaLibs())
		if err != nil {
			api.err = fmt.Errorf("cuda: the NVIDIA driver library (libcuda.so.1) could not be loaded: %v; install the NVIDIA driver, or set MINERVA_LIBCUDA", err)
			return
		}
		nv, err := open(nvrtcLibs())
		if err != nil {
			api.err = fmt.Errorf("cuda: NVRTC (libnvrtc.so) could not be loaded: %v; install the CUDA toolkit, or set CUDA_HOME or MINERVA_LIBNVRTC", err)
			return
		}
		binds := []struct {
			lib   uintptr
			fn    any
			names []string
		}{
			{cu, &api.cuInit, []string{"cuInit"}},
			{cu, &api.cuDeviceGet, []string{"cuDeviceGet"}},
			{cu, &api.cuDeviceGetCount, []string{"cuDeviceGetCount"}},
			{cu, &api.cuDeviceGetName, []string{"cuDeviceGetName"}},
			{cu, &api.cuDeviceTotalMem, []string{"cuDeviceTotalMem_v2"}},
			{cu, &api.cuDeviceGetAttribute, []string{"cuDeviceGetAttribute"}},
			{cu, &api.cuDevicePrimaryCtxRetain, []string{"cuDevicePrimaryCtxRetain"}},
			{cu, &api.cuDevicePrimaryCtxRelease, []string{"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"}},
			{cu, &api.cuCtxSetCurrent, []string{"cuCtxSetCurrent"}},
			{cu, &api.cuCtxSynchronize, []string{"cuCtxSynchronize"}},
			{cu, &api.cuMemAlloc, []string{"cuMemAlloc_v2"}},
			{cu, &api.cuMemFree, []string{"cuMemFree_v2"}},
			{cu, &api.cuMemcpyHtoD, []string{"cuMemcpyHtoD_v2"}},
			{cu, &api.cuMemcpyDtoH, []string{"cuMemcpyDtoH_v2"}},
			{cu, &api.cuMemcpyDtoDAsync, []string{"cuMemcpyDtoDAsync_v2"}},
			{cu, &api.cuMemsetD8, []string{"cuMemsetD8_v2"}},
			{cu, &api.cuMemGetInfo, []string{"cuMemGetInfo_v2"}},
			{cu, &api.cuModuleLoadData, []string{"cuModuleLoadData"}},
			{cu, &api.cuModuleUnload, []string{"cuModuleUnload"}},
			{cu, &api.cuModuleGetFunction, []string{"cuModuleGetFunction"}},
			{cu, &api.cuFuncSetAttribute, []string{"cuFuncSetAttribute"}},
			{cu, &api.cuFuncGetAttribute, []string{"cuFuncGetAttribute"}},
			{cu, &api.cuLaunchKernel, []string{"cuLaunchKernel"}},
			{cu, &api.cuStreamCreate, []string{"cuStreamCreate"}},
			{cu, &api.cuStreamDestroy, []string{"cuStreamDestroy_v2", "cuStreamDestroy"}},
			{cu, &api.cuStreamSynchronize, []string{"cuStreamSynchronize"}},
			{cu, &api.cuEventCreate, []string{"cuEventCreate"}},
			{cu, &api.cuEventRecord, []string{"cuEventRecord"}},
			{cu, &api.cuEventSynchronize, []string{"cuEventSynchronize"}},
			{cu, &api.cuEventElapsedTime, []string{"cuEventElapsedTime_v2", "cuEventElapsedTime"}},
			{cu, &api.cuEventDestroy, []string{"cuEventDestroy_v2", "cuEventDestroy"}},
			{cu, &api.cuGetErrorName, []string{"cuGetErrorName"}},
			{cu, &api.cuDriverGetVersion, []string{"cuDriverGetVersion"}},
			{nv, &api.nvrtcCreateProgram, []string{"nvrtcCreateProgram"}},
			{nv, &api.nvrtcCompileProgram, []string{"nvrtcCompileProgram"}},
			{nv, &api.nvrtcGetProgramLogSize, []string{"nvrtcGetProgramLogSize"}},
			{nv, &api.nvrtcGetProgramLog, []string{"nvrtcGetProgramLog"}},
			{nv, &api.nvrtcGetCUBINSize, []string{"nvrtcGetCUBINSize"}},
			{nv, &api.nvrtcGetCUBIN, []string{"nvrtcGetCUBIN"}},
			{nv, &api.nvrtcDestroyProgram, []string{"nvrtcDestroyProgram"}},
			{nv, &api.nvrtcVersion, []string{"nvrtcVersion"}},
		}
		for _, b := range binds {
			if err := bind(b.lib, b.fn, b.names...); err != nil {
				api.err = fmt.Errorf("cuda: %v (driver or NVRTC too old?)", err)
				return
			}
		}
		optional := []struct {
			fn    any
			names []string
		}{
			{&api.cuLaunchKernelEx, []string{"cuLaunchKernelEx"}},
			{&api.cuStreamBeginCapture, []string{"cuStreamBeginCapture_v2"}},
			{&api.cuStreamEndCapture, []string{"cuStreamEndCapture"}},
			{&api.cuGraphInstantiateWithFlags, []string{"cuGraphInstantiateWithFlags"}},
			{&api.cuGraphLaunch, []string{"cuGraphLaunch"}},
			{&api.cuGraphExecDestroy, []string{"cuGraphExecDestroy"}},
			{&api.cuGraphDestroy, []string{"cuGraphDestroy"}},
		}
		for _, b := range optional {
			bind(cu, b.fn, b.names...)
		}
		if r := api.cuInit(0); r != 0 {
			api.err = fmt.Errorf("cuda: cuInit: %s", errName(r))
		}
	})
	return api.err
}

func errName(r int32) string {
	var s *byte
	if api.cuGetErrorName != nil && api.cuGetErrorName(r, &s) == 0 && s != nil {
		return fmt.Sprintf("%s (%d)", cString(s), r)
	}
	return fmt.Sprintf("CUresult %d", r)
}

func cString(p *byte) string {
	var b []byte
	for q := unsafe.Pointer(p); *(*byte)(q) != 0; q = unsafe.Add(q, 1) {
		b = append(b, *(*byte)(q))
	}
	return string(b)
}

func check(what string, r int32) error {
	if r != 0 {
		return fmt.Errorf("cuda: %s: %s", what, errName(r))
	}
	return nil
}

// Device is one CUDA device with its primary context and one stream of
// its own. Its methods may be called from any goroutine: each makes the
// context current on its OS thread first.
type Device struct {
	dev   int32
	ctx   uintptr
	name  string
	mem   uint64
	major int
	minor int
	smem  int // the most dynamic shared memory a block may opt in to
	// stream is where every launch goes. It is a created stream, not the
	// legacy default one, because a graph can be captured only from a
	// created stream. It does not synchronise with the default stream,
	// so the synchronous copies (Write, Read) wait for the device first.
	stream uintptr
	// PDL launches each kernel with programmatic stream serialisation
	// (compute capability 9.0 and later): it may start while the kernel
	// before it drains, and waits in griddepcontrol.wait (the entry
	// Translate writes) until that kernel's memory is visible. Set
	// MINERVA_CUDA_PDL=0 to launch kernel after kernel.
	PDL bool
	// graphs: the driver can capture and replay graphs, and
	// MINERVA_CUDA_GRAPHS is not 0 (read once, at Open).
	graphs bool
}

// Open opens device 0 (MINERVA_CUDA_DEVICE picks another).
func Open() (*Device, error) {
	if err := load(); err != nil {
		return nil, err
	}
	ord := 0
	if s := os.Getenv("MINERVA_CUDA_DEVICE"); s != "" {
		fmt.Sscan(s, &ord)
	}
	var n int32
	if err := check("cuDeviceGetCount", api.cuDeviceGetCount(&n)); err != nil {
		return nil, err
	}
	if int(n) <= ord {
		return nil, fmt.Errorf("cuda: no CUDA device %d (%d present)", ord, n)
	}
	d := &Device{}
	if err := check("cuDeviceGet", api.cuDeviceGet(&d.dev, int32(ord))); err != nil {
		return nil, err
	}
	var name [256]byte
	api.cuDeviceGetName(&name[0], 256, d.dev)
	d.name = cString(&name[0])
	api.cuDeviceTotalMem(&d.mem, d.dev)
	var v int32
	api.cuDeviceGetAttribute(&v, 75, d.dev) // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
	d.major = int(v)
	api.cuDeviceGetAttribute(&v, 76, d.dev) // ..._MINOR
	d.minor = int(v)
	api.cuDeviceGetAttribute(&v, 97, d.dev) // CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
	d.smem = int(v)
	if err := check("cuDevicePrimaryCtxRetain", api.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, err
	}
	done, err := d.enter()
	if err != nil {
		d.Close()
		return nil, err
	}
	defer done()
	if err := check("cuStreamCreate", api.cuStreamCreate(&d.stream, 1)); err != nil { // CU_STREAM_NON_BLOCKING
		d.Close()
		return nil, err
	}
	d.PDL = d.major >= 9 && api.cuLaunchKernelEx != nil && os.Getenv("MINERVA_CUDA_PDL") != "0"
	d.graphs = api.cuGraphLaunch != nil && api.cuStreamBeginCapture != nil && os.Getenv("MINERVA_CUDA_GRAPHS") != "0"
	return d, nil
}

// Graphs reports whether the driver can capture and replay graphs, and
// MINERVA_CUDA_GRAPHS was not 0 when the device was opened.
func (d *Device) Graphs() bool { return d.graphs }

// Available reports whether a CUDA device can be opened here.
func Available() bool {
	d, err := Open()
	if err != nil {
		return false
	}
	d.Close()
	return true
}

// enter locks the goroutine to its thread and makes the context current;
// the returned function undoes the lock.
func (d *Device) enter() (func(), error) {
	runtime.LockOSThread()
	if err := check("cuCtxSetCurrent", api.cuCtxSetCurrent(d.ctx)); err != nil {
		runtime.UnlockOSThread()
		return nil, err
	}
	return runtime.UnlockOSThread, nil
}

// Name is the device's name, e.g. "NVIDIA H200".
func (d *Device) Name() string { return d.name }

// Arch is the compute capability as NVRTC spells it, e.g. "sm_90".
func (d *Device) Arch() string { return fmt.Sprintf("sm_%d%d", d.major, d.minor) }

// TotalMemory is the device's memory in bytes.
func (d *Device) TotalMemory() uint64 { return d.mem }

// Close releases the stream and the primary context.
func (d *Device) Close() error {
	if d.stream != 0 {
		if done, err := d.enter(); err == nil {
			api.cuStreamDestroy(d.stream)
			done()
		}
		d.stream = 0
	}
	if d.ctx != 0 {
		api.cuDevicePrimaryCtxRelease(d.dev)
		d.ctx = 0
	}
	return nil
}

// Synchronize waits for all work on the device.
func (d *Device) Synchronize() error {
	done, err := d.enter()
	if err != nil {
		return err
	}
	defer done()
	return check("cuCtxSynchronize", api.cuCtxSynchronize())
}

// Buffer is device memory.
type Buffer struct {
	d    *Device
	ptr  uint64
	size int
}

// Alloc allocates n bytes of device memory, zeroed.
func (d *Device) Alloc(n int) (*Buffer, error) {
	done, err := d.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	b := &Buffer{d: d, size: n}
	if err := check(fmt.Sprintf("cuMemAlloc(%d bytes)", n), api.cuMemAlloc(&b.ptr, uint64(max(n, 1)))); err != nil {
		var free, total uint64
		api.cuMemGetInfo(&free, &total)
		return nil, fmt.Errorf("%w; the device has %d of %d MiB free", err, free>>20, total>>20)
	}
	if err := check("cuMemsetD8", api.cuMemsetD8(b.ptr, 0, uint64(max(n, 1)))); err != nil {
		return nil, err
	}
	return b, nil
}

// Len is the buffer's size in bytes.
func (b *Buffer) Len() int { return b.size }

// Ptr is the buffer's device address.
func (b *Buffer) Ptr() uint64 { return b.ptr }

// Write copies p to the buffer at off (synchronously).
func (b *Buffer) Write(off int, p []byte) error {
	if off < 0 || off+len(p) > b.size {
		return fmt.Errorf("cuda: write of %d bytes at %d is outside a buffer of %d", len(p), off, b.size)
	}
	if len(p) == 0 {
		return nil
	}
	done, err := b.d.enter()
	if err != nil {
		return err
	}
	defer done()
	// The launches' stream does not synchronise with the synchronous copy.
	if err := check("cuStreamSynchronize", api.cuStreamSynchronize(b.d.stream)); err != nil {
		return err
	}
	// Copy in pieces so that a huge memory-mapped source is paged in
	// progressively.
	const chunk = 256 << 20
	for s := 0; s < len(p); s += chunk {
		e := min(s+chunk, len(p))
		if err := check("cuMemcpyHtoD", api.cuMemcpyHtoD(b.ptr+uint64(off+s), unsafe.Pointer(&p[s]), uint64(e-s))); err != nil {
			return err
		}
	}
	return nil
}

// Read copies the buffer's bytes at off into p (after all queued work).
func (b *Buffer) Read(off int, p []byte) error {
	if off < 0 || off+len(p) > b.size {
		return fmt.Errorf("cuda: read of %d bytes at %d is outside a buffer of %d", len(p), off, b.size)
	}
	if len(p) == 0 {
		return nil
	}
	done, err := b.d.enter()
	if err != nil {
		return err
	}
	defer done()
	if err := check("cuStreamSynchronize", api.cuStreamSynchronize(b.d.stream)); err != nil {
		return err
	}
	return check("cuMemcpyDtoH", api.cuMemcpyDtoH(unsafe.Pointer(&p[0]), b.ptr+uint64(off), uint64(len(p))))
}

// Free releases the memory.
func (b *Buffer) Free() error {
	if b.ptr == 0 {
		return nil
	}
	done, err := b.d.enter()
	if err != nil {
		return err
	}
	defer done()
	r := api.cuMemFree(b.ptr)
	b.ptr = 0
	return check("cuMemFree", r)
}

// Module is compiled kernels.
type Module struct {
	d     *Device
	mod   uintptr
	funcs map[string]*Function
	Log   string // NVRTC's warnings
}

// Function is one __global__ entry.
type Function struct {
	f         uintptr
	smemOptIn int
	name      string
}

// CompileError is NVRTC's refusal, with its log.
type CompileError struct {
	Log string
}

func (e *CompileError) Error() string {
	return "cuda: NVRTC could not compile the translated kernels.metal:\n" + e.Log
}

// Compile compiles CUDA C++ with NVRTC for this device (machine code, no
// PTX JIT at load) and loads it.
func (d *Device) Compile(src string, extraOpts ...string) (*Module, error) {
	var prog uintptr
	if r := api.nvrtcCreateProgram(&prog, src, "kernels.cu", 0, nil, nil); r != 0 {
		return nil, fmt.Errorf("cuda: nvrtcCreateProgram: error %d", r)
	}
	defer api.nvrtcDestroyProgram(&prog)
	opts := append([]string{"--gpu-architecture=" + d.Arch(), "--std=c++17", "-default-device", "-lineinfo"}, extraOpts...)
	cs := make([][]byte, len(opts))
	ptrs := make([]*byte, len(opts))
	for i, o := range opts {
		cs[i] = append([]byte(o), 0)
		ptrs[i] = &cs[i][0]
	}
	r := api.nvrtcCompileProgram(prog, int32(len(opts)), unsafe.Pointer(&ptrs[0]))
	runtime.KeepAlive(cs)
	var n uint64
	api.nvrtcGetProgramLogSize(prog, &n)
	log := ""
	if n > 1 {
		buf := make([]byte, n)
		api.nvrtcGetProgramLog(prog, &buf[0])
		log = strings.TrimRight(string(buf[:n-1]), "\n\x00")
	}
	if r != 0 {
		return nil, &CompileError{Log: log}
	}
	api.nvrtcGetCUBINSize(prog, &n)
	cubin := make([]byte, n)
	if err := nvrtcCheck("nvrtcGetCUBIN", api.nvrtcGetCUBIN(prog, &cubin[0])); err != nil {
		return nil, err
	}
	done, err := d.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	m := &Module{d: d, funcs: map[string]*Function{}, Log: log}
	if err := check("cuModuleLoadData", api.cuModuleLoadData(&m.mod, unsafe.Pointer(&cubin[0]))); err != nil {
		return nil, err
	}
	return m, nil
}

func nvrtcCheck(what string, r int32) error {
	if r != 0 {
		return fmt.Errorf("cuda: %s: NVRTC error %d", what, r)
	}
	return nil
}

// Function looks up an extern "C" __global__ entry.
func (m *Module) Function(name string) (*Function, error) {
	if f, ok := m.funcs[name]; ok {
		return f, nil
	}
	done, err := m.d.enter()
	if err != nil {
		return nil, err
	}
	defer done()
	f := &Function{name: name, smemOptIn: 48 << 10}
	if err := check("cuModuleGetFunction("+name+")", api.cuModuleGetFunction(&f.f, m.mod, name)); err != nil {
		return nil, err
	}
	m.funcs[name] = f
	return f, nil
}

// Attribute reads a CUfunction_attribute (e.g. 4 = registers per thread,
// 1 = static shared bytes, 3 = local bytes per thread).
func (f *Function) Attribute(a int) int {
	var v int32
	api.cuFuncGetAttribute(&v, int32(a), f.f)
	return int(v)
}

// Unload releases the module.
func (m *Module) Unload() error {
	if m.mod == 0 {
		return nil
	}
	done, err := m.d.enter()
	if err != nil {
		return err
	}
	defer done()
	r := api.cuModuleUnload(m.mod)
	m.mod = 0
	return check("cuModuleUnload", r)
}

// Stream is an ordered queue of launches on the device's stream. A
// Stream's launches must come from one goroutine; Begin locks it to its
// thread until End.
type Stream struct {
	d    *Device
	done func()
	// args holds the launch's parameter values; params points into it.
	args   []uint64
	params []unsafe.Pointer
	pin    runtime.Pinner
	// capturing: the launches are recorded into a graph, not run.
	capturing bool
}

// Begin starts a sequence of launches on the calling goroutine's thread.
func (d *Device) Begin() (*Stream, error) {
	done, err := d.enter()
	if err != nil {
		return nil, err
	}
	return &Stream{d: d, done: done, args: make([]uint64, 0, 64)}, nil
}

// Arg is one kernel argument: a device address, or bytes passed by value.
type Arg struct {
	Ptr   uint64
	Bytes []byte
}

// launchConfig is CUlaunchConfig, and launchAttr CUlaunchAttribute
// (cuda.h, CUDA 12 and later): an id, 4 bytes of padding and a 64-byte
// union of which programmatic stream serialisation uses the first int.
type launchConfig struct {
	grid, block [3]uint32
	shmem       uint32
	stream      uintptr
	attrs       *launchAttr
	numAttrs    uint32
}

type launchAttr struct {
	id    uint32
	_     uint32
	value [64]byte
}

const attrProgrammaticStreamSerialization = 6

// Launch queues f over grid blocks of block threads with shmem bytes of
// dynamic shared memory.
func (s *Stream) Launch(f *Function, grid, block [3]int, shmem int, args []Arg) error {
	if shmem > f.smemOptIn {
		if shmem > s.d.smem {
			return fmt.Errorf("cuda: kernel %s needs %d bytes of threadgroup memory; the device allows %d", f.name, shmem, s.d.smem)
		}
		if err := check("cuFuncSetAttribute", api.cuFuncSetAttribute(f.f, 8, int32(shmem))); err != nil { // MAX_DYNAMIC_SHARED_SIZE_BYTES
			return err
		}
		f.smemOptIn = shmem
	}
	// Each value gets 8-byte slots; by-value structs get as many as they
	// need (padded with zeros, 8-aligned).
	need := 0
	for _, a := range args {
		need += 1 + (len(a.Bytes)+7)/8
	}
	if cap(s.args) < need {
		s.args = make([]uint64, 0, 2*need)
	}
	vals := s.args[:need]
	clear(vals)
	s.params = s.params[:0]
	k := 0
	for _, a := range args {
		p := unsafe.Pointer(&vals[k])
		if a.Bytes != nil {
			copy(unsafe.Slice((*byte)(p), 8*((len(a.Bytes)+7)/8+1)), a.Bytes)
			k += 1 + (len(a.Bytes)+7)/8
		} else {
			vals[k] = a.Ptr
			k++
		}
		s.params = append(s.params, p)
	}
	if len(s.params) == 0 {
		s.params = append(s.params, nil)
	}
	s.pin.Pin(&vals[0])
	s.pin.Pin(&s.params[0])
	var r int32
	if s.d.PDL {
		attr := &launchAttr{id: attrProgrammaticStreamSerialization}
		attr.value[0] = 1 // programmaticStreamSerializationAllowed
		cfg := &launchConfig{
			grid:  [3]uint32{uint32(grid[0]), uint32(grid[1]), uint32(grid[2])},
			block: [3]uint32{uint32(block[0]), uint32(block[1]), uint32(block[2])},
			shmem: uint32(shmem), stream: s.d.stream, attrs: attr, numAttrs: 1,
		}
		s.pin.Pin(attr)
		s.pin.Pin(cfg)
		r = api.cuLaunchKernelEx(cfg, f.f, unsafe.Pointer(&s.params[0]), nil)
	} else {
		r = api.cuLaunchKernel(f.f, uint32(grid[0]), uint32(grid[1]), uint32(grid[2]), uint32(block[0]), uint32(block[1]), uint32(block[2]),
			uint32(shmem), s.d.stream, unsafe.Pointer(&s.params[0]), nil)
	}
	s.pin.Unpin()
	if r != 0 {
		return fmt.Errorf("cuda: launching %s (grid %v, block %v, %d bytes shared): %s", f.name, grid, block, shmem, errName(r))
	}
	return nil
}

// CopyDtoD queues a device-to-device copy.
func (s *Stream) CopyDtoD(dst, src *Buffer, n int) error {
	return check("cuMemcpyDtoDAsync", api.cuMemcpyDtoDAsync(dst.ptr, src.ptr, uint64(n), s.d.stream))
}

// Event is a point in the stream, for timing.
type Event struct{ e uintptr }

// Record queues an event.
func (s *Stream) Record() (*Event, error) {
	if s.capturing {
		return nil, errors.New("cuda: BUG: an event recorded while capturing a graph")
	}
	ev := &Event{}
	if err := check("cuEventCreate", api.cuEventCreate(&ev.e, 0)); err != nil {
		return nil, err
	}
	return ev, check("cuEventRecord", api.cuEventRecord(ev.e, s.d.stream))
}

// Elapsed waits for end and returns the milliseconds from start to end.
func (s *Stream) Elapsed(start, end *Event) (float64, error) {
	if err := check("cuEventSynchronize", api.cuEventSynchronize(end.e)); err != nil {
		return 0, err
	}
	var ms float32
	err := check("cuEventElapsedTime", api.cuEventElapsedTime(&ms, start.e, end.e))
	api.cuEventDestroy(start.e)
	api.cuEventDestroy(end.e)
	return float64(ms), err
}

// End waits for the queued work, reports the first error a kernel
// raised, and releases the thread.
func (s *Stream) End() error {
	defer s.done()
	return check("after the launches (a kernel faulted?)", api.cuCtxSynchronize())
}

// Graph is a recorded sequence of launches that replays with one call:
// the driver checks and encodes the launches once, not every step. A
// replay runs the same kernels with the same arguments; what changes from
// step to step must live in device memory the kernels read.
type Graph struct {
	d    *Device
	exec uintptr
}

// Capture records the launches queue makes into a graph; none of them
// runs. queue must only launch (no copies to or from the host, no
// events).
func (d *Device) Capture(queue func(*Stream) error) (*Graph, error) {
	if !d.Graphs() {
		return nil, errors.New("cuda: this driver cannot capture graphs (cuStreamBeginCapture_v2, cuGraphLaunch)")
	}
	s, err := d.Begin()
	if err != nil {
		return nil, err
	}
	defer s.done()
	// Thread-local mode: only calls on this thread that would break the
	// capture are refused.
	if err := check("cuStreamBeginCapture", api.cuStreamBeginCapture(d.stream, 1)); err != nil {
		return nil, err
	}
	s.capturing = true
	qerr := queue(s)
	var graph uintptr
	if err := check("cuStreamEndCapture", api.cuStreamEndCapture(d.stream, &graph)); err != nil && qerr == nil {
		qerr = err
	}
	if qerr != nil {
		if graph != 0 {
			api.cuGraphDestroy(graph)
		}
		return nil, qerr
	}
	defer api.cuGraphDestroy(graph)
	g := &Graph{d: d}
	if err := check("cuGraphInstantiateWithFlags", api.cuGraphInstantiateWithFlags(&g.exec, graph, 0)); err != nil {
		return nil, err
	}
	return g, nil
}

// Launch runs the graph on the device's stream and waits for it.
func (g *Graph) Launch() error {
	done, err := g.d.enter()
	if err != nil {
		return err
	}
	defer done()
	if err := check("cuGraphLaunch", api.cuGraphLaunch(g.exec, g.d.stream)); err != nil {
		return err
	}
	return check("after the graph's launches (a kernel faulted?)", api.cuCtxSynchronize())
}

// Destroy releases the graph.
func (g *Graph) Destroy() {
	if g.exec == 0 {
		return
	}
	if done, err := g.d.enter(); err == nil {
		api.cuGraphExecDestroy(g.exec)
		done()
	}
	g.exec = 0
}
