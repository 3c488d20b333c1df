package gpu

import (
	"fmt"
	"os"

	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/metal"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// metalDevice adapts runtime/metal to Device. It runs on macOS on Apple
// Silicon; elsewhere NewMetal returns metal.ErrUnsupported. (It compiles
// and vets everywhere: runtime/metal's API is the same on every platform.)
type metalDevice struct {
	dev     *metal.Device
	lib     *metal.Library
	pipes   map[string]*metal.Pipeline
	buffers []*metal.Buffer
	// perDispatch gives every dispatch its own encoder labelled with the
	// kernel's name, so a GPU fault names the kernel (MINERVA_METAL_DEBUG=1).
	perDispatch bool
}

// NewMetal opens the system's Metal device and compiles the program's
// kernels.metal (or loads metallib, when the artifact has one).
func NewMetal(out *program.Code) (Device, error) { return NewMetalWith(out, "") }

// NewMetalWith is NewMetal with a precompiled metallib path ("" for none).
func NewMetalWith(out *program.Code, metallib string) (Device, error) {
	dev, err := metal.Open()
	if err != nil {
		return nil, err
	}
	var lib *metal.Library
	if metallib != "" {
		lib, err = dev.LoadLibrary(metallib)
	} else {
		lib, err = dev.CompileLibrary(out.Metal, metal.CompileOptions{LanguageVersion: metal.DefaultLanguageVersion, Label: "kernels.metal"})
	}
	if err != nil {
		dev.Close()
		return nil, err
	}
	m := &metalDevice{dev: dev, lib: lib, pipes: map[string]*metal.Pipeline{}, perDispatch: os.Getenv("MINERVA_METAL_DEBUG") == "1"}
	// Build every pipeline now, so a kernel that fails to compile is
	// reported by name before anything runs.
	for _, k := range out.Kernels {
		p, err := lib.Pipeline(k.Name)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("kernel %s: %w", k.Name, err)
		}
		if p.MaxTotalThreadsPerThreadgroup() < k.Threads[0]*k.Threads[1]*k.Threads[2] {
			m.Close()
			return nil, fmt.Errorf("kernel %s needs %v threads per threadgroup; the device allows %d", k.Name, k.Threads, p.MaxTotalThreadsPerThreadgroup())
		}
		m.pipes[k.Name] = p
	}
	return m, nil
}

// MetalAvailable reports whether a Metal device can be opened here.
func MetalAvailable() bool {
	d, err := metal.Open()
	if err != nil {
		return false
	}
	d.Close()
	return true
}

type metalBuffer struct{ b *metal.Buffer }

func (b metalBuffer) Bytes() []byte { return b.b.Contents() }

func (m *metalDevice) NewBuffer(size int) (Buffer, error) {
	b, err := m.dev.NewBuffer(size)
	if err != nil {
		return nil, err
	}
	m.buffers = append(m.buffers, b)
	return metalBuffer{b}, nil
}

// FileBuffer wraps a mapped checkpoint file as a no-copy buffer: the
// mapping is page aligned and its last page exists, so the buffer covers
// whole pages. An embedded checkpoint is copied once.
func (m *metalDevice) FileBuffer(f weights.MappedFile) (Buffer, error) {
	if !f.Mapped {
		b, err := m.NewBuffer(len(f.Data))
		if err != nil {
			return nil, err
		}
		copy(b.Bytes(), f.Data)
		return b, nil
	}
	page := os.Getpagesize()
	n := (len(f.Data) + page - 1) / page * page
	if n > cap(f.Data) {
		return nil, fmt.Errorf("BUG: the mapping of %s does not cover whole pages", f.Path)
	}
	b, err := m.dev.NewBufferNoCopy(f.Data[:n])
	if err != nil {
		return nil, err
	}
	b.SetLabel(f.Path)
	m.buffers = append(m.buffers, b)
	return metalBuffer{b}, nil
}

// Run encodes a step into one command buffer: one concurrent compute
// encoder, with a memory barrier before each dispatch that needs one.
func (m *metalDevice) Run(launches []Launch) error {
	cb, err := m.dev.NewCommandBuffer()
	if err != nil {
		return err
	}
	defer cb.Release()
	cb.SetLabel("minerva step")
	var enc *metal.Encoder
	for _, l := range launches {
		if enc == nil || m.perDispatch {
			if enc != nil {
				if err := enc.End(); err != nil {
					return err
				}
			}
			enc = cb.ComputeEncoder(true)
			enc.SetLabel(l.Kernel + ": " + l.Label)
		} else if l.Barrier {
			enc.MemoryBarrier()
		}
		enc.SetPipeline(m.pipes[l.Kernel])
		for _, b := range l.Binds {
			if b.Buffer == nil {
				enc.SetBytes(b.Bytes, b.Index)
				continue
			}
			enc.SetBuffer(b.Buffer.(metalBuffer).b, b.Offset, b.Index)
		}
		for i, n := range l.TGMem {
			enc.SetThreadgroupMemoryLength((n+15)/16*16, i)
		}
		enc.Dispatch(l.Groups, l.Threads)
	}
	if enc != nil {
		if err := enc.End(); err != nil {
			return err
		}
	}
	cb.Commit()
	cb.WaitUntilCompleted()
	return cb.Error()
}

func (m *metalDevice) Close() error {
	for _, b := range m.buffers {
		b.Release()
	}
	m.lib.Release()
	m.dev.Close()
	return nil
}
