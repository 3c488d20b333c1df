//go:build linux || darwin

package synth

import "golang.org/x/sys/unix"

// diskFree is the space the file system holding dir gives an unprivileged
// writer, in bytes; false when it cannot be told.
func diskFree(dir string) (int64, bool) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	if free > 1<<62 {
		free = 1 << 62
	}
	return int64(free), true
}
