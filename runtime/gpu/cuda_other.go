//go:build !(linux || darwin)

package gpu

import (
	"github.com/minerva-ml/minerva/codegen"
	"github.com/minerva-ml/minerva/runtime/cuda"
)

// NewCUDA is unavailable on this platform.
func NewCUDA(out *codegen.Output) (Device, error) { return nil, cuda.ErrUnsupported }

// CUDAAvailable is false here.
func CUDAAvailable() bool { return false }

// SetProfile does nothing here.
func SetProfile(d Device, f func(kernel string, ms float64)) {}

// CUDAKernelResources is nil here.
func CUDAKernelResources(d Device) map[string][2]int { return nil }
