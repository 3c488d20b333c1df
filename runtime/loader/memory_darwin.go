package loader

import "golang.org/x/sys/unix"

// physicalMemory is the machine's RAM in bytes (unified memory on Apple
// Silicon, which Metal buffers share), or false.
func physicalMemory() (int64, bool) {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil || n == 0 {
		return 0, false
	}
	return int64(min(n, 1<<62)), true
}
