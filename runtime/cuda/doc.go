// Package cuda runs the kernels.metal that Minerva emits on an NVIDIA GPU.
//
// Translate rewrites the Metal Shading Language token by token into CUDA
// C++ compiled against a compatibility header (prelude.cuh) and generates
// one __global__ entry per kernel from the kernel signatures that mslemu's
// launch glue is made from. Device compiles it with NVRTC and launches it
// through the CUDA driver API. libcuda.so.1 and libnvrtc are loaded at run
// time with purego, so the binary builds without cgo and runs where no
// GPU is present (Open then returns an error naming what is missing).
//
// docs/gpu.md says what the layer maps and what it cannot.
package cuda
