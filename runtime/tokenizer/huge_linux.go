package tokenizer

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeSlice allocates a zeroed, pointer-free table of n Ts outside the Go
// heap, in 2 MiB transparent huge pages where the kernel has them: on
// this VM a 4 KiB page costs ~10 µs at first touch and a TLB miss on
// every random probe, where a huge page costs one fault for 512 of them.
// The memory is released when owner becomes unreachable. Small tables,
// or a failed mapping, come from the Go heap.
func hugeSlice[T any](owner *Tokenizer, n int) []T {
	const huge = 2 << 20
	var zero T
	size := n * int(unsafe.Sizeof(zero))
	if size < huge {
		return make([]T, n)
	}
	region, err := unix.Mmap(-1, 0, size+huge, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return make([]T, n)
	}
	off := (huge - int(uintptr(unsafe.Pointer(unsafe.SliceData(region))))%huge) % huge
	table := region[off : off+size]
	unix.Madvise(table, unix.MADV_HUGEPAGE) // advice only: 4 KiB pages work too
	runtime.AddCleanup(owner, func(r []byte) { unix.Munmap(r) }, region)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(table))), n)
}
