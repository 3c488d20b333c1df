//go:build !(darwin && arm64)

package metal

// Metal exists only on macOS; this package drives it only on Apple Silicon
// (darwin/arm64), whose calling convention metal_darwin.go relies on. Here
// Open fails, so no Device, Library, Buffer, CommandBuffer or Encoder with a
// live handle can exist, and the functions below it are unreachable.

func openDevice() (*Device, error) { return nil, ErrUnsupported }

func unreachable() { panic("BUG: metal: a Metal object exists on a platform where Open always fails") }

func (d *Device) closeDevice()          { unreachable() }
func (d *Device) allocatedSize() uint64 { unreachable(); return 0 }

func (d *Device) compileLibrary(string, LanguageVersion, MathMode, string) (*Library, error) {
	unreachable()
	return nil, nil
}

func (d *Device) loadLibrary(string) (*Library, error) { unreachable(); return nil, nil }
func (l *Library) newPipeline(string) (*Pipeline, error) {
	unreachable()
	return nil, nil
}
func releaseObject(uintptr)                      { unreachable() }
func setObjectLabel(uintptr, string)             { unreachable() }
func (d *Device) newBuffer(int) (*Buffer, error) { unreachable(); return nil, nil }
func (d *Device) newBufferNoCopy([]byte, int) (*Buffer, error) {
	unreachable()
	return nil, nil
}
func (d *Device) newCommandBuffer() (uintptr, error) { unreachable(); return 0, nil }
func (cb *CommandBuffer) newComputeEncoder(bool) (uintptr, error) {
	unreachable()
	return 0, nil
}
func (cb *CommandBuffer) commit()                             { unreachable() }
func (cb *CommandBuffer) waitUntilCompleted()                 { unreachable() }
func (cb *CommandBuffer) gpuError() error                     { unreachable(); return nil }
func (cb *CommandBuffer) gpuTimes() (start, end float64)      { unreachable(); return 0, 0 }
func encSetPipeline(enc, pipeline uintptr)                    { unreachable() }
func encSetBuffer(enc, buf uintptr, offset, index int)        { unreachable() }
func encSetBytes(enc uintptr, data []byte, index int)         { unreachable() }
func encSetThreadgroupMemory(enc uintptr, n, index int)       { unreachable() }
func encDispatch(enc uintptr, grid, group [3]int, exact bool) { unreachable() }
func encBarrier(enc uintptr)                                  { unreachable() }
func encEnd(enc uintptr)                                      { unreachable() }
