// Hand-written kernels for mslemu's tests. Kernels whose names start with
// bug_ contain the mistakes the emulator must catch; the others are correct
// Metal. Their signatures are described in kernels_test.go.
#include <metal_stdlib>
using namespace metal;

// ---------------------------------------------------------------------------
// Threadgroup reduction: each threadgroup sums ntg floats.
kernel void tg_sum(device const float* in [[buffer(0)]],
                   device float* out [[buffer(1)]],
                   threadgroup float* shared [[threadgroup(0)]],
                   uint tid [[thread_index_in_threadgroup]],
                   uint tgid [[threadgroup_position_in_grid]],
                   uint ntg [[threads_per_threadgroup]]) {
  shared[tid] = in[tgid * ntg + tid];
  threadgroup_barrier(mem_flags::mem_threadgroup);
  for (uint stride = ntg / 2; stride > 0; stride /= 2) {
    if (tid < stride) shared[tid] += shared[tid + stride];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  if (tid == 0) out[tgid] = shared[0];
}

// tg_sum without the barrier between the loads and the first reads.
kernel void bug_sum_no_barrier(device const float* in [[buffer(0)]],
                               device float* out [[buffer(1)]],
                               threadgroup float* shared [[threadgroup(0)]],
                               uint tid [[thread_index_in_threadgroup]],
                               uint tgid [[threadgroup_position_in_grid]],
                               uint ntg [[threads_per_threadgroup]]) {
  shared[tid] = in[tgid * ntg + tid];
  for (uint stride = ntg / 2; stride > 0; stride /= 2) {
    if (tid < stride) shared[tid] += shared[tid + stride];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  if (tid == 0) out[tgid] = shared[0];
}

// A barrier that only the first 16 threads reach.
kernel void bug_divergent_barrier(device float* out [[buffer(0)]],
                                  threadgroup float* shared [[threadgroup(0)]],
                                  uint tid [[thread_index_in_threadgroup]]) {
  shared[tid] = float(tid);
  if (tid < 16) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  out[tid] = shared[tid];
}

// Two different barriers on the two sides of a branch.
kernel void bug_split_barrier(device float* out [[buffer(0)]],
                              uint tid [[thread_index_in_threadgroup]]) {
  if (tid % 2 == 0) {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  } else {
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  out[tid] = 1.0f;
}

// Threads past n return before a barrier the others reach.
kernel void bug_return_before_barrier(device float* out [[buffer(0)]],
                                      constant uint& n [[buffer(1)]],
                                      uint tid [[thread_index_in_threadgroup]]) {
  if (tid >= n) return;
  threadgroup_barrier(mem_flags::mem_device);
  out[tid] = 1.0f;
}

// Reads threadgroup memory that no thread wrote.
kernel void bug_uninitialised_tg(device float* out [[buffer(0)]],
                                 threadgroup float* shared [[threadgroup(0)]],
                                 uint tid [[thread_index_in_threadgroup]]) {
  out[tid] = shared[tid];
}

// ---------------------------------------------------------------------------
// SIMD-group functions. Each thread writes 12 results.
kernel void simd_ops(device const float* in [[buffer(0)]],
                     device float* out [[buffer(1)]],
                     uint gid [[thread_position_in_grid]],
                     uint lane [[thread_index_in_simdgroup]]) {
  float x = in[gid];
  device float* o = out + gid * 12;
  o[0] = simd_sum(x);
  o[1] = simd_max(x);
  o[2] = simd_min(x);
  o[3] = simd_shuffle_down(x, 3);
  o[4] = simd_prefix_exclusive_sum(x);
  o[5] = simd_prefix_inclusive_sum(x);
  o[6] = simd_shuffle(x, (lane * 7) % 32);
  o[7] = simd_shuffle_xor(x, 5);
  o[8] = simd_broadcast(x, 9);
  o[9] = simd_shuffle_up(x, 2);
  simd_vote v = simd_ballot(x > 10.0f);
  o[10] = float(uint(ulong(v) & 0xffffu)) + (simd_all(x >= 0.0f) ? 0.5f : 0.0f) + (simd_any(x > 30.0f) ? 0.25f : 0.0f);
  o[11] = simd_is_first() ? simd_broadcast_first(x) : -1.0f;
}

// simd_sum on the lanes left after the odd ones returned.
kernel void simd_sum_even_lanes(device const int* in [[buffer(0)]],
                                device int* out [[buffer(1)]],
                                uint gid [[thread_position_in_grid]]) {
  if (gid % 2 == 1) return;
  out[gid] = simd_sum(in[gid]);
}

// Lanes of one SIMD-group call different SIMD-group functions.
kernel void bug_simd_divergence(device float* out [[buffer(0)]],
                                uint lane [[thread_index_in_simdgroup]]) {
  float r;
  if (lane < 16) {
    r = simd_sum(1.0f);
  } else {
    r = simd_max(1.0f);
  }
  out[lane] = r;
}

// A SIMD-group function some lanes skip while the others wait at a barrier.
kernel void bug_simd_vs_barrier(device float* out [[buffer(0)]],
                                uint lane [[thread_index_in_simdgroup]]) {
  float r = 0.0f;
  if (lane < 8) r = simd_sum(1.0f);
  threadgroup_barrier(mem_flags::mem_threadgroup);
  out[lane] = r;
}

// simd_shuffle_down with a delta that is not uniform.
kernel void bug_simd_nonuniform_delta(device float* out [[buffer(0)]],
                                      uint lane [[thread_index_in_simdgroup]]) {
  out[lane] = simd_shuffle_down(float(lane), ushort(lane % 2 + 1));
}

// ---------------------------------------------------------------------------
// half and bfloat conversions.
kernel void half_bits_to_float(device const ushort* in [[buffer(0)]],
                               device float* out [[buffer(1)]],
                               device ushort* roundtrip [[buffer(2)]],
                               uint gid [[thread_position_in_grid]]) {
  half h = as_type<half>(in[gid]);
  float f = h;
  out[gid] = f;
  roundtrip[gid] = as_type<ushort>(half(f));
}

kernel void float_to_half_bits(device const float* in [[buffer(0)]],
                               device ushort* out [[buffer(1)]],
                               uint gid [[thread_position_in_grid]]) {
  out[gid] = as_type<ushort>(half(in[gid]));
}

kernel void bfloat_bits_to_float(device const ushort* in [[buffer(0)]],
                                 device float* out [[buffer(1)]],
                                 device ushort* roundtrip [[buffer(2)]],
                                 uint gid [[thread_position_in_grid]]) {
  bfloat b = as_type<bfloat>(in[gid]);
  float f = b;
  out[gid] = f;
  roundtrip[gid] = as_type<ushort>(bfloat(f));
}

kernel void float_to_bfloat_bits(device const float* in [[buffer(0)]],
                                 device ushort* out [[buffer(1)]],
                                 uint gid [[thread_position_in_grid]]) {
  out[gid] = as_type<ushort>(bfloat(in[gid]));
}

// half arithmetic rounds to half; half with float gives float.
kernel void half_arith(device const half* a [[buffer(0)]],
                       device const half* b [[buffer(1)]],
                       device half* sum [[buffer(2)]],
                       device half* prod [[buffer(3)]],
                       device float* mixed [[buffer(4)]],
                       uint gid [[thread_position_in_grid]]) {
  sum[gid] = a[gid] + b[gid];
  prod[gid] = a[gid] * b[gid];
  mixed[gid] = a[gid] * 3.0f + b[gid];
}

// ---------------------------------------------------------------------------
// Vectors, swizzles and as_type. Writes 64 floats.
struct VecArgs {
  float4 a;
  float4 b;
  int4 i;
  float s;
};

kernel void vector_ops(constant VecArgs& args [[buffer(0)]],
                       device float* out [[buffer(1)]],
                       device uint* bits [[buffer(2)]]) {
  float4 a = args.a, b = args.b;
  int k = 0;
  float4 r = a.wzyx;
  for (int j = 0; j < 4; j++) out[k++] = r[j];          // 0..3
  float2 s2 = a.xy + b.zw;
  out[k++] = s2.x; out[k++] = s2.y;                      // 4, 5
  float3 s3 = a.xyz * b.x - 1.0f;
  out[k++] = s3.x; out[k++] = s3.y; out[k++] = s3.z;     // 6..8
  float4 v = a;
  v.yx = b.xy;
  v.zw += 1.0f;
  for (int j = 0; j < 4; j++) out[k++] = v[j];          // 9..12
  float4 c = float4(a.xy, b.z, 7);
  for (int j = 0; j < 4; j++) out[k++] = c[j];          // 13..16
  float4 col = float4(a.rgb, 1.0f);
  col.ba = col.gr;
  for (int j = 0; j < 4; j++) out[k++] = col[j];        // 17..20
  float4 m = max(a, b) * 2.0f + min(a, args.s);
  for (int j = 0; j < 4; j++) out[k++] = m[j];          // 21..24
  bool4 gt = a > b;
  out[k++] = float(gt.x) + 2.0f * float(gt.y) + 4.0f * float(gt.z) + 8.0f * float(gt.w);  // 25
  out[k++] = any(gt) ? 1.0f : 0.0f;                     // 26
  out[k++] = all(a == a) ? 1.0f : 0.0f;                 // 27
  float4 sel = select(a, b, gt);
  for (int j = 0; j < 4; j++) out[k++] = sel[j];        // 28..31
  int4 iv = args.i;
  int4 iq = iv / 3 + iv % 3 * 10 + (iv << 2) - (iv >> 1);
  for (int j = 0; j < 4; j++) out[k++] = float(iq[j]);  // 32..35
  out[k++] = dot(a, b);                                 // 36
  out[k++] = length(a.xy);                              // 37
  float3 cr = cross(a.xyz, b.xyz);
  out[k++] = cr.x; out[k++] = cr.y; out[k++] = cr.z;     // 38..40
  float4 cl = clamp(b, 0.0f, 2.0f);
  for (int j = 0; j < 4; j++) out[k++] = cl[j];         // 41..44
  uint4 u = as_type<uint4>(a);
  for (int j = 0; j < 4; j++) bits[j] = u[j];
  bits[4] = as_type<uint>(args.s);
  half2 hh = half2(a.xy);
  bits[5] = as_type<uint>(hh);
  float2 back = as_type<float2>(as_type<ulong>(a.zw));
  out[k++] = back.x; out[k++] = back.y;                 // 45, 46
  float2 mx = mix(a.xy, b.xy, 0.25f);
  out[k++] = mx.x; out[k++] = mx.y;                     // 47, 48
  out[k++] = a.x > 0.0f ? a.x : -a.x;                   // 49
  float4 neg = -a;
  out[k++] = neg.w;                                     // 50
  packed_float3 p = float3(1.0f, 2.0f, 3.0f);
  out[k++] = p[0] + p[1] + p[2];                        // 51
  out[k++] = float(sizeof(float3)) + float(sizeof(packed_float3)) * 100.0f;  // 52
}

// ---------------------------------------------------------------------------
// Maths: 32 results per input.
kernel void math_ops(device const float* in [[buffer(0)]],
                     device float* out [[buffer(1)]],
                     uint gid [[thread_position_in_grid]]) {
  float x = in[gid];
  device float* o = out + gid * 32;
  o[0] = exp(x);
  o[1] = exp2(x);
  o[2] = log(fabs(x));
  o[3] = log2(fabs(x));
  o[4] = pow(fabs(x), 1.5f);
  o[5] = powr(fabs(x), 0.5f);
  o[6] = sqrt(fabs(x));
  o[7] = rsqrt(fabs(x));
  o[8] = tanh(x);
  o[9] = sin(x);
  o[10] = cos(x);
  o[11] = floor(x);
  o[12] = ceil(x);
  o[13] = round(x);
  o[14] = trunc(x);
  o[15] = sign(x);
  o[16] = abs(x);
  o[17] = min(x, 0.25f) + max(x, -0.25f);
  o[18] = fmin(x, NAN) + fmax(NAN, x);
  o[19] = clamp(x, -1.0f, 1.0f);
  o[20] = fma(x, 3.0f, 0.5f);
  o[21] = mix(x, 10.0f, 0.25f);
  o[22] = select(x, -x, x < 0.0f);
  o[23] = (isnan(x / 0.0f) ? 1.0f : 0.0f) + (isinf(x / 0.0f) ? 2.0f : 0.0f);
  float4 v = float4(x, 1.0f, -2.0f, 0.5f);
  float4 e = fast::exp(v) - precise::exp(v);
  o[24] = e.x + e.y + e.z + e.w;
  float4 nv = normalize(v);
  o[25] = length(nv);
  half h = half(x);
  o[26] = float(exp(h));
  o[27] = float(h * 2.5h + 1.0h);
  int i = int(x * 4.0f);
  o[28] = float(abs(i) + min(i, 3) + max(i, -3));
  o[29] = float(clamp(i, -2, 2));
  o[30] = dot(v.xy, v.zw);
  o[31] = float(int(x * 8.0f) % 5);
}

// simdgroup_barrier orders threadgroup memory within a SIMD-group.
kernel void simd_barrier_exchange(device float* out [[buffer(0)]],
                                  threadgroup float* shared [[threadgroup(0)]],
                                  uint tid [[thread_index_in_threadgroup]],
                                  uint lane [[thread_index_in_simdgroup]]) {
  shared[tid] = float(tid);
  simdgroup_barrier(mem_flags::mem_threadgroup);
  out[tid] = shared[tid - lane + (lane + 1) % 32];
}

// ---------------------------------------------------------------------------
// Atomics across threadgroups.
kernel void atomic_count(device atomic_uint* counter [[buffer(0)]],
                         device atomic_int* maxid [[buffer(1)]],
                         device atomic_float* fsum [[buffer(2)]],
                         device atomic_uint* tidsum [[buffer(3)]],
                         uint gid [[thread_position_in_grid]],
                         uint tid [[thread_index_in_threadgroup]]) {
  atomic_fetch_add_explicit(counter, 1u, memory_order_relaxed);
  atomic_fetch_max_explicit(maxid, int(gid), memory_order_relaxed);
  atomic_fetch_add_explicit(fsum, 0.5f, memory_order_relaxed);
  atomic_fetch_add_explicit(tidsum, tid, memory_order_relaxed);
}

// A spin lock built on compare-exchange guarding a non-atomic counter.
kernel void atomic_cas_lock(device atomic_uint* lock [[buffer(0)]],
                            device uint* value [[buffer(1)]],
                            uint tid [[thread_index_in_threadgroup]]) {
  if (tid != 0) return;
  uint expected = 0;
  while (!atomic_compare_exchange_weak_explicit(lock, &expected, 1u, memory_order_relaxed, memory_order_relaxed)) {
    expected = 0;
  }
  uint v = *value;
  *value = v + 1;
  if (atomic_load_explicit(lock, memory_order_relaxed) != 1u) *value = 1000000u;
  atomic_store_explicit(lock, 2u, memory_order_relaxed);
  atomic_exchange_explicit(lock, 0u, memory_order_relaxed);
}

// ---------------------------------------------------------------------------
// simdgroup_matrix: C (16x16) = A (16x16) * B (16x16) by one SIMD-group,
// four 8x8 output tiles, two k steps each; BT is B stored transposed.
kernel void matmul_simdgroup(device const float* A [[buffer(0)]],
                             device const float* B [[buffer(1)]],
                             device const float* BT [[buffer(2)]],
                             device float* C [[buffer(3)]],
                             device float* CT [[buffer(4)]]) {
  for (uint ti = 0; ti < 2; ti++) {
    for (uint tj = 0; tj < 2; tj++) {
      simdgroup_float8x8 acc = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
      simdgroup_float8x8 acc2 = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
      for (uint kk = 0; kk < 2; kk++) {
        simdgroup_float8x8 a, b, bt;
        simdgroup_load(a, A, 16, ulong2(kk * 8, ti * 8));
        simdgroup_load(b, B, 16, ulong2(tj * 8, kk * 8));
        simdgroup_load(bt, BT, 16, ulong2(tj * 8, kk * 8), true);
        simdgroup_multiply_accumulate(acc, a, b, acc);
        simdgroup_multiply_accumulate(acc2, a, bt, acc2);
      }
      simdgroup_store(acc, C, 16, ulong2(tj * 8, ti * 8));
      simdgroup_store(acc2, CT, 16, ulong2(tj * 8, ti * 8));
    }
  }
}

// half inputs, float accumulation.
kernel void matmul_half(device const half* A [[buffer(0)]],
                        device const half* B [[buffer(1)]],
                        device float* C [[buffer(2)]]) {
  simdgroup_half8x8 a, b;
  simdgroup_float8x8 c;
  simdgroup_load(a, A);
  simdgroup_load(b, B);
  simdgroup_multiply(c, a, b);
  simdgroup_store(c, C);
}

// simdgroup_load with a lane-dependent origin.
kernel void bug_matrix_args(device const float* A [[buffer(0)]],
                            device float* C [[buffer(1)]],
                            uint lane [[thread_index_in_simdgroup]]) {
  simdgroup_float8x8 a;
  simdgroup_load(a, A, 8, ulong2(0, lane % 2));
  simdgroup_store(a, C, 8);
}

// ---------------------------------------------------------------------------
// Every position attribute, 25 uints per thread at its linear grid index.
kernel void positions(device uint* out [[buffer(0)]],
                      uint3 tpig [[thread_position_in_grid]],
                      uint3 tgpig [[threadgroup_position_in_grid]],
                      uint3 tpitg [[thread_position_in_threadgroup]],
                      uint3 tptg [[threads_per_threadgroup]],
                      uint3 tgpg [[threadgroups_per_grid]],
                      uint3 tpg [[threads_per_grid]],
                      uint tiitg [[thread_index_in_threadgroup]],
                      ushort sgitg [[simdgroup_index_in_threadgroup]],
                      ushort tiisg [[thread_index_in_simdgroup]],
                      uint sgptg [[simdgroups_per_threadgroup]],
                      uint3 dtptg [[dispatch_threads_per_threadgroup]]) {
  uint linear = (tpig.z * tpg.y + tpig.y) * tpg.x + tpig.x;
  device uint* o = out + linear * 25;
  uint3 v[7] = {tpig, tgpig, tpitg, tptg, tgpg, tpg, dtptg};
  for (int i = 0; i < 6; i++) {
    o[i * 3 + 0] = v[i].x;
    o[i * 3 + 1] = v[i].y;
    o[i * 3 + 2] = v[i].z;
  }
  o[18] = tiitg;
  o[19] = sgitg;
  o[20] = tiisg;
  o[21] = sgptg;
  o[22] = v[6].x;
  o[23] = v[6].y;
  o[24] = v[6].z;
}

// Records the order in which threads first run.
kernel void run_order(device atomic_uint* next [[buffer(0)]],
                      device uint* order [[buffer(1)]],
                      uint tid [[thread_index_in_threadgroup]]) {
  order[atomic_fetch_add_explicit(next, 1u, memory_order_relaxed)] = tid;
}

// ---------------------------------------------------------------------------
// Faults.
kernel void bug_out_of_bounds(device float* out [[buffer(0)]],
                              uint gid [[thread_position_in_grid]]) {
  out[gid + 64] = 1.0f;
}

int deep(int n, device int* sink) {
  volatile int frame[256];
  frame[n % 256] = n;
  if (n == 0) return frame[0];
  int r = deep(n - 1, sink) + frame[n % 256];
  sink[0] = r;
  return r;
}

kernel void bug_stack_overflow(device int* sink [[buffer(0)]]) {
  sink[0] = deep(1 << 20, sink);
}

kernel void bug_divide_by_zero(device int* out [[buffer(0)]],
                               constant int& d [[buffer(1)]]) {
  out[0] = 7 / d;
}

[[max_total_threads_per_threadgroup(64)]]
kernel void small_kernel(device float* out [[buffer(0)]],
                         uint gid [[thread_position_in_grid]]) {
  out[gid] = 1.0f;
}

// Never finishes while out[0] is 0.
kernel void bug_endless_loop(device volatile float* out [[buffer(0)]]) {
  while (out[0] != 12345.0f) {
  }
}

// Does nothing: measures dispatch overhead.
kernel void empty(device float* out [[buffer(0)]]) {}

// Many barriers: measures fiber switching.
kernel void barriers(device float* out [[buffer(0)]],
                     threadgroup float* shared [[threadgroup(0)]],
                     uint tid [[thread_index_in_threadgroup]],
                     uint ntg [[threads_per_threadgroup]]) {
  float acc = 0.0f;
  for (int i = 0; i < 100; i++) {
    shared[tid] = float(i);
    threadgroup_barrier(mem_flags::mem_threadgroup);
    acc += shared[(tid + 1) % ntg];
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  out[tid] = acc;
}
