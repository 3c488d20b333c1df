package loader

import "golang.org/x/sys/unix"

// physicalMemory is the machine's RAM in bytes, or false.
func physicalMemory() (int64, bool) {
	var info unix.Sysinfo_t
	if err := unix.Sysinfo(&info); err != nil {
		return 0, false
	}
	n := uint64(info.Totalram) * uint64(max(info.Unit, 1))
	return int64(min(n, 1<<62)), n > 0
}
