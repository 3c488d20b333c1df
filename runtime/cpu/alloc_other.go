//go:build !unix

package cpu

// mapZeroed returns n zeroed bytes from the Go heap where there is no
// mmap.
func mapZeroed(n int) ([]byte, error) { return make([]byte, n), nil }

func unmapZeroed([]byte) {}
