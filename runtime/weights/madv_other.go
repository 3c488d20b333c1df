//go:build unix && !linux

package weights

import "golang.org/x/sys/unix"

// No MADV_POPULATE_READ here: populate falls back to MADV_WILLNEED.
const madvPopulateRead = unix.MADV_WILLNEED
