//go:build !(linux || darwin)

package cuda

import "errors"

// ErrUnsupported is returned where purego cannot load libraries.
var ErrUnsupported = errors.New("cuda: the CUDA backend runs on Linux (purego loads libcuda.so.1)")

// Device is unavailable on this platform.
type Device struct{}

// Open always fails here.
func Open() (*Device, error) { return nil, ErrUnsupported }

// Available is false here.
func Available() bool { return false }
