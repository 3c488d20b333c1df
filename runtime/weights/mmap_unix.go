//go:build unix

package weights

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps the whole of f read-only. size must be f's size and positive.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if int64(int(size)) != size {
		return nil, fmt.Errorf("%s has %d bytes, more than this platform can map", f.Name(), size)
	}
	// MAP_SHARED read-only: pages come straight from the page cache and are
	// shared with every other process reading the same checkpoint.
	data, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("memory-map %s: %w", f.Name(), err)
	}
	return data, nil
}

func unmapFile(data []byte) error {
	return unix.Munmap(data)
}

// populate faults in a mapping's pages: MADV_POPULATE_READ where the
// kernel has it, else MADV_WILLNEED (read-ahead only).
func populate(data []byte) error {
	if err := unix.Madvise(data, madvPopulateRead); err == nil {
		return nil
	}
	return unix.Madvise(data, unix.MADV_WILLNEED)
}
