// The interface between the two translation units of an mslemu driver:
// the kernel TU (kernels.metal + generated glue, compiled with the Metal
// compatibility macros) and the driver TU (driver/driver.cpp: protocol,
// worker pool, fiber scheduler). Nothing here may depend on the macros of
// metal_compat.hpp, and nothing here may use the Metal spellings.
#ifndef MSLEMU_RUNTIME_HPP
#define MSLEMU_RUNTIME_HPP

#include <stdint.h>

namespace mslemu {
namespace rt {

// Lanes per SIMD-group, as on every Apple GPU.
constexpr unsigned kSimdWidth = 32;
// Bytes each lane may deposit in one SIMD-group exchange: the largest value
// a simd_* function moves (a 16-byte vector) or simdgroup_load's arguments,
// plus room for the uniform operand (lane, delta, mask) that is checked.
constexpr unsigned kSlotBytes = 64;
// Metal's limits: 31 buffer and threadgroup-memory argument slots.
constexpr unsigned kMaxBindings = 31;

// Values of the position attributes for one thread. Three-component
// attributes are stored as x, y, z; the glue narrows them to the declared
// attribute type (uint, uint2, ushort3, ...).
struct Thread {
  uint32_t thread_position_in_grid[3];
  uint32_t threadgroup_position_in_grid[3];
  uint32_t thread_position_in_threadgroup[3];
  uint32_t threads_per_threadgroup[3];
  uint32_t threadgroups_per_grid[3];
  uint32_t threads_per_grid[3];
  // The threadgroup size of the dispatch; threads_per_threadgroup is
  // smaller in the edge threadgroups of a dispatchThreads grid.
  uint32_t dispatch_threads_per_threadgroup[3];
  uint32_t thread_index_in_threadgroup;
  uint32_t simdgroup_index_in_threadgroup;
  uint32_t thread_index_in_simdgroup;
  uint32_t simdgroups_per_threadgroup;
};

// Arguments of one dispatch as one worker sees them: buffer pointers (byte
// offset applied) and this worker's threadgroup memory.
struct Launch {
  void* buffers[kMaxBindings];
  void* tgmem[kMaxBindings];
  uint32_t tglen[kMaxBindings];
};

typedef void (*LaunchFn)(const Launch*, const Thread*);

enum ParamKind : uint8_t { kParamBuffer = 0, kParamThreadgroup = 1 };

// A bound parameter of a kernel, so that the driver can say which argument
// a dispatch forgot to bind.
struct ParamInfo {
  uint8_t kind;   // ParamKind
  uint8_t index;  // [[buffer(n)]] or [[threadgroup(n)]]
  const char* name;
};

struct KernelInfo {
  const char* name;
  LaunchFn launch;
  uint32_t max_threads;  // max_total_threads_per_threadgroup, 1024 if unset
  const ParamInfo* params;
  uint32_t nparams;
};

// What a lane sees after a SIMD-group exchange: the slots of all 32 lanes
// (kSlotBytes each) and the mask of lanes that took part.
struct SimdView {
  const unsigned char* slots;
  uint32_t active;
  uint32_t lane;
};

// Implemented by the driver. Each call suspends the calling fiber until the
// other participants arrive. file and line are the call site in the kernel
// source; sites are compared to detect divergence.
void threadgroup_barrier(const char* file, int line);
SimdView simd_exchange(const void* data, unsigned size, const char* what,
                       const char* file, int line);
// Ends the current threadgroup with an error that names the kernel, the
// threadgroup and the thread.
[[noreturn]] void kernel_error(const char* file, int line, const char* msg);

}  // namespace rt
}  // namespace mslemu

// Defined by the generated glue in the kernel TU.
extern "C" const mslemu::rt::KernelInfo mslemu_kernels[];
extern "C" const unsigned mslemu_kernel_count;

#endif
