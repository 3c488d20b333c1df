//go:build !unix

package mslemu

import (
	"errors"
	"os"
)

func mapShared(f *os.File, size int, writable bool) ([]byte, error) {
	return nil, errors.New("mslemu: shared buffers need a unix system (Linux or macOS)")
}

func unmap(b []byte) {}
