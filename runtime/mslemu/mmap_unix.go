//go:build unix

package mslemu

import (
	"os"
	"syscall"
)

// mapShared maps the first size bytes of f, shared with other processes.
func mapShared(f *os.File, size int, writable bool) ([]byte, error) {
	prot := syscall.PROT_READ
	if writable {
		prot |= syscall.PROT_WRITE
	}
	return syscall.Mmap(int(f.Fd()), 0, size, prot, syscall.MAP_SHARED)
}

func unmap(b []byte) {
	if b != nil {
		syscall.Munmap(b)
	}
}
