package weights

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"unsafe"
)

// ErrChanged is matched (errors.Is) by the error FaultError returns: a
// mapped checkpoint file was cut short (or replaced in place) while in
// use, and reading its tensors faulted.
var ErrChanged = errors.New("the checkpoint changed on disk")

// ChangedError says which mapped file faulted, and how it changed.
type ChangedError struct {
	Path string
	// Mapped is the size the file had when it was mapped; Now its size
	// at the fault, or -1 when it cannot be read any more.
	Mapped, Now int64
	Addr        uintptr
}

func (e *ChangedError) Error() string {
	now := "can no longer be read"
	if e.Now >= 0 {
		now = fmt.Sprintf("is now %d bytes, %d when it was loaded", e.Now, e.Mapped)
	}
	return fmt.Sprintf("%v: %s %s, so its weights cannot be read (a fault at %#x); put the file back and restart to load it again",
		ErrChanged, filepath.Base(e.Path), now, e.Addr)
}

func (e *ChangedError) Unwrap() error { return ErrChanged }

// FaultError turns a value recovered from a panic into a *ChangedError
// when it is a memory fault (runtime/debug.SetPanicOnFault) inside one of
// the checkpoint's mapped files; otherwise it returns nil and the caller
// should panic again: any other fault is a bug.
//
// The operating system raises SIGBUS when a process reads a page of a
// mapping past the end of its (now shorter) file. Without SetPanicOnFault
// the Go runtime ends the process; with it, the goroutine that read the
// page panics with a runtime.Error that carries the address.
func (c *Checkpoint) FaultError(recovered any) error {
	if c == nil {
		return nil
	}
	re, ok := recovered.(runtime.Error)
	if !ok {
		return nil
	}
	fault, ok := re.(interface{ Addr() uintptr })
	if !ok {
		return nil
	}
	addr := fault.Addr()
	for _, f := range c.files {
		if !f.Mapped || len(f.Data) == 0 {
			continue
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(f.Data)))
		// The mapping covers whole pages: the last one may fault past
		// len(Data).
		end := start + uintptr(len(f.Data)) + uintptr(os.Getpagesize())
		if addr < start || addr >= end {
			continue
		}
		now := int64(-1)
		if info, err := os.Stat(f.Path); err == nil {
			now = info.Size()
		}
		return &ChangedError{Path: f.Path, Mapped: int64(len(f.Data)), Now: now, Addr: addr}
	}
	return nil
}
