//go:build !linux && !darwin

package loader

// physicalMemory cannot tell the machine's memory here; the backend's
// allocation then reports what does not fit.
func physicalMemory() (int64, bool) { return 0, false }
