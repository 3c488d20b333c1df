//go:build unix

package cpu

import "syscall"

// mapZeroed returns n bytes of zeroed memory straight from the OS, which
// commits each page when it is first written. The arena and the KV cache
// are allocated so: a 128K-token cache is gigabytes that a short
// conversation never touches, and Go's allocator would zero a large
// allocation that reuses freed heap by writing every page, at load.
func mapZeroed(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	return syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

func unmapZeroed(b []byte) {
	if len(b) > 0 {
		syscall.Munmap(b)
	}
}
