//go:build linux || darwin

package gpu

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/cuda"
	"github.com/minerva-ml/minerva/runtime/mslemu"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// cudaDevice adapts runtime/cuda to Device: the program's kernels.metal
// translated to CUDA C++, compiled by NVRTC, launched in order on one
// stream. Weights are copied once into device memory; the arena and the
// KV cache live there too, so the executor moves tokens and logits with
// Write and Read (DeviceMemory).
type cudaDevice struct {
	dev     *cuda.Device
	mod     *cuda.Module
	kernels map[string]cudaKernel
	buffers []*cudaBuffer
	weights []*cuda.Buffer // one per checkpoint tensor (TensorBuffer)
	// staging holds the bytes launches bind (ParamBytes), copied from
	// stagingHost before each step.
	staging     *cuda.Buffer
	stagingHost []byte
	graphs      map[int]*cudaGraph // by call size (Replay)
	// Profile, when set, receives each launch's GPU time in milliseconds
	// (one event pair per launch; it serialises nothing but adds work).
	Profile func(kernel string, ms float64)
}

type cudaKernel struct {
	f      *cuda.Function
	params []cuda.Param
}

// CUDASource is the CUDA C++ a program's kernels.metal becomes, and each
// kernel's entry parameters.
func CUDASource(out *program.Code) (string, []cuda.Kernel, error) {
	descs := mslemu.Signatures(out.Kernels)
	for i, k := range out.Kernels {
		descs[i].MaxTotalThreadsPerThreadgroup = k.Threads[0] * k.Threads[1] * k.Threads[2]
	}
	return cuda.Translate(out.Metal, descs)
}

// NewCUDA opens the first NVIDIA GPU and compiles the program's kernels.
func NewCUDA(out *program.Code) (Device, error) {
	src, ks, err := CUDASource(out)
	if err != nil {
		return nil, fmt.Errorf("BUG: translating kernels.metal to CUDA: %w", err)
	}
	dev, err := cuda.Open()
	if err != nil {
		return nil, err
	}
	var opts []string
	if os.Getenv("MINERVA_CUDA_VERBOSE") == "1" {
		opts = append(opts, "--ptxas-options=-v")
	}
	mod, err := dev.Compile(src, opts...)
	if err != nil {
		dev.Close()
		return nil, err
	}
	if mod.Log != "" && len(opts) > 0 {
		fmt.Fprintln(os.Stderr, mod.Log)
	}
	c := &cudaDevice{dev: dev, mod: mod, kernels: map[string]cudaKernel{}, graphs: map[int]*cudaGraph{}}
	for _, k := range ks {
		f, err := mod.Function(k.Name)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.kernels[k.Name] = cudaKernel{f, k.Params}
	}
	return c, nil
}

// CUDAAvailable reports whether a CUDA device can be opened here.
func CUDAAvailable() bool { return cuda.Available() }

// cudaBuffer is device memory with a host copy for Bytes: tests read and
// write the arena and the cache through it. Bytes fetches the device's
// contents when the copy is stale and marks it dirty; the next Run sends
// dirty copies back first, and every Run makes the copies stale.
type cudaBuffer struct {
	b     *cuda.Buffer
	host  []byte
	stale bool
	dirty bool
	err   error // a failed read-back in Bytes, which the next Run returns
}

func (b *cudaBuffer) Bytes() []byte {
	if b.host == nil || b.stale {
		if b.host == nil {
			b.host = make([]byte, b.b.Len())
		}
		if err := b.b.Read(0, b.host); err != nil {
			// Bytes has no error to return (Buffer is shared with
			// Metal and mslemu, whose memory is the host's): keep the
			// error for the next Run to return, and hand back zeros
			// rather than a stale copy.
			clear(b.host)
			b.err = fmt.Errorf("reading a GPU buffer back to the host: %w", err)
			return b.host
		}
		b.stale = false
	}
	b.dirty = true
	return b.host
}

// Write and Read implement DeviceMemory.
func (b *cudaBuffer) Write(off int, p []byte) error {
	if b.dirty {
		copy(b.host[off:], p)
	}
	return b.b.Write(off, p)
}

func (b *cudaBuffer) Read(off int, p []byte) error { return b.b.Read(off, p) }

func (c *cudaDevice) NewBuffer(size int) (Buffer, error) {
	b, err := c.dev.Alloc(size)
	if err != nil {
		return nil, err
	}
	cb := &cudaBuffer{b: b, stale: true}
	c.buffers = append(c.buffers, cb)
	return cb, nil
}

// FileBuffer copies a checkpoint file into device memory once.
func (c *cudaDevice) FileBuffer(f weights.MappedFile) (Buffer, error) {
	b, err := c.NewBuffer(len(f.Data))
	if err != nil {
		return nil, err
	}
	if err := b.(*cudaBuffer).b.Write(0, f.Data); err != nil {
		return nil, fmt.Errorf("copying %s to the GPU: %w", f.Path, err)
	}
	return b, nil
}

// TensorBuffer copies one checkpoint tensor into an allocation of its
// own, so that every weight starts on a 256-byte boundary whatever its
// offset in the file: the compatibility layer then reads a packed vector
// of a weight row with one load (prelude.cuh, packed_vec). The kernels
// never write weights, so these buffers have no host copy to keep fresh.
func (c *cudaDevice) TensorBuffer(t *weights.Tensor) (Buffer, error) {
	b, err := c.dev.Alloc(len(t.Data))
	if err != nil {
		return nil, err
	}
	c.weights = append(c.weights, b)
	if err := b.Write(0, t.Data); err != nil {
		return nil, fmt.Errorf("copying tensor %s to the GPU: %w", t.Name, err)
	}
	return &cudaBuffer{b: b, stale: true}, nil
}

// Run launches a step's dispatches in order on one stream: each kernel
// starts after the previous one finished (or, with programmatic
// dependent launch, waits for it before touching memory), which covers
// every barrier the step asks for.
func (c *cudaDevice) Run(launches []Launch) error {
	if err := c.sendHostCopies(); err != nil {
		return err
	}
	slots, offs, size := bytesSlots(launches)
	if err := c.stage(slots, size); err != nil {
		return err
	}
	s, err := c.dev.Begin()
	if err != nil {
		return err
	}
	if err := c.queue(s, launches, offs); err != nil {
		s.End()
		return err
	}
	if err := s.End(); err != nil {
		return err
	}
	c.markStale()
	return nil
}

// cudaGraph is a call size's launches captured once, and the byte slices
// they bind, copied to the staging buffer before each replay.
type cudaGraph struct {
	g     *cuda.Graph
	n     int
	slots [][]byte
	size  int
}

// Replay implements Replayer with a CUDA graph per call size: the
// driver encodes a step's launches once, and a step is one call. Without
// graphs (an old driver, MINERVA_CUDA_GRAPHS=0), or while profiling
// launch by launch, it is Run.
func (c *cudaDevice) Replay(key int, launches []Launch) error {
	if c.Profile != nil || !c.dev.Graphs() {
		return c.Run(launches)
	}
	if err := c.sendHostCopies(); err != nil {
		return err
	}
	g := c.graphs[key]
	if g != nil && g.n != len(launches) {
		g.g.Destroy()
		delete(c.graphs, key)
		g = nil
	}
	if g != nil {
		// The staging buffer already holds g.size bytes: it does not grow.
		if err := c.stage(g.slots, g.size); err != nil {
			return err
		}
	} else {
		slots, offs, size := bytesSlots(launches)
		if err := c.stage(slots, size); err != nil {
			return err
		}
		graph, err := c.dev.Capture(func(s *cuda.Stream) error { return c.queue(s, launches, offs) })
		if err != nil {
			return err
		}
		g = &cudaGraph{g: graph, n: len(launches), slots: slots, size: size}
		c.graphs[key] = g
	}
	if err := g.g.Launch(); err != nil {
		return err
	}
	c.markStale()
	return nil
}

// sendHostCopies returns an error a read-back left, and sends the host
// copies that tests changed through Bytes.
func (c *cudaDevice) sendHostCopies() error {
	for _, b := range c.buffers {
		if err := b.err; err != nil {
			b.err = nil
			return err
		}
	}
	for _, b := range c.buffers {
		if b.dirty {
			if err := b.b.Write(0, b.host); err != nil {
				return err
			}
			b.dirty = false
		}
	}
	return nil
}

func (c *cudaDevice) markStale() {
	for _, b := range c.buffers {
		b.stale = true
	}
}

// bytesSlots lays out the distinct byte slices that launches bind (the
// step arguments, one slice for the whole step) in the staging buffer,
// each at a 256-byte boundary, keyed by the slice's first byte.
func bytesSlots(launches []Launch) (slots [][]byte, offs map[*byte]int, size int) {
	offs = map[*byte]int{}
	for _, l := range launches {
		for _, b := range l.Binds {
			if b.Buffer != nil || len(b.Bytes) == 0 {
				continue
			}
			p := unsafe.SliceData(b.Bytes)
			if _, ok := offs[p]; ok {
				continue
			}
			offs[p] = size
			slots = append(slots, b.Bytes)
			size += (len(b.Bytes) + 255) / 256 * 256
		}
	}
	return slots, offs, size
}

// stage copies slots, laid out by bytesSlots, to the staging buffer,
// growing it (and dropping the graphs that bound the old one) when it is
// too small.
func (c *cudaDevice) stage(slots [][]byte, size int) error {
	if size == 0 {
		return nil
	}
	if c.staging == nil || c.staging.Len() < size {
		for k, g := range c.graphs {
			g.g.Destroy()
			delete(c.graphs, k)
		}
		if c.staging != nil {
			c.staging.Free()
		}
		var err error
		if c.staging, err = c.dev.Alloc(max(size, 64<<10)); err != nil {
			c.staging = nil
			return err
		}
		c.stagingHost = make([]byte, c.staging.Len())
	}
	off := 0
	for _, b := range slots {
		copy(c.stagingHost[off:], b)
		off += (len(b) + 255) / 256 * 256
	}
	return c.staging.Write(0, c.stagingHost[:size])
}

// queue launches a step's dispatches on s; offs places each bound byte
// slice in the staging buffer.
func (c *cudaDevice) queue(s *cuda.Stream, launches []Launch, offs map[*byte]int) error {
	var args []cuda.Arg
	var tgOff []int
	for _, l := range launches {
		k, ok := c.kernels[l.Kernel]
		if !ok {
			return fmt.Errorf("%s: BUG: no CUDA kernel %s", l.Label, l.Kernel)
		}
		// Threadgroup memory: each [[threadgroup(n)]] region at a
		// 16-aligned offset of the block's dynamic shared memory.
		tgOff = append(tgOff[:0], 0)
		for i, n := range l.TGMem {
			tgOff = append(tgOff, tgOff[i]+(n+15)/16*16)
		}
		args = args[:0]
		for _, p := range k.params {
			if p.Kind == cuda.ParamTGOffset {
				if p.Index >= len(l.TGMem) {
					return fmt.Errorf("%s: kernel %s: no length for [[threadgroup(%d)]]", l.Label, l.Kernel, p.Index)
				}
				args = append(args, cuda.Arg{Bytes: le32(uint32(tgOff[p.Index]))})
				continue
			}
			b, ok := bound(l.Binds, p.Index)
			if !ok {
				return fmt.Errorf("%s: kernel %s: nothing bound at [[buffer(%d)]] (%s)", l.Label, l.Kernel, p.Index, p.Name)
			}
			if p.Kind == cuda.ParamBytes {
				if b.Buffer != nil {
					return fmt.Errorf("%s: kernel %s: [[buffer(%d)]] %s is a constant reference; the CUDA backend stages bytes for it, so bind bytes", l.Label, l.Kernel, p.Index, p.Name)
				}
				if len(b.Bytes) == 0 {
					return fmt.Errorf("%s: kernel %s: [[buffer(%d)]] %s is bound to no bytes", l.Label, l.Kernel, p.Index, p.Name)
				}
				args = append(args, cuda.Arg{Ptr: c.staging.Ptr() + uint64(offs[unsafe.SliceData(b.Bytes)])})
				continue
			}
			if b.Buffer == nil {
				return fmt.Errorf("%s: kernel %s: [[buffer(%d)]] %s is a pointer; bytes cannot be bound to it on CUDA", l.Label, l.Kernel, p.Index, p.Name)
			}
			args = append(args, cuda.Arg{Ptr: b.Buffer.(*cudaBuffer).b.Ptr() + uint64(b.Offset)})
		}
		var start *cuda.Event
		if c.Profile != nil {
			start, _ = s.Record()
		}
		if err := s.Launch(k.f, l.Groups, l.Threads, tgOff[len(l.TGMem)], args); err != nil {
			return fmt.Errorf("%s: %w", l.Label, err)
		}
		if c.Profile != nil {
			end, _ := s.Record()
			ms, err := s.Elapsed(start, end)
			if err != nil {
				return fmt.Errorf("%s: %w", l.Label, err)
			}
			c.Profile(l.Kernel, ms)
		}
	}
	return nil
}

// bound is the binding at [[buffer(index)]].
func bound(binds []Bind, index int) (Bind, bool) {
	for _, b := range binds {
		if b.Index == index {
			return b, true
		}
	}
	return Bind{}, false
}

func le32(v uint32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)} }

func (c *cudaDevice) Close() error {
	for k, g := range c.graphs {
		g.g.Destroy()
		delete(c.graphs, k)
	}
	if c.staging != nil {
		c.staging.Free()
		c.staging = nil
	}
	for _, b := range c.buffers {
		b.b.Free()
	}
	c.buffers = nil
	for _, b := range c.weights {
		b.Free()
	}
	c.weights = nil
	if c.mod != nil {
		c.mod.Unload()
	}
	return c.dev.Close()
}

// SetProfile makes a CUDA device report each launch's GPU time; other
// devices ignore it.
func SetProfile(d Device, f func(kernel string, ms float64)) {
	if c, ok := d.(*cudaDevice); ok {
		c.Profile = f
	}
}

// CUDAKernelResources lists each kernel's registers per thread and local
// (spilled or stack) bytes per thread, for a CUDA device; nil otherwise.
func CUDAKernelResources(d Device) map[string][2]int {
	c, ok := d.(*cudaDevice)
	if !ok {
		return nil
	}
	out := map[string][2]int{}
	for name, k := range c.kernels {
		out[name] = [2]int{k.f.Attribute(4), k.f.Attribute(3)} // CU_FUNC_ATTRIBUTE_NUM_REGS, LOCAL_SIZE_BYTES
	}
	return out
}
