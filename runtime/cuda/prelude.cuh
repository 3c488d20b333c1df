// Minerva's Metal-compatibility header for CUDA (runtime/cuda).
//
// kernels.metal is compiled by NVRTC after runtime/cuda.Translate rewrote
// its tokens: the address spaces device, thread and threadgroup are
// dropped (CUDA's generic pointers reach all of them), constant becomes
// const (a __device__ const variable at file scope), attributes go, each
// kernel becomes a __device__ function called by a generated __global__
// entry, and every name of Metal's library is qualified with metal::, so
// that it means the definition below and never one of CUDA's own
// overloads (the token `device` is never defined as a macro: CUDA's
// __device__ expands to an attribute spelled device).
//
// Execution model: a threadgroup is a CUDA block, a SIMD-group a warp of
// 32 lanes, threadgroup memory the block's dynamic shared memory.

typedef unsigned int uint;
typedef unsigned short ushort;
typedef unsigned char uchar;
typedef unsigned long ulong;

#define METAL_FUNC __device__ inline
#define __METAL__ 1
#define __METAL_VERSION__ 310
#ifndef INFINITY
#define INFINITY (__int_as_float(0x7f800000))
#endif
#ifndef NAN
#define NAN (__int_as_float(0x7fc00000))
#endif
#ifndef MAXFLOAT
#define MAXFLOAT (3.402823466e+38f)
#endif
#ifndef HALF_MAX
#define HALF_MAX (65504.0f)
#endif
#ifndef FLT_MAX
#define FLT_MAX (3.402823466e+38f)
#endif
#ifndef M_PI_F
#define M_PI_F (3.14159265358979323846f)
#endif
#ifndef M_PI_2_F
#define M_PI_2_F (1.57079632679489661923f)
#endif
#ifndef M_E_F
#define M_E_F (2.71828182845904523536f)
#endif
#ifndef M_LN2_F
#define M_LN2_F (0.693147180559945309417f)
#endif
#ifndef M_SQRT2_F
#define M_SQRT2_F (1.41421356237309504880f)
#endif

namespace metal {

// ---- scalars: half and bfloat -------------------------------------------

__device__ __forceinline__ ushort f32_to_f16_bits(float f) {
  ushort h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
__device__ __forceinline__ float f16_bits_to_f32(ushort h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
__device__ __forceinline__ ushort f32_to_bf16_bits(float f) {
  ushort h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}
__device__ __forceinline__ float bf16_bits_to_f32(ushort h) { return __uint_as_float(uint(h) << 16); }

// half and bfloat compute in float and round once, as mslemu does: half op
// half is half, half op float is float, half op int is half.
#define MINERVA_SMALL_FLOAT(T, TO, FROM)                                                  \
  struct T {                                                                              \
    ushort bits;                                                                          \
    T() = default;                                                                        \
    __device__ __forceinline__ T(float f) : bits(TO(f)) {}                                \
    __device__ __forceinline__ T(double f) : bits(TO(float(f))) {}                        \
    __device__ __forceinline__ T(int i) : bits(TO(float(i))) {}                           \
    __device__ __forceinline__ T(uint i) : bits(TO(float(i))) {}                          \
    __device__ __forceinline__ operator float() const { return FROM(bits); }              \
    __device__ __forceinline__ T& operator+=(T o) { return *this = T(float(*this) + float(o)); } \
    __device__ __forceinline__ T& operator-=(T o) { return *this = T(float(*this) - float(o)); } \
    __device__ __forceinline__ T& operator*=(T o) { return *this = T(float(*this) * float(o)); } \
    __device__ __forceinline__ T& operator/=(T o) { return *this = T(float(*this) / float(o)); } \
    __device__ __forceinline__ T operator-() const { T r; r.bits = ushort(bits ^ 0x8000u); return r; } \
  };                                                                                      \
  MINERVA_SMALL_OPS(T, +) MINERVA_SMALL_OPS(T, -) MINERVA_SMALL_OPS(T, *) MINERVA_SMALL_OPS(T, /) \
  MINERVA_SMALL_CMP(T, <) MINERVA_SMALL_CMP(T, >) MINERVA_SMALL_CMP(T, <=) MINERVA_SMALL_CMP(T, >=) \
  MINERVA_SMALL_CMP(T, ==) MINERVA_SMALL_CMP(T, !=)
#define MINERVA_SMALL_OPS(T, OP)                                                          \
  __device__ __forceinline__ T operator OP(T a, T b) { return T(float(a) OP float(b)); }   \
  __device__ __forceinline__ float operator OP(T a, float b) { return float(a) OP b; }     \
  __device__ __forceinline__ float operator OP(float a, T b) { return a OP float(b); }     \
  __device__ __forceinline__ T operator OP(T a, int b) { return T(float(a) OP float(b)); } \
  __device__ __forceinline__ T operator OP(int a, T b) { return T(float(a) OP float(b)); }
#define MINERVA_SMALL_CMP(T, OP)                                                          \
  __device__ __forceinline__ bool operator OP(T a, T b) { return float(a) OP float(b); }   \
  __device__ __forceinline__ bool operator OP(T a, float b) { return float(a) OP b; }      \
  __device__ __forceinline__ bool operator OP(float a, T b) { return a OP float(b); }      \
  __device__ __forceinline__ bool operator OP(T a, int b) { return float(a) OP float(b); } \
  __device__ __forceinline__ bool operator OP(int a, T b) { return float(a) OP float(b); }
MINERVA_SMALL_FLOAT(half, f32_to_f16_bits, f16_bits_to_f32)
MINERVA_SMALL_FLOAT(bfloat, f32_to_bf16_bits, bf16_bits_to_f32)

// ---- as_type: a bit copy between types of one size -----------------------

template <class To, class From>
__device__ __forceinline__ To as_type(const From& f) {
  static_assert(sizeof(To) == sizeof(From), "as_type needs types of the same size");
  if constexpr (sizeof(To) == 4 && alignof(To) == 4 && alignof(From) == 4) {
    // One 32-bit move: float, int, uint, half2, ushort2, ...
    const unsigned int* s = reinterpret_cast<const unsigned int*>(&f);
    To t;
    *reinterpret_cast<unsigned int*>(&t) = *s;
    return t;
  } else {
    To t;
    const unsigned char* s = reinterpret_cast<const unsigned char*>(&f);
    unsigned char* d = reinterpret_cast<unsigned char*>(&t);
#pragma unroll
    for (unsigned i = 0; i < sizeof(To); i++) d[i] = s[i];
    return t;
  }
}

// ---- vectors --------------------------------------------------------------

template <class T, int N> struct vec;
// An aligned word of B bytes: copying one is one load or store.
template <int B> struct __align__(B) packed_word { unsigned int w[B / 4]; };

// A swizzle of K components (indices I0..I3) of an N-vector, a member of
// the vector's union: it reads as vec<T, K> and, when its components are
// distinct, can be assigned.
template <class V, class T, int N, int K, int I0, int I1, int I2, int I3>
struct swz {
  T e[N == 3 ? 4 : N];
  __device__ __forceinline__ operator V() const {
    V r;
    const int idx[4] = {I0, I1, I2, I3};
#pragma unroll
    for (int i = 0; i < K; i++) r.e[i] = e[idx[i]];
    return r;
  }
  __device__ __forceinline__ swz& operator=(const V& v) {
    const int idx[4] = {I0, I1, I2, I3};
#pragma unroll
    for (int i = 0; i < K; i++) e[idx[i]] = v.e[i];
    return *this;
  }
  __device__ __forceinline__ swz& operator=(const swz& s) { return *this = V(s); }
  __device__ __forceinline__ swz& operator+=(const V& v) { return *this = V(*this) + v; }
  __device__ __forceinline__ swz& operator-=(const V& v) { return *this = V(*this) - v; }
  __device__ __forceinline__ swz& operator*=(const V& v) { return *this = V(*this) * v; }
  __device__ __forceinline__ swz& operator/=(const V& v) { return *this = V(*this) / v; }
  __device__ __forceinline__ T operator[](int i) const { return V(*this).e[i]; }
};

#define MINERVA_SWZ(K, I0, I1, I2, I3) swz<vec<T, K>, T, MINERVA_N, K, I0, I1, I2, I3>

template <class T, int N> struct vec_storage;
template <class T> struct vec_storage<T, 2> {
  union {
    T e[2];
    struct { T x, y; };
    struct { T r, g; };
#define MINERVA_N 2
    MINERVA_SWIZZLES_2
#undef MINERVA_N
  };
};
template <class T> struct vec_storage<T, 3> {
  union {
    T e[4];
    struct { T x, y, z; };
    struct { T r, g, b; };
#define MINERVA_N 3
    MINERVA_SWIZZLES_3
#undef MINERVA_N
  };
};
template <class T> struct vec_storage<T, 4> {
  union {
    T e[4];
    struct { T x, y, z, w; };
    struct { T r, g, b, a; };
#define MINERVA_N 4
    MINERVA_SWIZZLES_4
#undef MINERVA_N
  };
};

template <class T, int N>
struct __align__(sizeof(T) * (N == 3 ? 4 : N)) vec : vec_storage<T, N> {
  typedef T value_type;
  static constexpr int size = N;
  vec() = default;
  // A vector of 4, 8 or 16 bytes is copied as one word, as Metal loads
  // it: element by element, a float4 read from device memory became four
  // 4-byte loads, and the expert kernels' activation loads touched four
  // times the sectors they needed (Nsight Compute on the H100,
  // docs/gpu.md). vec is aligned to its size, so the word is too.
  __device__ __forceinline__ vec(const vec& o) { copy(o); }
  __device__ __forceinline__ vec& operator=(const vec& o) {
    copy(o);
    return *this;
  }
  // Broadcast a scalar.
  __device__ __forceinline__ vec(T s) {
#pragma unroll
    for (int i = 0; i < N; i++) this->e[i] = s;
  }
  template <class S, class = decltype(T(S()))>
  __device__ __forceinline__ explicit vec(S s) {
#pragma unroll
    for (int i = 0; i < N; i++) this->e[i] = T(s);
  }
  // Conversion from another element type, explicit as in Metal.
  template <class U>
  __device__ __forceinline__ explicit vec(const vec<U, N>& o) {
    const vec<U, N> w(o);  // one load when o is in memory
#pragma unroll
    for (int i = 0; i < N; i++) this->e[i] = T(w.e[i]);
  }
  // Any mix of scalars and vectors whose components add up to N.
  template <class A, class B, class... R>
  __device__ __forceinline__ vec(const A& a, const B& b, const R&... r) {
    int k = 0;
    put(k, a);
    put(k, b);
    (put(k, r), ...);
  }
  __device__ __forceinline__ T& operator[](int i) { return this->e[i]; }
  __device__ __forceinline__ const T& operator[](int i) const { return this->e[i]; }

 private:
  __device__ __forceinline__ void copy(const vec& o) {
    constexpr int B = int(sizeof(vec));
    if constexpr (B == 4 || B == 8 || B == 16) {
      *reinterpret_cast<packed_word<B>*>(this->e) = *reinterpret_cast<const packed_word<B>*>(o.e);
    } else {
#pragma unroll
      for (int i = 0; i < N; i++) this->e[i] = o.e[i];
    }
  }
  template <class U, int M>
  __device__ __forceinline__ void put(int& k, const vec<U, M>& v) {
    for (int i = 0; i < M; i++) this->e[k++] = T(v.e[i]);
  }
  template <class V2, class U, int M, int K, int J0, int J1, int J2, int J3>
  __device__ __forceinline__ void put(int& k, const swz<V2, U, M, K, J0, J1, J2, J3>& s) { put(k, V2(s)); }
  template <class S>
  __device__ __forceinline__ void put(int& k, const S& s) { this->e[k++] = T(s); }

 public:
#define MINERVA_VEC_OP(OP)                                                                           \
  friend __device__ __forceinline__ vec operator OP(vec a, vec b) {                                   \
    vec r;                                                                                            \
    for (int i = 0; i < N; i++) r.e[i] = T(a.e[i] OP b.e[i]);                                         \
    return r;                                                                                         \
  }                                                                                                   \
  friend __device__ __forceinline__ vec operator OP(vec a, T b) { return a OP vec(b); }               \
  friend __device__ __forceinline__ vec operator OP(T a, vec b) { return vec(a) OP b; }               \
  __device__ __forceinline__ vec& operator OP##=(vec b) { return *this = *this OP b; }
  MINERVA_VEC_OP(+)
  MINERVA_VEC_OP(-)
  MINERVA_VEC_OP(*)
  MINERVA_VEC_OP(/)
  MINERVA_VEC_OP(%)
  MINERVA_VEC_OP(&)
  MINERVA_VEC_OP(|)
  MINERVA_VEC_OP(^)
  MINERVA_VEC_OP(<<)
  MINERVA_VEC_OP(>>)
#undef MINERVA_VEC_OP
  friend __device__ __forceinline__ vec operator-(vec a) {
    for (int i = 0; i < N; i++) a.e[i] = T(-a.e[i]);
    return a;
  }
  friend __device__ __forceinline__ vec operator~(vec a) {
    for (int i = 0; i < N; i++) a.e[i] = T(~a.e[i]);
    return a;
  }
#define MINERVA_VEC_CMP(OP)                                                                          \
  friend __device__ __forceinline__ vec<bool, N> operator OP(vec a, vec b) {                          \
    vec<bool, N> r;                                                                                   \
    for (int i = 0; i < N; i++) r.e[i] = a.e[i] OP b.e[i];                                            \
    return r;                                                                                         \
  }                                                                                                   \
  friend __device__ __forceinline__ vec<bool, N> operator OP(vec a, T b) { return a OP vec(b); }      \
  friend __device__ __forceinline__ vec<bool, N> operator OP(T a, vec b) { return vec(a) OP b; }
  MINERVA_VEC_CMP(<)
  MINERVA_VEC_CMP(>)
  MINERVA_VEC_CMP(<=)
  MINERVA_VEC_CMP(>=)
  MINERVA_VEC_CMP(==)
  MINERVA_VEC_CMP(!=)
#undef MINERVA_VEC_CMP
};

// Packed vectors: the element's alignment, no padding. A packed vector
// of 4, 8 or 16 bytes is read with one load, as Metal reads it. NVRTC
// would otherwise have to assume the element's alignment and issue a load
// per element: the bf16 matrix-vector kernels then read 2 bytes a lane a
// load. The kernels read packed vectors only from weight rows whose byte
// length is a multiple of the vector's, and the CUDA backend gives every
// weight tensor an allocation of its own (runtime/gpu TensorBuffer), so
// these loads are aligned. (A check per load instead kept the compiler
// from putting a row's loads in flight together, which made o_proj 35%
// slower on an H100.) A misaligned one would be reported by the driver
// as a misaligned address, never read wrongly.
template <class T, int N>
struct packed_vec {
  T e[N];
  __device__ __forceinline__ operator vec<T, N>() const {
    vec<T, N> r;
    constexpr int B = int(sizeof(T)) * N;
    if constexpr (B == 4 || B == 8 || B == 16) {
      *reinterpret_cast<packed_word<B>*>(r.e) = *reinterpret_cast<const packed_word<B>*>(e);  // vec<T, N> is aligned to its size
    } else {
      for (int i = 0; i < N; i++) r.e[i] = e[i];
    }
    return r;
  }
  __device__ __forceinline__ T& operator[](int i) { return e[i]; }
  __device__ __forceinline__ const T& operator[](int i) const { return e[i]; }
};

#define MINERVA_VEC_TYPES(T)                                                                \
  typedef vec<T, 2> T##2;                                                                   \
  typedef vec<T, 3> T##3;                                                                   \
  typedef vec<T, 4> T##4;                                                                   \
  typedef packed_vec<T, 2> packed_##T##2;                                                   \
  typedef packed_vec<T, 3> packed_##T##3;                                                   \
  typedef packed_vec<T, 4> packed_##T##4;
MINERVA_VEC_TYPES(float)
MINERVA_VEC_TYPES(half)
MINERVA_VEC_TYPES(bfloat)
MINERVA_VEC_TYPES(int)
MINERVA_VEC_TYPES(uint)
MINERVA_VEC_TYPES(short)
MINERVA_VEC_TYPES(ushort)
MINERVA_VEC_TYPES(char)
MINERVA_VEC_TYPES(uchar)
MINERVA_VEC_TYPES(bool)
MINERVA_VEC_TYPES(long)
MINERVA_VEC_TYPES(ulong)

// The value of a scalar, vector or swizzle: swizzles become vectors.
template <class X> struct value_of { typedef X type; };
template <class V, class T, int N, int K, int I0, int I1, int I2, int I3>
struct value_of<swz<V, T, N, K, I0, I1, I2, I3>> { typedef V type; };

// ---- the maths library ------------------------------------------------------

// A unary function on float (FE is its expression in x), on half and
// bfloat (computed in float), and element by element on vectors and
// swizzles.
#define MINERVA_UNARY(NAME, FE)                                                          \
  __device__ __forceinline__ float NAME(float x) { return FE; }                          \
  __device__ __forceinline__ half NAME(half h) { return half(NAME(float(h))); }          \
  __device__ __forceinline__ bfloat NAME(bfloat h) { return bfloat(NAME(float(h))); }    \
  template <class T, int N>                                                              \
  __device__ __forceinline__ vec<T, N> NAME(vec<T, N> v) {                               \
    for (int i = 0; i < N; i++) v.e[i] = NAME(v.e[i]);                                   \
    return v;                                                                            \
  }                                                                                      \
  template <class V, class T, int N, int K, int I0, int I1, int I2, int I3>              \
  __device__ __forceinline__ V NAME(const swz<V, T, N, K, I0, I1, I2, I3>& s) { return NAME(V(s)); }
MINERVA_UNARY(exp, ::expf(x))
MINERVA_UNARY(exp2, ::exp2f(x))
MINERVA_UNARY(exp10, ::exp10f(x))
MINERVA_UNARY(log, ::logf(x))
MINERVA_UNARY(log2, ::log2f(x))
MINERVA_UNARY(log10, ::log10f(x))
MINERVA_UNARY(sqrt, ::sqrtf(x))
MINERVA_UNARY(rsqrt, ::rsqrtf(x))
MINERVA_UNARY(sin, ::sinf(x))
MINERVA_UNARY(cos, ::cosf(x))
MINERVA_UNARY(tan, ::tanf(x))
MINERVA_UNARY(asin, ::asinf(x))
MINERVA_UNARY(acos, ::acosf(x))
MINERVA_UNARY(atan, ::atanf(x))
MINERVA_UNARY(sinh, ::sinhf(x))
MINERVA_UNARY(cosh, ::coshf(x))
MINERVA_UNARY(tanh, ::tanhf(x))
MINERVA_UNARY(sinpi, ::sinpif(x))
MINERVA_UNARY(cospi, ::cospif(x))
MINERVA_UNARY(floor, ::floorf(x))
MINERVA_UNARY(ceil, ::ceilf(x))
MINERVA_UNARY(round, ::roundf(x))
MINERVA_UNARY(rint, ::rintf(x))
MINERVA_UNARY(trunc, ::truncf(x))
MINERVA_UNARY(fract, ::fminf(x - ::floorf(x), 0x1.fffffep-1f))
MINERVA_UNARY(fabs, ::fabsf(x))
MINERVA_UNARY(saturate, ::fminf(::fmaxf(x, 0.0f), 1.0f))
MINERVA_UNARY(sign, (x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f)))

__device__ __forceinline__ float abs(float x) { return ::fabsf(x); }
__device__ __forceinline__ half abs(half x) { half r; r.bits = ushort(x.bits & 0x7fffu); return r; }
__device__ __forceinline__ int abs(int x) { return x < 0 ? -x : x; }
template <class T, int N>
__device__ __forceinline__ vec<T, N> abs(vec<T, N> v) {
  for (int i = 0; i < N; i++) v.e[i] = abs(v.e[i]);
  return v;
}

// Binary functions: float, half (in float), int and uint where Metal has
// them, and vectors.
#define MINERVA_BINARY(NAME, FE)                                                            \
  __device__ __forceinline__ float NAME(float x, float y) { return FE; }                    \
  __device__ __forceinline__ half NAME(half x, half y) { return half(NAME(float(x), float(y))); } \
  template <class T, int N>                                                                 \
  __device__ __forceinline__ vec<T, N> NAME(vec<T, N> a, vec<T, N> b) {                     \
    for (int i = 0; i < N; i++) a.e[i] = NAME(a.e[i], b.e[i]);                              \
    return a;                                                                               \
  }                                                                                         \
  template <class T, int N>                                                                 \
  __device__ __forceinline__ vec<T, N> NAME(vec<T, N> a, T b) { return NAME(a, vec<T, N>(b)); }
MINERVA_BINARY(pow, ::powf(x, y))
MINERVA_BINARY(powr, ::powf(x, y))
MINERVA_BINARY(fmin, ::fminf(x, y))
MINERVA_BINARY(fmax, ::fmaxf(x, y))
MINERVA_BINARY(fmod, ::fmodf(x, y))
MINERVA_BINARY(atan2, ::atan2f(x, y))
MINERVA_BINARY(copysign, ::copysignf(x, y))
MINERVA_BINARY(fdim, ::fdimf(x, y))
MINERVA_BINARY(step, (y < x ? 0.0f : 1.0f))
MINERVA_BINARY(min, ::fminf(x, y))
MINERVA_BINARY(max, ::fmaxf(x, y))
__device__ __forceinline__ int min(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int max(int a, int b) { return a > b ? a : b; }
__device__ __forceinline__ uint min(uint a, uint b) { return a < b ? a : b; }
__device__ __forceinline__ uint max(uint a, uint b) { return a > b ? a : b; }
__device__ __forceinline__ float clamp(float x, float lo, float hi) { return ::fminf(::fmaxf(x, lo), hi); }
__device__ __forceinline__ half clamp(half x, half lo, half hi) { return half(clamp(float(x), float(lo), float(hi))); }
__device__ __forceinline__ int clamp(int x, int lo, int hi) { return min(max(x, lo), hi); }
__device__ __forceinline__ uint clamp(uint x, uint lo, uint hi) { return min(max(x, lo), hi); }
template <class T, int N>
__device__ __forceinline__ vec<T, N> clamp(vec<T, N> x, vec<T, N> lo, vec<T, N> hi) {
  for (int i = 0; i < N; i++) x.e[i] = clamp(x.e[i], lo.e[i], hi.e[i]);
  return x;
}
template <class T, int N>
__device__ __forceinline__ vec<T, N> clamp(vec<T, N> x, T lo, T hi) { return clamp(x, vec<T, N>(lo), vec<T, N>(hi)); }
__device__ __forceinline__ float fma(float a, float b, float c) { return ::fmaf(a, b, c); }
__device__ __forceinline__ float mix(float x, float y, float a) { return x + (y - x) * a; }
template <class T, int N>
__device__ __forceinline__ vec<T, N> mix(vec<T, N> x, vec<T, N> y, vec<T, N> a) { return x + (y - x) * a; }
__device__ __forceinline__ float smoothstep(float e0, float e1, float x) {
  float t = clamp((x - e0) / (e1 - e0), 0.0f, 1.0f);
  return t * t * (3.0f - 2.0f * t);
}
__device__ __forceinline__ float divide(float a, float b) { return a / b; }
template <class T>
__device__ __forceinline__ T select(T a, T b, bool c) { return c ? b : a; }
__device__ __forceinline__ bool isnan(float x) { return x != x; }
__device__ __forceinline__ bool isinf(float x) { return ::fabsf(x) == INFINITY; }
__device__ __forceinline__ bool isfinite(float x) { return ::fabsf(x) < INFINITY; }
__device__ __forceinline__ bool signbit(float x) { return (__float_as_uint(x) >> 31) != 0; }
__device__ __forceinline__ float sincos(float x, float& c) {
  c = ::cosf(x);
  return ::sinf(x);
}
template <int N>
__device__ __forceinline__ bool all(vec<bool, N> v) {
  bool r = true;
  for (int i = 0; i < N; i++) r = r && v.e[i];
  return r;
}
template <int N>
__device__ __forceinline__ bool any(vec<bool, N> v) {
  bool r = false;
  for (int i = 0; i < N; i++) r = r || v.e[i];
  return r;
}
template <class T, int N>
__device__ __forceinline__ T dot(vec<T, N> a, vec<T, N> b) {
  T s = a.e[0] * b.e[0];
  for (int i = 1; i < N; i++) s += a.e[i] * b.e[i];
  return s;
}
template <class T, int N>
__device__ __forceinline__ T length(vec<T, N> a) { return sqrt(dot(a, a)); }
template <class T, int N>
__device__ __forceinline__ T distance(vec<T, N> a, vec<T, N> b) { return length(a - b); }
template <class T, int N>
__device__ __forceinline__ vec<T, N> normalize(vec<T, N> a) { return a * rsqrt(dot(a, a)); }
__device__ __forceinline__ float3 cross(float3 a, float3 b) {
  return float3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
__device__ __forceinline__ uint popcount(uint x) { return uint(__popc(x)); }
__device__ __forceinline__ uint clz(uint x) { return uint(__clz(x)); }
__device__ __forceinline__ uint ctz(uint x) { return x == 0 ? 32u : uint(__ffs(int(x)) - 1); }
__device__ __forceinline__ uint reverse_bits(uint x) { return __brev(x); }
__device__ __forceinline__ uint extract_bits(uint x, uint off, uint bits) { return bits == 32 ? x : (x >> off) & ((1u << bits) - 1u); }
__device__ __forceinline__ uint mulhi(uint a, uint b) { return __umulhi(a, b); }
__device__ __forceinline__ int mulhi(int a, int b) { return __mulhi(a, b); }
__device__ __forceinline__ uint absdiff(uint a, uint b) { return a > b ? a - b : b - a; }

// metal::precise:: and metal::fast:: name the same functions: Minerva's
// kernels call precise maths where it matters and NVRTC is not asked for
// fast maths.
namespace precise { using namespace ::metal; }
namespace fast { using namespace ::metal; }

template <class T> struct numeric_limits;
template <> struct numeric_limits<float> {
  __device__ static float max() { return FLT_MAX; }
  __device__ static float min() { return 1.17549435e-38f; }
  __device__ static float lowest() { return -FLT_MAX; }
  __device__ static float infinity() { return INFINITY; }
  __device__ static float epsilon() { return 1.1920929e-7f; }
  __device__ static float quiet_NaN() { return NAN; }
};
template <> struct numeric_limits<int> {
  __device__ static int max() { return 0x7fffffff; }
  __device__ static int min() { return -0x7fffffff - 1; }
  __device__ static int lowest() { return -0x7fffffff - 1; }
};
template <> struct numeric_limits<uint> {
  __device__ static uint max() { return 0xffffffffu; }
  __device__ static uint min() { return 0u; }
  __device__ static uint lowest() { return 0u; }
};

// ---- barriers ---------------------------------------------------------------

enum class mem_flags : uint { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };
__device__ __forceinline__ mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(uint(a) | uint(b)); }
// __syncthreads orders shared and global memory among the block's threads,
// which is what threadgroup_barrier promises for either flag.
__device__ __forceinline__ void threadgroup_barrier(mem_flags) { __syncthreads(); }
__device__ __forceinline__ void simdgroup_barrier(mem_flags) { __syncwarp(); }
enum memory_order { memory_order_relaxed = 0 };
enum thread_scope { thread_scope_thread, thread_scope_simdgroup, thread_scope_threadgroup, thread_scope_device };
__device__ __forceinline__ void atomic_thread_fence(mem_flags, memory_order, thread_scope = thread_scope_device) { __threadfence(); }

// ---- SIMD-group functions ---------------------------------------------------
//
// Every lane of the warp takes part (mask 0xffffffff): the kernels call
// SIMD-group functions from uniform control flow, as mslemu checks.

__device__ __forceinline__ uint lane_id() {
  uint l;
  asm volatile("mov.u32 %0, %%laneid;" : "=r"(l));
  return l;
}

// Shuffles of any 4- or 8-byte type, and of 2-byte types through a uint.
template <class T>
__device__ __forceinline__ T simd_shuffle(T v, ushort src) {
  if constexpr (sizeof(T) == 8) {
    unsigned long long b = as_type<unsigned long long>(v);
    return as_type<T>(__shfl_sync(0xffffffffu, b, int(src)));
  } else if constexpr (sizeof(T) == 4) {
    return as_type<T>(__shfl_sync(0xffffffffu, as_type<uint>(v), int(src)));
  } else {
    uint b = 0;
    const unsigned char* s = reinterpret_cast<const unsigned char*>(&v);
    for (unsigned i = 0; i < sizeof(T); i++) b |= uint(s[i]) << (8 * i);
    b = __shfl_sync(0xffffffffu, b, int(src));
    T r;
    unsigned char* d = reinterpret_cast<unsigned char*>(&r);
    for (unsigned i = 0; i < sizeof(T); i++) d[i] = (unsigned char)(b >> (8 * i));
    return r;
  }
}
template <class T>
__device__ __forceinline__ T simd_shuffle_xor(T v, ushort mask) {
  if constexpr (sizeof(T) == 4) {
    return as_type<T>(__shfl_xor_sync(0xffffffffu, as_type<uint>(v), int(mask)));
  } else {
    return simd_shuffle(v, ushort(lane_id() ^ mask));
  }
}
// Lanes whose source is past the last lane keep their own value, as
// __shfl_down_sync does.
template <class T>
__device__ __forceinline__ T simd_shuffle_down(T v, ushort delta) {
  if constexpr (sizeof(T) == 4) {
    return as_type<T>(__shfl_down_sync(0xffffffffu, as_type<uint>(v), uint(delta)));
  } else {
    uint l = lane_id();
    return simd_shuffle(v, ushort(l + delta < 32 ? l + delta : l));
  }
}
template <class T>
__device__ __forceinline__ T simd_shuffle_up(T v, ushort delta) {
  if constexpr (sizeof(T) == 4) {
    return as_type<T>(__shfl_up_sync(0xffffffffu, as_type<uint>(v), uint(delta)));
  } else {
    uint l = lane_id();
    return simd_shuffle(v, ushort(l >= delta ? l - delta : l));
  }
}
template <class T>
__device__ __forceinline__ T simd_shuffle_rotate_down(T v, ushort delta) { return simd_shuffle(v, ushort((lane_id() + delta) & 31u)); }
template <class T>
__device__ __forceinline__ T simd_shuffle_rotate_up(T v, ushort delta) { return simd_shuffle(v, ushort((lane_id() - delta) & 31u)); }
template <class T>
__device__ __forceinline__ T simd_broadcast(T v, ushort lane) { return simd_shuffle(v, lane); }
template <class T>
__device__ __forceinline__ T simd_broadcast_first(T v) { return simd_shuffle(v, ushort(__ffs(__activemask()) - 1)); }

// Reductions by butterfly: at each step lane i adds lane i^h's value, so
// every lane ends with the same bits (a + b == b + a).
#define MINERVA_SIMD_REDUCE(NAME, EXPR)                                              \
  template <class T>                                                                 \
  __device__ __forceinline__ T NAME(T v) {                                            \
    _Pragma("unroll") for (int h = 16; h >= 1; h >>= 1) {                            \
      T o = simd_shuffle_xor(v, ushort(h));                                          \
      v = EXPR;                                                                      \
    }                                                                                \
    return v;                                                                        \
  }
MINERVA_SIMD_REDUCE(simd_sum, v + o)
MINERVA_SIMD_REDUCE(simd_product, v * o)
MINERVA_SIMD_REDUCE(simd_max, max(v, o))
MINERVA_SIMD_REDUCE(simd_min, min(v, o))
MINERVA_SIMD_REDUCE(simd_and, v & o)
MINERVA_SIMD_REDUCE(simd_or, v | o)
MINERVA_SIMD_REDUCE(simd_xor, v ^ o)
template <class T>
__device__ __forceinline__ T simd_prefix_inclusive_sum(T v) {
  uint l = lane_id();
#pragma unroll
  for (int d = 1; d < 32; d <<= 1) {
    T o = simd_shuffle_up(v, ushort(d));
    if (l >= uint(d)) v = v + o;
  }
  return v;
}
template <class T>
__device__ __forceinline__ T simd_prefix_exclusive_sum(T v) {
  T inc = simd_prefix_inclusive_sum(v);
  T prev = simd_shuffle_up(inc, ushort(1));
  return lane_id() == 0 ? T(0) : prev;
}
__device__ __forceinline__ bool simd_all(bool b) { return __all_sync(0xffffffffu, b); }
__device__ __forceinline__ bool simd_any(bool b) { return __any_sync(0xffffffffu, b); }
struct simd_vote {
  unsigned long long bits;
  __device__ explicit operator unsigned long long() const { return bits; }
  __device__ bool all() const { return bits == 0xffffffffull; }
  __device__ bool any() const { return bits != 0; }
};
__device__ __forceinline__ simd_vote simd_ballot(bool b) { return simd_vote{__ballot_sync(0xffffffffu, b)}; }
__device__ __forceinline__ simd_vote simd_active_threads_mask() { return simd_vote{__activemask()}; }
__device__ __forceinline__ bool simd_is_first() { return lane_id() == uint(__ffs(__activemask()) - 1); }

// ---- SIMD-group matrices ----------------------------------------------------
//
// An 8x8 matrix is spread over the warp: lane l holds row l/4, columns
// 2(l%4) and 2(l%4)+1. multiply_accumulate fetches A's row and B's
// columns with shuffles and accumulates in float in k order, starting from
// C, as mslemu does. (No tensor cores: a correct first version.)

template <class T, int R, int C>
struct simdgroup_matrix {
  static_assert(R == 8 && C == 8, "only 8x8 SIMD-group matrices exist");
  T v[2];
  simdgroup_matrix() = default;
  // The diagonal constructor: d on the diagonal, zero elsewhere.
  __device__ __forceinline__ explicit simdgroup_matrix(T d) {
    uint l = lane_id(), r = l / 4, c = 2 * (l % 4);
    v[0] = r == c ? d : T(0.0f);
    v[1] = r == c + 1 ? d : T(0.0f);
  }
};
typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

template <class T, int R, int C>
__device__ __forceinline__ simdgroup_matrix<T, R, C> make_filled_simdgroup_matrix(T value) {
  simdgroup_matrix<T, R, C> m;
  m.v[0] = m.v[1] = value;
  return m;
}

// origin is (column, row) in the loaded orientation.
template <class T, class U>
__device__ __forceinline__ void simdgroup_load(simdgroup_matrix<T, 8, 8>& m, const U* src, ulong elements_per_row = 8,
                                               ulong2 origin = ulong2(0ul), bool transpose = false) {
  uint l = lane_id(), r = l / 4, c = 2 * (l % 4);
  for (int j = 0; j < 2; j++) {
    ulong row = origin.y + r, col = origin.x + c + j;
    m.v[j] = T(transpose ? src[col * elements_per_row + row] : src[row * elements_per_row + col]);
  }
}
template <class T, class U>
__device__ __forceinline__ void simdgroup_store(const simdgroup_matrix<T, 8, 8>& m, U* dst, ulong elements_per_row = 8,
                                                ulong2 origin = ulong2(0ul), bool transpose = false) {
  uint l = lane_id(), r = l / 4, c = 2 * (l % 4);
  for (int j = 0; j < 2; j++) {
    ulong row = origin.y + r, col = origin.x + c + j;
    if (transpose) dst[col * elements_per_row + row] = U(m.v[j]);
    else dst[row * elements_per_row + col] = U(m.v[j]);
  }
}
template <class TD, class TA, class TB, class TC>
__device__ __forceinline__ void simdgroup_multiply_accumulate(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                                              const simdgroup_matrix<TB, 8, 8>& b,
                                                              const simdgroup_matrix<TC, 8, 8>& c) {
  uint l = lane_id(), r = l / 4, q = l % 4;
  float s0 = float(c.v[0]), s1 = float(c.v[1]);
#pragma unroll
  for (int k = 0; k < 8; k++) {
    // A[r][k] is in lane 4r + k/2, slot k%2; B[k][2q], B[k][2q+1] in lane 4k + q.
    float ak = __shfl_sync(0xffffffffu, float(a.v[k & 1]), int(4 * r + k / 2));
    float b0 = __shfl_sync(0xffffffffu, float(b.v[0]), int(4 * k + q));
    float b1 = __shfl_sync(0xffffffffu, float(b.v[1]), int(4 * k + q));
    s0 = s0 + ak * b0;
    s1 = s1 + ak * b1;
  }
  d.v[0] = TD(s0);
  d.v[1] = TD(s1);
}
template <class TD, class TA, class TB>
__device__ __forceinline__ void simdgroup_multiply(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                                   const simdgroup_matrix<TB, 8, 8>& b) {
  simdgroup_multiply_accumulate(d, a, b, make_filled_simdgroup_matrix<TD, 8, 8>(TD(0.0f)));
}

// ---- atomics (device and threadgroup memory) --------------------------------

template <class T> struct atomic { T v; };
typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<float> atomic_float;
template <class T> __device__ __forceinline__ T atomic_load_explicit(const volatile atomic<T>* p, memory_order) { return p->v; }
template <class T> __device__ __forceinline__ void atomic_store_explicit(volatile atomic<T>* p, T v, memory_order) { p->v = v; }
template <class T> __device__ __forceinline__ T atomic_fetch_add_explicit(atomic<T>* p, T v, memory_order) { return atomicAdd(&p->v, v); }
template <class T> __device__ __forceinline__ T atomic_fetch_sub_explicit(atomic<T>* p, T v, memory_order) { return atomicSub(&p->v, v); }
template <class T> __device__ __forceinline__ T atomic_fetch_max_explicit(atomic<T>* p, T v, memory_order) { return atomicMax(&p->v, v); }
template <class T> __device__ __forceinline__ T atomic_fetch_min_explicit(atomic<T>* p, T v, memory_order) { return atomicMin(&p->v, v); }
template <class T> __device__ __forceinline__ T atomic_fetch_and_explicit(atomic<T>* p, T v, memory_order) { return atomicAnd(&p->v, v); }
template <class T> __device__ __forceinline__ T atomic_fetch_or_explicit(atomic<T>* p, T v, memory_order) { return atomicOr(&p->v, v); }
template <class T> __device__ __forceinline__ T atomic_fetch_xor_explicit(atomic<T>* p, T v, memory_order) { return atomicXor(&p->v, v); }
template <class T> __device__ __forceinline__ T atomic_exchange_explicit(atomic<T>* p, T v, memory_order) { return atomicExch(&p->v, v); }
template <class T>
__device__ __forceinline__ bool atomic_compare_exchange_weak_explicit(atomic<T>* p, T* expected, T desired, memory_order, memory_order) {
  T old = atomicCAS(&p->v, *expected, desired);
  bool ok = old == *expected;
  *expected = old;
  return ok;
}

}  // namespace metal

// wait_inputs (templates/common.metal.tmpl, where Metal's is empty): a
// kernel that calls it reads only weights before it, so Translate leaves
// the entry's wait out and the kernel waits here for the kernel before it
// to finish and its writes to be visible, then lets the next one start
// its blocks.
#define MINERVA_WAIT_INPUTS 1
__device__ __forceinline__ void wait_inputs() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}
