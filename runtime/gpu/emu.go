package gpu

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/mslemu"
	"github.com/minerva-ml/minerva/runtime/weights"
)

// emu adapts mslemu to Device.
type emu struct {
	dev  *mslemu.Device
	seed uint64
	bufs []*mslemu.Buffer
}

// CacheDir is where built mslemu drivers are kept between runs.
func CacheDir() string {
	if d := os.Getenv("MINERVA_MSLEMU_CACHE"); d != "" {
		return d
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "minerva", "mslemu")
}

// NewEmulator compiles a program's kernels.metal with the system C++
// compiler against the Metal-compatibility layer and starts its driver.
// seed drives the order in which each threadgroup's threads run.
func NewEmulator(out *program.Code, seed uint64) (Device, error) {
	glue, err := mslemu.Glue(mslemu.Signatures(out.Kernels))
	if err != nil {
		return nil, fmt.Errorf("BUG: mslemu glue: %w", err)
	}
	exe, err := mslemu.Build(out.Metal, glue, CacheDir())
	if err != nil {
		return nil, err
	}
	dev, err := mslemu.Start(exe)
	if err != nil {
		return nil, err
	}
	return &emu{dev: dev, seed: seed}, nil
}

func (e *emu) NewBuffer(size int) (Buffer, error) {
	b, err := e.dev.NewBuffer(size)
	if err != nil {
		return nil, err
	}
	e.bufs = append(e.bufs, b)
	return b, nil
}

// FileBuffer maps a checkpoint file in the driver; an embedded checkpoint
// (no file) is copied into shared memory once.
func (e *emu) FileBuffer(f weights.MappedFile) (Buffer, error) {
	if f.Mapped {
		b, err := e.dev.MapFile(f.Path)
		if err != nil {
			return nil, err
		}
		e.bufs = append(e.bufs, b)
		return b, nil
	}
	b, err := e.NewBuffer(len(f.Data))
	if err != nil {
		return nil, err
	}
	copy(b.Bytes(), f.Data)
	return b, nil
}

func (e *emu) Run(launches []Launch) error {
	for _, l := range launches {
		d := mslemu.Dispatch{Kernel: l.Kernel, Threadgroups: l.Groups, ThreadsPerThreadgroup: l.Threads, Seed: e.seed}
		e.seed++
		for _, b := range l.Binds {
			mb := mslemu.Binding{Index: b.Index, Offset: b.Offset, Bytes: b.Bytes}
			if b.Buffer != nil {
				mb.Buffer = b.Buffer.(*mslemu.Buffer)
			}
			d.Buffers = append(d.Buffers, mb)
		}
		for i, n := range l.TGMem {
			d.ThreadgroupMemory = append(d.ThreadgroupMemory, mslemu.ThreadgroupMemory{Index: i, Length: (n + 15) / 16 * 16})
		}
		if err := e.dev.Dispatch(d); err != nil {
			return fmt.Errorf("%s: %w", l.Label, err)
		}
	}
	return nil
}

func (e *emu) Close() error {
	for _, b := range e.bufs {
		b.Release()
	}
	return e.dev.Close()
}
