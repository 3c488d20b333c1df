// A Metal Shading Language compatibility layer for g++ (C++17), so that
// kernels.metal written for Apple GPUs compiles and runs on a CPU under the
// mslemu driver. See docs/mslemu.md for what it models and what it does not.
//
// Compile the kernel translation unit with
//   -std=c++17 -fsigned-char -fsingle-precision-constant -Wno-attributes
//   -Wno-literal-suffix
// -fsingle-precision-constant makes `0.1` a float, as in MSL (which has no
// double); -fsigned-char makes `char` signed, as in MSL.
//
// This header ends by defining the address-space macros (device, constant,
// threadgroup, thread, kernel), which break ordinary C++: include it only in
// the kernel translation unit, after every standard header.
#ifndef MSLEMU_METAL_COMPAT_HPP
#define MSLEMU_METAL_COMPAT_HPP

#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <limits.h>

#include <type_traits>

#include <mslemu/runtime.hpp>

// The call site of a barrier or SIMD-group function, captured with GCC's
// builtins as default arguments (they evaluate at the caller).
#define MSLEMU_SITE_PARAMS const char *mslemu_file = __builtin_FILE(), int mslemu_line = __builtin_LINE()
#define MSLEMU_SITE mslemu_file, mslemu_line

namespace metal {

namespace rt = ::mslemu::rt;

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;

namespace detail {
inline uint32_t f2u(float f) { uint32_t u; __builtin_memcpy(&u, &f, 4); return u; }
inline float u2f(uint32_t u) { float f; __builtin_memcpy(&f, &u, 4); return f; }

// IEEE 754 binary32 -> binary16, round to nearest, ties to even, with
// subnormals, infinities and NaN (quiet, payload's top bits kept).
inline uint16_t float_to_half_bits(float f) {
  uint32_t x = f2u(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) {
    if (ax == 0x7f800000u) return uint16_t(sign | 0x7c00u);
    return uint16_t(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
  }
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (ax < 0x38800000u) {                                   // below 2^-14: subnormal half
    if (ax <= 0x33000000u) return uint16_t(sign);           // <= 2^-25 rounds to 0
    uint32_t e = ax >> 23;
    uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e;  // value = mant * 2^(e-150) = m * 2^-24
    uint32_t m = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (m & 1))) m++;
    return uint16_t(sign | m);
  }
  uint32_t h = (ax >> 13) - (112u << 10);
  uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
  return uint16_t(sign | h);
}

inline float half_bits_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  if (e == 0) {
    // m * 2^-24, exact in binary32.
    float v = float(m) * u2f(0x33800000u);
    return u2f(f2u(v) | sign);
  }
  if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));
  return u2f(sign | ((e + 112) << 23) | (m << 13));
}

inline uint16_t float_to_bfloat_bits(float f) {
  uint32_t x = f2u(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}
inline float bfloat_bits_to_float(uint16_t b) { return u2f(uint32_t(b) << 16); }
}  // namespace detail

struct bfloat;

// half: IEEE binary16. Arithmetic on two halves is done in float and
// rounded once to half, which is correctly rounded for + - * / and sqrt
// (binary32 has more than 2*11+2 bits). half mixed with float gives float,
// half mixed with an integer gives half, as in MSL.
struct half {
  uint16_t bits;
  half() = default;
  half(float f) : bits(detail::float_to_half_bits(f)) {}
  template <class I, std::enable_if_t<std::is_arithmetic<I>::value && !std::is_same<I, float>::value, int> = 0>
  half(I v) : bits(detail::float_to_half_bits(float(v))) {}
  half(bfloat b);
  operator float() const { return detail::half_bits_to_float(bits); }
  static half from_bits(uint16_t b) { half h; h.bits = b; return h; }
  half operator-() const { return from_bits(uint16_t(bits ^ 0x8000u)); }
  half operator+() const { return *this; }
  half& operator++() { *this = half(float(*this) + 1.0f); return *this; }
  half& operator--() { *this = half(float(*this) - 1.0f); return *this; }
  half operator++(int) { half t = *this; ++*this; return t; }
  half operator--(int) { half t = *this; --*this; return t; }
  template <class B> half& operator+=(B b) { *this = half(float(*this) + float(b)); return *this; }
  template <class B> half& operator-=(B b) { *this = half(float(*this) - float(b)); return *this; }
  template <class B> half& operator*=(B b) { *this = half(float(*this) * float(b)); return *this; }
  template <class B> half& operator/=(B b) { *this = half(float(*this) / float(b)); return *this; }
};

// bfloat: the upper 16 bits of a binary32, rounded to nearest even.
struct bfloat {
  uint16_t bits;
  bfloat() = default;
  bfloat(float f) : bits(detail::float_to_bfloat_bits(f)) {}
  template <class I, std::enable_if_t<std::is_arithmetic<I>::value && !std::is_same<I, float>::value, int> = 0>
  bfloat(I v) : bits(detail::float_to_bfloat_bits(float(v))) {}
  bfloat(half h) : bits(detail::float_to_bfloat_bits(float(h))) {}
  operator float() const { return detail::bfloat_bits_to_float(bits); }
  static bfloat from_bits(uint16_t b) { bfloat h; h.bits = b; return h; }
  bfloat operator-() const { return from_bits(uint16_t(bits ^ 0x8000u)); }
  bfloat operator+() const { return *this; }
  bfloat& operator++() { *this = bfloat(float(*this) + 1.0f); return *this; }
  bfloat& operator--() { *this = bfloat(float(*this) - 1.0f); return *this; }
  bfloat operator++(int) { bfloat t = *this; ++*this; return t; }
  bfloat operator--(int) { bfloat t = *this; --*this; return t; }
  template <class B> bfloat& operator+=(B b) { *this = bfloat(float(*this) + float(b)); return *this; }
  template <class B> bfloat& operator-=(B b) { *this = bfloat(float(*this) - float(b)); return *this; }
  template <class B> bfloat& operator*=(B b) { *this = bfloat(float(*this) * float(b)); return *this; }
  template <class B> bfloat& operator/=(B b) { *this = bfloat(float(*this) / float(b)); return *this; }
};
inline half::half(bfloat b) : bits(detail::float_to_half_bits(float(b))) {}

typedef bfloat bfloat16_t;
typedef half half_t;

namespace detail {
template <class T> struct is_lowp : std::false_type {};
template <> struct is_lowp<half> : std::true_type {};
template <> struct is_lowp<bfloat> : std::true_type {};
template <class T> constexpr bool is_scalar_v = std::is_arithmetic<T>::value || is_lowp<T>::value;
template <class T> constexpr bool is_float_v = std::is_floating_point<T>::value || is_lowp<T>::value;

// Result type of a binary operation with at least one half/bfloat operand.
template <class A, class B, bool AL = is_lowp<A>::value, bool BL = is_lowp<B>::value> struct lp_res;
template <class A, class B> struct lp_res<A, B, true, true> {
  using type = std::conditional_t<std::is_same<A, B>::value, A, float>;
};
template <class A, class B> struct lp_res<A, B, true, false> {
  using type = std::conditional_t<std::is_floating_point<B>::value, B, A>;
};
template <class A, class B> struct lp_res<A, B, false, true> {
  using type = std::conditional_t<std::is_floating_point<A>::value, A, B>;
};
template <class A, class B>
using lp_enable_t = std::enable_if_t<(is_lowp<A>::value || is_lowp<B>::value) && is_scalar_v<A> && is_scalar_v<B>, int>;
template <class A, class B>
using lp_wide_t = std::conditional_t<std::is_same<A, double>::value || std::is_same<B, double>::value, double, float>;
}  // namespace detail

#define MSLEMU_LP_ARITH(op)                                                          \
  template <class A, class B, detail::lp_enable_t<A, B> = 0>                         \
  inline typename detail::lp_res<A, B>::type operator op(A a, B b) {                 \
    using R = typename detail::lp_res<A, B>::type;                                   \
    using W = detail::lp_wide_t<A, B>;                                               \
    return R(W(a) op W(b));                                                          \
  }
#define MSLEMU_LP_CMP(op)                                                            \
  template <class A, class B, detail::lp_enable_t<A, B> = 0>                         \
  inline bool operator op(A a, B b) {                                                \
    using W = detail::lp_wide_t<A, B>;                                               \
    return W(a) op W(b);                                                             \
  }
MSLEMU_LP_ARITH(+)
MSLEMU_LP_ARITH(-)
MSLEMU_LP_ARITH(*)
MSLEMU_LP_ARITH(/)
MSLEMU_LP_CMP(==)
MSLEMU_LP_CMP(!=)
MSLEMU_LP_CMP(<)
MSLEMU_LP_CMP(<=)
MSLEMU_LP_CMP(>)
MSLEMU_LP_CMP(>=)
#undef MSLEMU_LP_ARITH
#undef MSLEMU_LP_CMP

// ---------------------------------------------------------------------------
// Vectors. vec<T, N> for N = 2, 3, 4 has Metal's size and alignment (a
// 3-vector occupies 4 elements). Components are reachable as .x .y .z .w,
// .r .g .b .a, [i], and every multi-component swizzle (swizzles.inc).

template <class T, int N> struct vec;
template <class T, int N, int K, int I0, int I1, int I2, int I3> struct swz;

template <class X> struct vtraits {
  static constexpr bool is_vec = false;
  static constexpr bool is_swz = false;
  static constexpr int n = 0;
  using elem = void;
};
template <class T, int N> struct vtraits<vec<T, N>> {
  static constexpr bool is_vec = true;
  static constexpr bool is_swz = false;
  static constexpr int n = N;
  using elem = T;
};
template <class T, int N, int K, int I0, int I1, int I2, int I3> struct vtraits<swz<T, N, K, I0, I1, I2, I3>> {
  static constexpr bool is_vec = true;
  static constexpr bool is_swz = true;
  static constexpr int n = K;
  using elem = T;
};

namespace detail {
template <class X> using rm_cvref = std::remove_cv_t<std::remove_reference_t<X>>;
template <class X> constexpr bool is_vecish = vtraits<rm_cvref<X>>::is_vec;
// The value type of a scalar, vector or swizzle: swizzles become vectors.
template <class X, bool V = is_vecish<X>> struct value_type { using type = rm_cvref<X>; };
template <class X> struct value_type<X, true> {
  using type = vec<typename vtraits<rm_cvref<X>>::elem, vtraits<rm_cvref<X>>::n>;
};
template <class X> using value_t = typename value_type<X>::type;
template <class X> constexpr int ncomp() {
  return is_vecish<X> ? vtraits<rm_cvref<X>>::n : (is_scalar_v<rm_cvref<X>> ? 1 : 0);
}
template <class X> struct elem_type { using type = X; };
template <class T, int N> struct elem_type<vec<T, N>> { using type = T; };
template <class X> using elem_t = typename elem_type<value_t<X>>::type;
constexpr bool distinct(int k, int a, int b, int c, int d) {
  return a != b && (k < 3 || (a != c && b != c)) && (k < 4 || (a != d && b != d && c != d));
}
}  // namespace detail

template <class T, int N, int K, int I0, int I1, int I2, int I3> struct swz {
  T s[N == 3 ? 4 : N];
  operator vec<T, K>() const {
    vec<T, K> r;
    r.d_[0] = s[I0];
    r.d_[1] = s[I1];
    if constexpr (K > 2) r.d_[2] = s[I2];
    if constexpr (K > 3) r.d_[3] = s[I3];
    return r;
  }
  swz& operator=(const vec<T, K>& v) {
    static_assert(detail::distinct(K, I0, I1, I2, I3), "cannot assign to a swizzle that repeats a component");
    s[I0] = v.d_[0];
    s[I1] = v.d_[1];
    if constexpr (K > 2) s[I2] = v.d_[2];
    if constexpr (K > 3) s[I3] = v.d_[3];
    return *this;
  }
  // A user-provided copy assignment: the implicit one would copy every
  // component of the whole vector, not the swizzled ones.
  swz& operator=(const swz& o) { return *this = vec<T, K>(o); }
  T operator[](int i) const { return vec<T, K>(*this)[i]; }
  template <class B> swz& operator+=(const B& b) { return *this = vec<T, K>(*this) + b; }
  template <class B> swz& operator-=(const B& b) { return *this = vec<T, K>(*this) - b; }
  template <class B> swz& operator*=(const B& b) { return *this = vec<T, K>(*this) * b; }
  template <class B> swz& operator/=(const B& b) { return *this = vec<T, K>(*this) / b; }
};

template <class T, int N> struct vec_storage;

#define MSLEMU_SWZ(K, a, b, c, d) swz<T, N, K, a, b, c, d>

template <class T> struct alignas(sizeof(T) * 2) vec_storage<T, 2> {
  static constexpr int N = 2;
  union {
    T d_[2];
    struct { T x, y; };
    struct { T r, g; };
#define MSLEMU_SWZ_N 2
#include <mslemu/swizzles.inc>
#undef MSLEMU_SWZ_N
  };
};
template <class T> struct alignas(sizeof(T) * 4) vec_storage<T, 3> {
  static constexpr int N = 3;
  union {
    T d_[4];
    struct { T x, y, z; };
    struct { T r, g, b; };
#define MSLEMU_SWZ_N 3
#include <mslemu/swizzles.inc>
#undef MSLEMU_SWZ_N
  };
};
template <class T> struct alignas(sizeof(T) * 4) vec_storage<T, 4> {
  static constexpr int N = 4;
  union {
    T d_[4];
    struct { T x, y, z, w; };
    struct { T r, g, b, a; };
#define MSLEMU_SWZ_N 4
#include <mslemu/swizzles.inc>
#undef MSLEMU_SWZ_N
  };
};
#undef MSLEMU_SWZ

template <class T, int N> struct vec : vec_storage<T, N> {
  using vec_storage<T, N>::d_;
  using value_type = T;
  static constexpr int size = N;

  vec() = default;
  vec(const vec&) = default;
  // The union of swizzle proxies deletes the implicit assignment.
  vec& operator=(const vec& o) {
    for (int i = 0; i < N; i++) d_[i] = o.d_[i];
    return *this;
  }
  // A scalar converts implicitly to a vector with every component set.
  template <class S, std::enable_if_t<detail::is_scalar_v<S>, int> = 0>
  vec(S s) {
    for (int i = 0; i < N; i++) d_[i] = T(s);
  }
  // Conversion between element types is explicit, as in MSL.
  template <class U, std::enable_if_t<!std::is_same<U, T>::value, int> = 0>
  explicit vec(const vec<U, N>& o) {
    for (int i = 0; i < N; i++) d_[i] = T(o.d_[i]);
  }
  template <class X, std::enable_if_t<vtraits<X>::is_swz && vtraits<X>::n == N &&
                                          !std::is_same<typename vtraits<X>::elem, T>::value,
                                      int> = 0>
  explicit vec(const X& x) : vec(detail::value_t<X>(x)) {}
  // float4(a, b.xy, c) and friends: any mix of scalars and vectors whose
  // component counts add up to N.
  template <class A, class B, class... R,
            std::enable_if_t<detail::ncomp<A>() != 0 && detail::ncomp<B>() != 0 &&
                                 detail::ncomp<A>() + detail::ncomp<B>() + (0 + ... + detail::ncomp<R>()) == N,
                             int> = 0>
  vec(const A& a, const B& b, const R&... r) {
    int k = 0;
    put(k, a);
    put(k, b);
    (put(k, r), ...);
  }

  T& operator[](int i) { return d_[i]; }
  const T& operator[](int i) const { return d_[i]; }

  template <class B> vec& operator+=(const B& b) { return *this = *this + b; }
  template <class B> vec& operator-=(const B& b) { return *this = *this - b; }
  template <class B> vec& operator*=(const B& b) { return *this = *this * b; }
  template <class B> vec& operator/=(const B& b) { return *this = *this / b; }
  template <class B> vec& operator%=(const B& b) { return *this = *this % b; }
  template <class B> vec& operator&=(const B& b) { return *this = *this & b; }
  template <class B> vec& operator|=(const B& b) { return *this = *this | b; }
  template <class B> vec& operator^=(const B& b) { return *this = *this ^ b; }
  template <class B> vec& operator<<=(const B& b) { return *this = *this << b; }
  template <class B> vec& operator>>=(const B& b) { return *this = *this >> b; }

 private:
  template <class X> void put(int& k, const X& x) {
    if constexpr (detail::is_vecish<X>) {
      detail::value_t<X> v = x;
      for (int i = 0; i < vtraits<detail::value_t<X>>::n; i++) d_[k++] = T(v.d_[i]);
    } else {
      d_[k++] = T(x);
    }
  }
};

namespace detail {
// Component i of an operand of a vector operation, converted to T.
template <class T, class X> inline T comp(const X& x, int i) {
  if constexpr (is_vecish<X>) return T(x[i]);
  else return T(x);
}
template <class A, class B> struct vbin {
  using VA = value_t<A>;
  using VB = value_t<B>;
  static constexpr bool a_vec = is_vecish<A>;
  static constexpr bool b_vec = is_vecish<B>;
  using V = std::conditional_t<a_vec, VA, VB>;
  using T = typename vtraits<V>::elem;
  static constexpr int n = vtraits<V>::n;
  static constexpr bool same_shape =
      !(a_vec && b_vec) || (std::is_same<VA, VB>::value);
  static constexpr bool scalar_ok = (a_vec || is_scalar_v<rm_cvref<A>>) && (b_vec || is_scalar_v<rm_cvref<B>>);
};
template <class A, class B>
using vbin_enable_t = std::enable_if_t<(is_vecish<A> || is_vecish<B>) && vbin<A, B>::scalar_ok, int>;
}  // namespace detail

#define MSLEMU_VEC_ARITH(op)                                                                    \
  template <class A, class B, detail::vbin_enable_t<A, B> = 0>                                  \
  inline typename detail::vbin<A, B>::V operator op(const A& a, const B& b) {                   \
    using P = detail::vbin<A, B>;                                                               \
    static_assert(P::same_shape, "vector operands differ in element type or length; convert one explicitly"); \
    using T = typename P::T;                                                                    \
    typename P::V r;                                                                            \
    typename P::VA va = a;                                                                      \
    typename P::VB vb = b;                                                                      \
    for (int i = 0; i < P::n; i++) r.d_[i] = T(detail::comp<T>(va, i) op detail::comp<T>(vb, i)); \
    return r;                                                                                   \
  }
#define MSLEMU_VEC_CMP(op)                                                                      \
  template <class A, class B, detail::vbin_enable_t<A, B> = 0>                                  \
  inline vec<bool, detail::vbin<A, B>::n> operator op(const A& a, const B& b) {                 \
    using P = detail::vbin<A, B>;                                                               \
    static_assert(P::same_shape, "vector operands differ in element type or length; convert one explicitly"); \
    using T = typename P::T;                                                                    \
    vec<bool, P::n> r;                                                                          \
    typename P::VA va = a;                                                                      \
    typename P::VB vb = b;                                                                      \
    for (int i = 0; i < P::n; i++) r.d_[i] = detail::comp<T>(va, i) op detail::comp<T>(vb, i);  \
    return r;                                                                                   \
  }
MSLEMU_VEC_ARITH(+)
MSLEMU_VEC_ARITH(-)
MSLEMU_VEC_ARITH(*)
MSLEMU_VEC_ARITH(/)
MSLEMU_VEC_ARITH(%)
MSLEMU_VEC_ARITH(&)
MSLEMU_VEC_ARITH(|)
MSLEMU_VEC_ARITH(^)
MSLEMU_VEC_ARITH(<<)
MSLEMU_VEC_ARITH(>>)
MSLEMU_VEC_ARITH(&&)
MSLEMU_VEC_ARITH(||)
MSLEMU_VEC_CMP(==)
MSLEMU_VEC_CMP(!=)
MSLEMU_VEC_CMP(<)
MSLEMU_VEC_CMP(<=)
MSLEMU_VEC_CMP(>)
MSLEMU_VEC_CMP(>=)
#undef MSLEMU_VEC_ARITH
#undef MSLEMU_VEC_CMP

template <class X, std::enable_if_t<detail::is_vecish<X>, int> = 0>
inline detail::value_t<X> operator-(const X& x) {
  detail::value_t<X> v = x, r;
  for (int i = 0; i < v.size; i++) r.d_[i] = -v.d_[i];
  return r;
}
template <class X, std::enable_if_t<detail::is_vecish<X>, int> = 0>
inline detail::value_t<X> operator+(const X& x) { return x; }
template <class X, std::enable_if_t<detail::is_vecish<X>, int> = 0>
inline detail::value_t<X> operator~(const X& x) {
  detail::value_t<X> v = x, r;
  for (int i = 0; i < v.size; i++) r.d_[i] = ~v.d_[i];
  return r;
}
template <class X, std::enable_if_t<detail::is_vecish<X>, int> = 0>
inline vec<bool, vtraits<detail::value_t<X>>::n> operator!(const X& x) {
  detail::value_t<X> v = x;
  vec<bool, vtraits<detail::value_t<X>>::n> r;
  for (int i = 0; i < v.size; i++) r.d_[i] = !v.d_[i];
  return r;
}

#define MSLEMU_VEC_TYPES(T, name) \
  typedef vec<T, 2> name##2;      \
  typedef vec<T, 3> name##3;      \
  typedef vec<T, 4> name##4;
MSLEMU_VEC_TYPES(float, float)
MSLEMU_VEC_TYPES(half, half)
MSLEMU_VEC_TYPES(bfloat, bfloat)
MSLEMU_VEC_TYPES(int, int)
MSLEMU_VEC_TYPES(uint, uint)
MSLEMU_VEC_TYPES(short, short)
MSLEMU_VEC_TYPES(ushort, ushort)
MSLEMU_VEC_TYPES(char, char)
MSLEMU_VEC_TYPES(uchar, uchar)
MSLEMU_VEC_TYPES(bool, bool)
MSLEMU_VEC_TYPES(long, long)
MSLEMU_VEC_TYPES(ulong, ulong)
#undef MSLEMU_VEC_TYPES

// packed_floatN and friends: N elements with the element's alignment, as
// found in argument structs. They convert to and from the aligned vectors.
template <class T, int N> struct packed_vec {
  T d_[N];
  packed_vec() = default;
  packed_vec(const vec<T, N>& v) { for (int i = 0; i < N; i++) d_[i] = v.d_[i]; }
  operator vec<T, N>() const {
    vec<T, N> v;
    for (int i = 0; i < N; i++) v.d_[i] = d_[i];
    return v;
  }
  T& operator[](int i) { return d_[i]; }
  const T& operator[](int i) const { return d_[i]; }
};
#define MSLEMU_PACKED(T, name)         \
  typedef packed_vec<T, 2> packed_##name##2; \
  typedef packed_vec<T, 3> packed_##name##3; \
  typedef packed_vec<T, 4> packed_##name##4;
MSLEMU_PACKED(float, float)
MSLEMU_PACKED(half, half)
MSLEMU_PACKED(int, int)
MSLEMU_PACKED(uint, uint)
MSLEMU_PACKED(short, short)
MSLEMU_PACKED(ushort, ushort)
MSLEMU_PACKED(char, char)
MSLEMU_PACKED(uchar, uchar)
#undef MSLEMU_PACKED

// ---------------------------------------------------------------------------
// as_type: reinterpret the bits of a value of the same size.
template <class To, class From> inline To as_type(const From& from) {
  using F = detail::value_t<From>;
  static_assert(sizeof(To) == sizeof(F), "as_type needs types of the same size");
  F f = from;
  To t;
  __builtin_memcpy((void*)&t, (const void*)&f, sizeof(To));
  return t;
}

// ---------------------------------------------------------------------------
// Numeric limits.
template <class T> struct numeric_limits;
#define MSLEMU_INT_LIMITS(T, lo, hi)                       \
  template <> struct numeric_limits<T> {                   \
    static constexpr bool is_specialized = true;           \
    static constexpr bool is_signed = (lo) != 0;           \
    static constexpr bool is_integer = true;               \
    static constexpr T min() { return lo; }                \
    static constexpr T lowest() { return lo; }             \
    static constexpr T max() { return hi; }                \
  };
MSLEMU_INT_LIMITS(char, SCHAR_MIN, SCHAR_MAX)
MSLEMU_INT_LIMITS(uchar, 0, UCHAR_MAX)
MSLEMU_INT_LIMITS(short, SHRT_MIN, SHRT_MAX)
MSLEMU_INT_LIMITS(ushort, 0, USHRT_MAX)
MSLEMU_INT_LIMITS(int, INT_MIN, INT_MAX)
MSLEMU_INT_LIMITS(uint, 0, UINT_MAX)
MSLEMU_INT_LIMITS(long, LONG_MIN, LONG_MAX)
MSLEMU_INT_LIMITS(ulong, 0, ULONG_MAX)
#undef MSLEMU_INT_LIMITS
template <> struct numeric_limits<float> {
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static float min() { return detail::u2f(0x00800000u); }
  static float lowest() { return detail::u2f(0xff7fffffu); }
  static float max() { return detail::u2f(0x7f7fffffu); }
  static float epsilon() { return detail::u2f(0x34000000u); }
  static float infinity() { return detail::u2f(0x7f800000u); }
  static float quiet_NaN() { return detail::u2f(0x7fc00000u); }
  static float denorm_min() { return detail::u2f(1u); }
};
template <> struct numeric_limits<half> {
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static half min() { return half::from_bits(0x0400); }
  static half lowest() { return half::from_bits(0xfbff); }
  static half max() { return half::from_bits(0x7bff); }
  static half epsilon() { return half::from_bits(0x1400); }
  static half infinity() { return half::from_bits(0x7c00); }
  static half quiet_NaN() { return half::from_bits(0x7e00); }
  static half denorm_min() { return half::from_bits(0x0001); }
};
template <> struct numeric_limits<bfloat> {
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static bfloat min() { return bfloat::from_bits(0x0080); }
  static bfloat lowest() { return bfloat::from_bits(0xff7f); }
  static bfloat max() { return bfloat::from_bits(0x7f7f); }
  static bfloat epsilon() { return bfloat::from_bits(0x3c00); }
  static bfloat infinity() { return bfloat::from_bits(0x7f80); }
  static bfloat quiet_NaN() { return bfloat::from_bits(0x7fc0); }
  static bfloat denorm_min() { return bfloat::from_bits(0x0001); }
};

// ---------------------------------------------------------------------------
// Maths. Each function accepts scalars, vectors and swizzles; vector
// arguments apply component-wise. half and bfloat are computed in float and
// rounded once. Integer arguments to floating-point functions become float.

namespace detail {
template <class X> using fl_t = std::conditional_t<is_float_v<elem_t<X>>, elem_t<X>, float>;
template <class X> using flv_t =
    std::conditional_t<is_vecish<X>, vec<fl_t<X>, (ncomp<X>() > 1 ? ncomp<X>() : 2)>, fl_t<X>>;

// Applies f to each component (or to the scalar).
template <class R, class X, class F> inline R map1(const X& x, F f) {
  if constexpr (is_vecish<X>) {
    value_t<X> v = x;
    R r;
    for (int i = 0; i < v.size; i++) r.d_[i] = f(v.d_[i]);
    return r;
  } else {
    return R(f(x));
  }
}
template <class X> constexpr bool arg_ok = is_vecish<X> || is_scalar_v<rm_cvref<X>>;

// The common type of mixed scalar/vector arguments: a vector if any is one,
// otherwise the "widest" scalar (float types beat integers; float beats half).
template <class A, class B> struct promote2 {
  static constexpr bool av = is_vecish<A>, bv = is_vecish<B>;
  using EA = elem_t<A>;
  using EB = elem_t<B>;
  using E = std::conditional_t<
      av, EA,
      std::conditional_t<
          bv, EB,
          std::conditional_t<
              std::is_same<EA, EB>::value, EA,
              std::conditional_t<
                  is_float_v<EA> && !is_float_v<EB>, EA,
                  std::conditional_t<
                      is_float_v<EB> && !is_float_v<EA>, EB,
                      std::conditional_t<is_lowp<EA>::value || is_lowp<EB>::value, float,
                                         std::common_type_t<EA, EB>>>>>>>;
  static constexpr int n = av ? ncomp<A>() : (bv ? ncomp<B>() : 1);
  using type = std::conditional_t<(n > 1), vec<E, (n > 1 ? n : 2)>, E>;
};
template <class A, class... R> struct promote { using type = value_t<A>; };
template <class A, class B, class... R> struct promote<A, B, R...> {
  using type = typename promote<typename promote2<A, B>::type, R...>::type;
};
template <class... X> using promote_t = typename promote<X...>::type;
template <class P, class X> inline P as(const X& x) {
  if constexpr (is_vecish<P>) {
    if constexpr (is_vecish<X>) return P(value_t<X>(x));
    else return P(elem_t<P>(x));
  } else {
    return P(x);
  }
}
template <class P> inline elem_t<P> at(const P& p, int i) {
  if constexpr (is_vecish<P>) return p.d_[i];
  else return p;
}
template <class P> inline void set(P& p, int i, elem_t<P> v) {
  if constexpr (is_vecish<P>) p.d_[i] = v;
  else p = v;
}
template <class P> constexpr int width() { return is_vecish<P> ? vtraits<P>::n : 1; }
}  // namespace detail

#define MSLEMU_FLOAT_FN1(name, expr)                                                  \
  template <class X, std::enable_if_t<detail::arg_ok<X>, int> = 0>                     \
  inline detail::flv_t<X> name(const X& x) {                                           \
    using E = detail::fl_t<X>;                                                         \
    return detail::map1<detail::flv_t<X>>(                                             \
        detail::flv_t<X>(detail::as<detail::flv_t<X>>(x)), [](E v) -> E { float a = float(v); return E(expr); }); \
  }
MSLEMU_FLOAT_FN1(exp, __builtin_expf(a))
MSLEMU_FLOAT_FN1(exp2, __builtin_exp2f(a))
MSLEMU_FLOAT_FN1(exp10, __builtin_powf(10.0f, a))
MSLEMU_FLOAT_FN1(log, __builtin_logf(a))
MSLEMU_FLOAT_FN1(log2, __builtin_log2f(a))
MSLEMU_FLOAT_FN1(log10, __builtin_log10f(a))
MSLEMU_FLOAT_FN1(sqrt, __builtin_sqrtf(a))
MSLEMU_FLOAT_FN1(rsqrt, 1.0f / __builtin_sqrtf(a))
MSLEMU_FLOAT_FN1(tanh, __builtin_tanhf(a))
MSLEMU_FLOAT_FN1(sinh, __builtin_sinhf(a))
MSLEMU_FLOAT_FN1(cosh, __builtin_coshf(a))
MSLEMU_FLOAT_FN1(sin, __builtin_sinf(a))
MSLEMU_FLOAT_FN1(cos, __builtin_cosf(a))
MSLEMU_FLOAT_FN1(tan, __builtin_tanf(a))
MSLEMU_FLOAT_FN1(asin, __builtin_asinf(a))
MSLEMU_FLOAT_FN1(acos, __builtin_acosf(a))
MSLEMU_FLOAT_FN1(atan, __builtin_atanf(a))
MSLEMU_FLOAT_FN1(sinpi, __builtin_sinf(a * 3.14159265358979323846f))
MSLEMU_FLOAT_FN1(cospi, __builtin_cosf(a * 3.14159265358979323846f))
MSLEMU_FLOAT_FN1(floor, __builtin_floorf(a))
MSLEMU_FLOAT_FN1(ceil, __builtin_ceilf(a))
MSLEMU_FLOAT_FN1(round, __builtin_roundf(a))
MSLEMU_FLOAT_FN1(rint, __builtin_rintf(a))
MSLEMU_FLOAT_FN1(trunc, __builtin_truncf(a))
MSLEMU_FLOAT_FN1(fabs, __builtin_fabsf(a))
MSLEMU_FLOAT_FN1(fract, __builtin_fminf(a - __builtin_floorf(a), detail::u2f(0x3f7fffffu)))
MSLEMU_FLOAT_FN1(saturate, __builtin_fminf(__builtin_fmaxf(a, 0.0f), 1.0f))
MSLEMU_FLOAT_FN1(sign, (a > 0.0f ? 1.0f : a < 0.0f ? -1.0f : a == a ? a : 0.0f))
#undef MSLEMU_FLOAT_FN1

#define MSLEMU_FLOAT_FN2(name, expr)                                                        \
  template <class X, class Y, std::enable_if_t<detail::arg_ok<X> && detail::arg_ok<Y>, int> = 0> \
  inline detail::flv_t<detail::promote_t<X, Y>> name(const X& x, const Y& y) {              \
    using P = detail::flv_t<detail::promote_t<X, Y>>;                                       \
    using E = detail::elem_t<P>;                                                            \
    P px = detail::as<P>(x), py = detail::as<P>(y), r;                                      \
    for (int i = 0; i < detail::width<P>(); i++) {                                          \
      float a = float(detail::at(px, i)), b = float(detail::at(py, i));                     \
      detail::set(r, i, E(expr));                                                           \
    }                                                                                       \
    return r;                                                                               \
  }
MSLEMU_FLOAT_FN2(pow, __builtin_powf(a, b))
MSLEMU_FLOAT_FN2(powr, __builtin_powf(a, b))
MSLEMU_FLOAT_FN2(fmin, __builtin_fminf(a, b))
MSLEMU_FLOAT_FN2(fmax, __builtin_fmaxf(a, b))
MSLEMU_FLOAT_FN2(fmod, __builtin_fmodf(a, b))
MSLEMU_FLOAT_FN2(atan2, __builtin_atan2f(a, b))
MSLEMU_FLOAT_FN2(copysign, __builtin_copysignf(a, b))
MSLEMU_FLOAT_FN2(step, (b < a ? 0.0f : 1.0f))
MSLEMU_FLOAT_FN2(divide, a / b)
MSLEMU_FLOAT_FN2(fdim, __builtin_fdimf(a, b))
#undef MSLEMU_FLOAT_FN2

template <class X, class Y, class Z,
          std::enable_if_t<detail::arg_ok<X> && detail::arg_ok<Y> && detail::arg_ok<Z>, int> = 0>
inline detail::flv_t<detail::promote_t<X, Y, Z>> fma(const X& x, const Y& y, const Z& z) {
  using P = detail::flv_t<detail::promote_t<X, Y, Z>>;
  using E = detail::elem_t<P>;
  P px = detail::as<P>(x), py = detail::as<P>(y), pz = detail::as<P>(z), r;
  for (int i = 0; i < detail::width<P>(); i++)
    detail::set(r, i, E(__builtin_fmaf(float(detail::at(px, i)), float(detail::at(py, i)), float(detail::at(pz, i)))));
  return r;
}
template <class X, class Y, class Z,
          std::enable_if_t<detail::arg_ok<X> && detail::arg_ok<Y> && detail::arg_ok<Z>, int> = 0>
inline detail::flv_t<detail::promote_t<X, Y, Z>> mix(const X& x, const Y& y, const Z& a) {
  using P = detail::flv_t<detail::promote_t<X, Y, Z>>;
  using E = detail::elem_t<P>;
  P px = detail::as<P>(x), py = detail::as<P>(y), pa = detail::as<P>(a), r;
  for (int i = 0; i < detail::width<P>(); i++) {
    float fx = float(detail::at(px, i)), fy = float(detail::at(py, i)), fa = float(detail::at(pa, i));
    detail::set(r, i, E(fx + (fy - fx) * fa));
  }
  return r;
}
template <class X, class Y, class Z,
          std::enable_if_t<detail::arg_ok<X> && detail::arg_ok<Y> && detail::arg_ok<Z>, int> = 0>
inline detail::flv_t<detail::promote_t<X, Y, Z>> smoothstep(const X& e0, const Y& e1, const Z& x) {
  using P = detail::flv_t<detail::promote_t<X, Y, Z>>;
  using E = detail::elem_t<P>;
  P p0 = detail::as<P>(e0), p1 = detail::as<P>(e1), px = detail::as<P>(x), r;
  for (int i = 0; i < detail::width<P>(); i++) {
    float a = float(detail::at(p0, i)), b = float(detail::at(p1, i)), v = float(detail::at(px, i));
    float t = __builtin_fminf(__builtin_fmaxf((v - a) / (b - a), 0.0f), 1.0f);
    detail::set(r, i, E(t * t * (3.0f - 2.0f * t)));
  }
  return r;
}

// min, max, clamp, abs work on integers too.
#define MSLEMU_GEN_FN2(name, expr)                                                          \
  template <class X, class Y, std::enable_if_t<detail::arg_ok<X> && detail::arg_ok<Y>, int> = 0> \
  inline detail::promote_t<X, Y> name(const X& x, const Y& y) {                             \
    using P = detail::promote_t<X, Y>;                                                      \
    using E = detail::elem_t<P>;                                                            \
    P px = detail::as<P>(x), py = detail::as<P>(y), r;                                      \
    for (int i = 0; i < detail::width<P>(); i++) {                                          \
      E a = detail::at(px, i), b = detail::at(py, i);                                       \
      detail::set(r, i, E(expr));                                                           \
    }                                                                                       \
    return r;                                                                               \
  }
namespace detail {
template <class E> inline E minv(E a, E b) {
  if constexpr (is_float_v<E>) return E(__builtin_fminf(float(a), float(b)));
  else return b < a ? b : a;
}
template <class E> inline E maxv(E a, E b) {
  if constexpr (is_float_v<E>) return E(__builtin_fmaxf(float(a), float(b)));
  else return a < b ? b : a;
}
}  // namespace detail
MSLEMU_GEN_FN2(min, detail::minv(a, b))
MSLEMU_GEN_FN2(max, detail::maxv(a, b))
MSLEMU_GEN_FN2(absdiff, (a > b ? a - b : b - a))
#undef MSLEMU_GEN_FN2

template <class X, class Y, class Z,
          std::enable_if_t<detail::arg_ok<X> && detail::arg_ok<Y> && detail::arg_ok<Z>, int> = 0>
inline detail::promote_t<X, Y, Z> clamp(const X& x, const Y& lo, const Z& hi) {
  using P = detail::promote_t<X, Y, Z>;
  using E = detail::elem_t<P>;
  P px = detail::as<P>(x), pl = detail::as<P>(lo), ph = detail::as<P>(hi), r;
  for (int i = 0; i < detail::width<P>(); i++)
    detail::set(r, i, detail::minv<E>(detail::maxv<E>(detail::at(px, i), detail::at(pl, i)), detail::at(ph, i)));
  return r;
}

template <class X, std::enable_if_t<detail::arg_ok<X>, int> = 0>
inline detail::value_t<X> abs(const X& x) {
  using E = detail::elem_t<X>;
  return detail::map1<detail::value_t<X>>(x, [](E v) -> E {
    if constexpr (detail::is_float_v<E>) return E(__builtin_fabsf(float(v)));
    else if constexpr (std::is_signed<E>::value) return E(v < 0 ? -v : v);
    else return v;
  });
}

template <class X, std::enable_if_t<detail::arg_ok<X>, int> = 0>
inline auto isnan(const X& x) {
  using R = std::conditional_t<detail::is_vecish<X>, vec<bool, (detail::ncomp<X>() > 1 ? detail::ncomp<X>() : 2)>, bool>;
  return detail::map1<R>(x, [](detail::elem_t<X> v) -> bool { float a = float(v); return a != a; });
}
template <class X, std::enable_if_t<detail::arg_ok<X>, int> = 0>
inline auto isinf(const X& x) {
  using R = std::conditional_t<detail::is_vecish<X>, vec<bool, (detail::ncomp<X>() > 1 ? detail::ncomp<X>() : 2)>, bool>;
  return detail::map1<R>(x, [](detail::elem_t<X> v) -> bool { return __builtin_isinf(float(v)) != 0; });
}
template <class X, std::enable_if_t<detail::arg_ok<X>, int> = 0>
inline auto isfinite(const X& x) {
  using R = std::conditional_t<detail::is_vecish<X>, vec<bool, (detail::ncomp<X>() > 1 ? detail::ncomp<X>() : 2)>, bool>;
  return detail::map1<R>(x, [](detail::elem_t<X> v) -> bool { return __builtin_isfinite(float(v)) != 0; });
}
template <class X, std::enable_if_t<detail::arg_ok<X>, int> = 0>
inline auto signbit(const X& x) {
  using R = std::conditional_t<detail::is_vecish<X>, vec<bool, (detail::ncomp<X>() > 1 ? detail::ncomp<X>() : 2)>, bool>;
  return detail::map1<R>(x, [](detail::elem_t<X> v) -> bool { return __builtin_signbit(float(v)) != 0; });
}

// select(a, b, c): c ? b : a, component-wise for vector conditions.
template <class A, class B, class C> inline detail::promote_t<A, B> select(const A& a, const B& b, const C& c) {
  using P = detail::promote_t<A, B>;
  P pa = detail::as<P>(a), pb = detail::as<P>(b), r;
  if constexpr (detail::is_vecish<C>) {
    detail::value_t<C> vc = c;
    for (int i = 0; i < detail::width<P>(); i++) detail::set(r, i, vc.d_[i] ? detail::at(pb, i) : detail::at(pa, i));
  } else {
    r = c ? pb : pa;
  }
  return r;
}

template <class X, std::enable_if_t<detail::is_vecish<X>, int> = 0> inline bool all(const X& x) {
  detail::value_t<X> v = x;
  for (int i = 0; i < v.size; i++)
    if (!v.d_[i]) return false;
  return true;
}
template <class X, std::enable_if_t<detail::is_vecish<X>, int> = 0> inline bool any(const X& x) {
  detail::value_t<X> v = x;
  for (int i = 0; i < v.size; i++)
    if (v.d_[i]) return true;
  return false;
}
inline bool all(bool b) { return b; }
inline bool any(bool b) { return b; }

// Geometric functions, accumulated in float.
template <class X, class Y> inline detail::fl_t<X> dot(const X& x, const Y& y) {
  static_assert(detail::is_vecish<X> && detail::is_vecish<Y>, "dot needs two vectors");
  detail::value_t<X> a = x;
  detail::value_t<X> b = y;
  float s = 0.0f;
  for (int i = 0; i < a.size; i++) s += float(a.d_[i]) * float(b.d_[i]);
  return detail::fl_t<X>(s);
}
template <class X> inline detail::fl_t<X> length(const X& x) {
  return detail::fl_t<X>(__builtin_sqrtf(float(dot(x, x))));
}
template <class X, class Y> inline detail::fl_t<X> distance(const X& x, const Y& y) {
  return length(detail::value_t<X>(x) - detail::value_t<X>(y));
}
template <class X> inline detail::value_t<X> normalize(const X& x) {
  detail::value_t<X> v = x;
  float inv = 1.0f / __builtin_sqrtf(float(dot(v, v)));
  return v * detail::fl_t<X>(inv);
}
template <class X, class Y> inline detail::value_t<X> cross(const X& x, const Y& y) {
  detail::value_t<X> a = x;
  detail::value_t<X> b = y;
  static_assert(a.size == 3, "cross needs 3-component vectors");
  return detail::value_t<X>(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
template <class X, class Y> inline detail::value_t<X> sincos(const X& x, Y& c) {
  c = cos(x);
  return sin(x);
}

// Integer functions.
namespace detail {
template <class U> inline U reverse_bits_of(U u) {
  U r = 0;
  for (int i = 0; i < int(sizeof(U) * 8); i++) r = U(r | (((u >> i) & 1u) ? U(U(1) << (sizeof(U) * 8 - 1 - i)) : U(0)));
  return r;
}
}  // namespace detail
#define MSLEMU_INT_FN1(name, expr)                                                 \
  template <class X, std::enable_if_t<detail::arg_ok<X>, int> = 0>                  \
  inline detail::value_t<X> name(const X& x) {                                      \
    using E = detail::elem_t<X>;                                                    \
    static_assert(std::is_integral<E>::value, #name " needs an integer type");      \
    return detail::map1<detail::value_t<X>>(x, [](E v) -> E {                       \
      using U = std::make_unsigned_t<E>;                                            \
      constexpr int bits = int(sizeof(E) * 8);                                      \
      U u = U(v);                                                                   \
      (void)bits;                                                                   \
      return E(expr);                                                               \
    });                                                                             \
  }
MSLEMU_INT_FN1(popcount, __builtin_popcountll((unsigned long long)u))
MSLEMU_INT_FN1(clz, u == 0 ? bits : __builtin_clzll((unsigned long long)u) - (64 - bits))
MSLEMU_INT_FN1(ctz, u == 0 ? bits : __builtin_ctzll((unsigned long long)u))
MSLEMU_INT_FN1(reverse_bits, detail::reverse_bits_of<U>(u))
#undef MSLEMU_INT_FN1

template <class X, class Y> inline detail::promote_t<X, Y> mulhi(const X& x, const Y& y) {
  using P = detail::promote_t<X, Y>;
  using E = detail::elem_t<P>;
  static_assert(std::is_integral<E>::value && sizeof(E) <= 4, "mulhi needs 32-bit or narrower integers");
  P px = detail::as<P>(x), py = detail::as<P>(y), r;
  for (int i = 0; i < detail::width<P>(); i++)
    detail::set(r, i, E((int64_t(detail::at(px, i)) * int64_t(detail::at(py, i))) >> (sizeof(E) * 8)));
  return r;
}
template <class X> inline detail::value_t<X> extract_bits(const X& x, uint offset, uint bits) {
  using E = detail::elem_t<X>;
  return detail::map1<detail::value_t<X>>(x, [=](E v) -> E {
    if (bits == 0) return E(0);
    using U = std::make_unsigned_t<E>;
    U u = U(U(v) >> offset);
    constexpr int w = int(sizeof(E) * 8);
    if (int(bits) < w) u = U(u & ((U(1) << bits) - 1));
    if (std::is_signed<E>::value && int(bits) < w && (u >> (bits - 1)) & 1) u = U(u | ~((U(1) << bits) - 1));
    return E(u);
  });
}

// ---------------------------------------------------------------------------
// fast:: and precise:: maths: mslemu computes both the same way (IEEE
// float, libm). Note that Metal compiles with fast maths by default; results
// on an Apple GPU may differ in the last bits.
#define MSLEMU_MATH_NAMES(X)                                                                   \
  X(exp) X(exp2) X(exp10) X(log) X(log2) X(log10) X(sqrt) X(rsqrt) X(tanh) X(sinh) X(cosh)     \
  X(sin) X(cos) X(tan) X(asin) X(acos) X(atan) X(sinpi) X(cospi) X(floor) X(ceil) X(round)     \
  X(rint) X(trunc) X(fabs) X(fract) X(saturate) X(sign) X(pow) X(powr) X(fmin) X(fmax) X(fmod) \
  X(atan2) X(copysign) X(step) X(divide) X(fdim) X(fma) X(mix) X(smoothstep) X(min) X(max)     \
  X(clamp) X(abs) X(isnan) X(isinf) X(isfinite) X(dot) X(length) X(distance) X(normalize)      \
  X(cross) X(sincos)
#define MSLEMU_USING(n) using metal::n;
namespace fast { MSLEMU_MATH_NAMES(MSLEMU_USING) }
namespace precise { MSLEMU_MATH_NAMES(MSLEMU_USING) }
#undef MSLEMU_USING
#undef MSLEMU_MATH_NAMES

// ---------------------------------------------------------------------------
// Atomics. Threadgroups run on different OS threads, so these are real
// atomic operations on the underlying memory.

enum memory_order {
  memory_order_relaxed,
  memory_order_acquire,
  memory_order_release,
  memory_order_acq_rel,
  memory_order_seq_cst,
};
enum thread_scope { thread_scope_thread, thread_scope_simdgroup, thread_scope_threadgroup, thread_scope_device };

template <class T> struct atomic {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "atomic<T> needs a 32- or 64-bit T");
  T v_;
};
typedef atomic<int> atomic_int;
typedef atomic<uint> atomic_uint;
typedef atomic<float> atomic_float;
typedef atomic<ulong> atomic_ulong;
typedef atomic<long> atomic_long;

namespace detail {
inline constexpr int gcc_order(memory_order o) {
  return o == memory_order_relaxed ? __ATOMIC_RELAXED : __ATOMIC_SEQ_CST;
}
template <class T> using abits_t = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
template <class T> inline abits_t<T> tobits(T v) { abits_t<T> b; __builtin_memcpy(&b, &v, sizeof(T)); return b; }
template <class T> inline T frombits(abits_t<T> b) { T v; __builtin_memcpy(&v, &b, sizeof(T)); return v; }
// A compare-and-swap loop for operations the hardware lacks here.
template <class T, class F> inline T atomic_rmw(volatile atomic<T>* o, F f) {
  volatile abits_t<T>* p = reinterpret_cast<volatile abits_t<T>*>(&o->v_);
  abits_t<T> old = __atomic_load_n(p, __ATOMIC_RELAXED);
  for (;;) {
    abits_t<T> nw = tobits<T>(f(frombits<T>(old)));
    if (__atomic_compare_exchange_n(p, &old, nw, false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) return frombits<T>(old);
  }
}
}  // namespace detail

template <class T, class U> inline void atomic_store_explicit(volatile atomic<T>* o, U v, memory_order mo) {
  __atomic_store_n(reinterpret_cast<volatile detail::abits_t<T>*>(&o->v_), detail::tobits<T>(T(v)), detail::gcc_order(mo));
}
template <class T> inline T atomic_load_explicit(const volatile atomic<T>* o, memory_order mo) {
  return detail::frombits<T>(__atomic_load_n(reinterpret_cast<const volatile detail::abits_t<T>*>(&o->v_), detail::gcc_order(mo)));
}
template <class T, class U> inline T atomic_exchange_explicit(volatile atomic<T>* o, U v, memory_order mo) {
  return detail::frombits<T>(__atomic_exchange_n(reinterpret_cast<volatile detail::abits_t<T>*>(&o->v_), detail::tobits<T>(T(v)), detail::gcc_order(mo)));
}
template <class T, class U>
inline bool atomic_compare_exchange_weak_explicit(volatile atomic<T>* o, T* expected, U desired, memory_order, memory_order) {
  detail::abits_t<T> e = detail::tobits<T>(*expected);
  bool ok = __atomic_compare_exchange_n(reinterpret_cast<volatile detail::abits_t<T>*>(&o->v_), &e,
                                        detail::tobits<T>(T(desired)), false, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
  *expected = detail::frombits<T>(e);
  return ok;
}
template <class T, class U>
inline bool atomic_compare_exchange_strong_explicit(volatile atomic<T>* o, T* expected, U desired, memory_order a, memory_order b) {
  return atomic_compare_exchange_weak_explicit(o, expected, desired, a, b);
}
#define MSLEMU_ATOMIC_RMW(name, expr)                                                  \
  template <class T, class U> inline T name(volatile atomic<T>* o, U operand, memory_order) { \
    T b = T(operand);                                                                 \
    return detail::atomic_rmw<T>(o, [b](T a) -> T { return T(expr); });               \
  }
MSLEMU_ATOMIC_RMW(atomic_fetch_add_explicit, a + b)
MSLEMU_ATOMIC_RMW(atomic_fetch_sub_explicit, a - b)
MSLEMU_ATOMIC_RMW(atomic_fetch_max_explicit, (a < b ? b : a))
MSLEMU_ATOMIC_RMW(atomic_fetch_min_explicit, (b < a ? b : a))
MSLEMU_ATOMIC_RMW(atomic_fetch_and_explicit, a & b)
MSLEMU_ATOMIC_RMW(atomic_fetch_or_explicit, a | b)
MSLEMU_ATOMIC_RMW(atomic_fetch_xor_explicit, a ^ b)
#undef MSLEMU_ATOMIC_RMW

// ---------------------------------------------------------------------------
// Barriers.

enum mem_flags : uint {
  mem_none = 0,
  mem_device = 1,
  mem_threadgroup = 2,
  mem_texture = 4,
  mem_threadgroup_imageblock = 8,
  mem_object_data = 16,
};
inline mem_flags operator|(mem_flags a, mem_flags b) { return mem_flags(uint(a) | uint(b)); }

// All threads of the threadgroup must reach the same barrier; the driver
// reports divergence otherwise.
inline void threadgroup_barrier(mem_flags, MSLEMU_SITE_PARAMS) {
  ::mslemu::rt::threadgroup_barrier(MSLEMU_SITE);
}
inline void simdgroup_barrier(mem_flags, MSLEMU_SITE_PARAMS) {
  ::mslemu::rt::simd_exchange(nullptr, 0, "simdgroup_barrier", MSLEMU_SITE);
}
inline void atomic_thread_fence(mem_flags, memory_order, thread_scope = thread_scope_device) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

// ---------------------------------------------------------------------------
// SIMD-group functions. Each call is a rendezvous of the active lanes of the
// SIMD-group (those that have not returned); lanes waiting at a different
// call site are reported as divergence. Every lane computes its result from
// the values all lanes deposited, in lane order, so results are identical
// and deterministic. Reading the value of an inactive lane (simd_shuffle
// from a lane that returned, or beyond a partial SIMD-group) gives a value
// with every bit set: NaN for floating-point types.

namespace detail {
// A lane's slot holds its value at offset 0 and, at kArgOffset, the operand
// that must be the same on all lanes (shuffle delta, broadcast lane).
constexpr unsigned kArgOffset = rt::kSlotBytes - 4;
template <class T> inline rt::SimdView simd_xchg(const T& v, uint32_t arg, const char* what, const char* file, int line) {
  static_assert(sizeof(T) <= kArgOffset, "value too large for a SIMD-group function");
  unsigned char s[rt::kSlotBytes];
  __builtin_memset(s, 0, sizeof(s));
  __builtin_memcpy(s, (const void*)&v, sizeof(T));
  __builtin_memcpy(s + kArgOffset, &arg, 4);
  return rt::simd_exchange(s, sizeof(s), what, file, line);
}
template <class T> inline T simd_get(const rt::SimdView& s, uint32_t lane) {
  T v;
  if (lane >= rt::kSimdWidth || !(s.active >> lane & 1u)) {
    __builtin_memset((void*)&v, 0xff, sizeof(T));
    return v;
  }
  __builtin_memcpy((void*)&v, s.slots + lane * rt::kSlotBytes, sizeof(T));
  return v;
}
template <class T> inline uint32_t simd_arg(const rt::SimdView& s, uint32_t lane) {
  uint32_t a;
  __builtin_memcpy(&a, s.slots + lane * rt::kSlotBytes + kArgOffset, 4);
  return a;
}
// The operand (lane index, delta, mask) must be the same on all active lanes.
template <class T> inline void simd_check_uniform(const rt::SimdView& s, const char* what, const char* operand,
                                                  const char* file, int line) {
  uint32_t mine = simd_arg<T>(s, s.lane);
  for (uint32_t l = 0; l < rt::kSimdWidth; l++) {
    if ((s.active >> l & 1u) && simd_arg<T>(s, l) != mine) {
      char msg[160];
      __builtin_snprintf(msg, sizeof msg, "%s: %s differs between lanes (%u on lane %u, %u on lane %u); it must be uniform",
                         what, operand, mine, s.lane, simd_arg<T>(s, l), l);
      rt::kernel_error(file, line, msg);
    }
  }
}
template <class T, class F> inline T simd_fold(const rt::SimdView& s, uint32_t upto, F f, bool& any) {
  T acc{};
  any = false;
  for (uint32_t l = 0; l < upto; l++) {
    if (!(s.active >> l & 1u)) continue;
    T v = simd_get<T>(s, l);
    acc = any ? T(f(acc, v)) : v;
    any = true;
  }
  return acc;
}
}  // namespace detail

#define MSLEMU_SIMD_REDUCE(name, fexpr)                                                     \
  template <class X> inline detail::value_t<X> name(const X& x, MSLEMU_SITE_PARAMS) {       \
    using T = detail::value_t<X>;                                                           \
    rt::SimdView s = detail::simd_xchg<T>(T(x), 0, #name, MSLEMU_SITE);                     \
    bool any;                                                                               \
    return detail::simd_fold<T>(s, rt::kSimdWidth, [](const T& a, const T& b) { return fexpr; }, any); \
  }
MSLEMU_SIMD_REDUCE(simd_sum, a + b)
MSLEMU_SIMD_REDUCE(simd_product, a * b)
MSLEMU_SIMD_REDUCE(simd_max, max(a, b))
MSLEMU_SIMD_REDUCE(simd_min, min(a, b))
MSLEMU_SIMD_REDUCE(simd_and, a & b)
MSLEMU_SIMD_REDUCE(simd_or, a | b)
MSLEMU_SIMD_REDUCE(simd_xor, a ^ b)
#undef MSLEMU_SIMD_REDUCE

#define MSLEMU_SIMD_PREFIX(name, fexpr, inclusive, identity)                                \
  template <class X> inline detail::value_t<X> name(const X& x, MSLEMU_SITE_PARAMS) {       \
    using T = detail::value_t<X>;                                                           \
    rt::SimdView s = detail::simd_xchg<T>(T(x), 0, #name, MSLEMU_SITE);                     \
    bool any;                                                                               \
    T r = detail::simd_fold<T>(s, s.lane + (inclusive ? 1 : 0), [](const T& a, const T& b) { return fexpr; }, any); \
    return any ? r : T(identity);                                                           \
  }
MSLEMU_SIMD_PREFIX(simd_prefix_exclusive_sum, a + b, false, 0)
MSLEMU_SIMD_PREFIX(simd_prefix_inclusive_sum, a + b, true, 0)
MSLEMU_SIMD_PREFIX(simd_prefix_exclusive_product, a * b, false, 1)
MSLEMU_SIMD_PREFIX(simd_prefix_inclusive_product, a * b, true, 1)
#undef MSLEMU_SIMD_PREFIX

template <class X> inline detail::value_t<X> simd_shuffle(const X& x, ushort lane, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), 0, "simd_shuffle", MSLEMU_SITE);
  return detail::simd_get<T>(s, lane);
}
template <class X> inline detail::value_t<X> simd_shuffle_xor(const X& x, ushort mask, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), mask, "simd_shuffle_xor", MSLEMU_SITE);
  detail::simd_check_uniform<T>(s, "simd_shuffle_xor", "mask", MSLEMU_SITE);
  return detail::simd_get<T>(s, s.lane ^ mask);
}
// The upper `delta` lanes keep their own value (no wrap-around).
template <class X> inline detail::value_t<X> simd_shuffle_down(const X& x, ushort delta, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), delta, "simd_shuffle_down", MSLEMU_SITE);
  detail::simd_check_uniform<T>(s, "simd_shuffle_down", "delta", MSLEMU_SITE);
  uint32_t src = s.lane + delta;
  return src >= rt::kSimdWidth ? T(x) : detail::simd_get<T>(s, src);
}
// The lower `delta` lanes keep their own value.
template <class X> inline detail::value_t<X> simd_shuffle_up(const X& x, ushort delta, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), delta, "simd_shuffle_up", MSLEMU_SITE);
  detail::simd_check_uniform<T>(s, "simd_shuffle_up", "delta", MSLEMU_SITE);
  return s.lane < delta ? T(x) : detail::simd_get<T>(s, s.lane - delta);
}
template <class X> inline detail::value_t<X> simd_shuffle_rotate_down(const X& x, ushort delta, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), delta, "simd_shuffle_rotate_down", MSLEMU_SITE);
  detail::simd_check_uniform<T>(s, "simd_shuffle_rotate_down", "delta", MSLEMU_SITE);
  return detail::simd_get<T>(s, (s.lane + delta) % rt::kSimdWidth);
}
template <class X> inline detail::value_t<X> simd_shuffle_rotate_up(const X& x, ushort delta, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), delta, "simd_shuffle_rotate_up", MSLEMU_SITE);
  detail::simd_check_uniform<T>(s, "simd_shuffle_rotate_up", "delta", MSLEMU_SITE);
  return detail::simd_get<T>(s, (s.lane + rt::kSimdWidth - delta % rt::kSimdWidth) % rt::kSimdWidth);
}
template <class X> inline detail::value_t<X> simd_broadcast(const X& x, ushort lane, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), lane, "simd_broadcast", MSLEMU_SITE);
  detail::simd_check_uniform<T>(s, "simd_broadcast", "lane", MSLEMU_SITE);
  return detail::simd_get<T>(s, lane);
}
template <class X> inline detail::value_t<X> simd_broadcast_first(const X& x, MSLEMU_SITE_PARAMS) {
  using T = detail::value_t<X>;
  rt::SimdView s = detail::simd_xchg<T>(T(x), 0, "simd_broadcast_first", MSLEMU_SITE);
  return detail::simd_get<T>(s, uint32_t(__builtin_ctz(s.active)));
}
inline bool simd_all(bool b, MSLEMU_SITE_PARAMS) {
  rt::SimdView s = detail::simd_xchg<uint32_t>(b ? 1u : 0u, 0, "simd_all", MSLEMU_SITE);
  for (uint32_t l = 0; l < rt::kSimdWidth; l++)
    if ((s.active >> l & 1u) && !detail::simd_get<uint32_t>(s, l)) return false;
  return true;
}
inline bool simd_any(bool b, MSLEMU_SITE_PARAMS) {
  rt::SimdView s = detail::simd_xchg<uint32_t>(b ? 1u : 0u, 0, "simd_any", MSLEMU_SITE);
  for (uint32_t l = 0; l < rt::kSimdWidth; l++)
    if ((s.active >> l & 1u) && detail::simd_get<uint32_t>(s, l)) return true;
  return false;
}
// simd_vote: bit i is set when lane i is active and its predicate is true.
struct simd_vote {
  typedef uint64_t vote_t;
  vote_t v_;
  uint32_t active_;
  explicit operator vote_t() const { return v_; }
  bool all() const { return v_ == active_; }
  bool any() const { return v_ != 0; }
};
inline simd_vote simd_ballot(bool b, MSLEMU_SITE_PARAMS) {
  rt::SimdView s = detail::simd_xchg<uint32_t>(b ? 1u : 0u, 0, "simd_ballot", MSLEMU_SITE);
  simd_vote v{0, s.active};
  for (uint32_t l = 0; l < rt::kSimdWidth; l++)
    if ((s.active >> l & 1u) && detail::simd_get<uint32_t>(s, l)) v.v_ |= uint64_t(1) << l;
  return v;
}
inline simd_vote simd_active_threads_mask(MSLEMU_SITE_PARAMS) {
  rt::SimdView s = detail::simd_xchg<uint32_t>(0u, 0, "simd_active_threads_mask", MSLEMU_SITE);
  return simd_vote{s.active, s.active};
}
inline bool simd_is_first(MSLEMU_SITE_PARAMS) {
  rt::SimdView s = detail::simd_xchg<uint32_t>(0u, 0, "simd_is_first", MSLEMU_SITE);
  return s.lane == uint32_t(__builtin_ctz(s.active));
}

// ---------------------------------------------------------------------------
// SIMD-group matrices. On a GPU the 64 elements are spread over the 32
// lanes; here every lane holds the whole matrix and computes every result
// itself, so results are identical on all lanes. Loads and stores check
// that all lanes pass the same pointer, stride, origin and transpose flag.
// thread_elements() is not provided (it would expose the hardware layout).

template <class T, int Cols, int Rows> struct simdgroup_matrix {
  static_assert(Cols == 8 && Rows == 8, "mslemu models only 8x8 simdgroup matrices");
  T m[Rows][Cols];
  simdgroup_matrix() = default;
  // A diagonal matrix with `v` on the diagonal, as the MSL constructor.
  explicit simdgroup_matrix(T v) {
    for (int r = 0; r < Rows; r++)
      for (int c = 0; c < Cols; c++) m[r][c] = r == c ? v : T(0);
  }
};
typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;
typedef simdgroup_matrix<bfloat, 8, 8> simdgroup_bfloat8x8;

template <class T, int C, int R> inline simdgroup_matrix<T, C, R> make_filled_simdgroup_matrix(T v) {
  simdgroup_matrix<T, C, R> d;
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) d.m[r][c] = v;
  return d;
}

namespace detail {
struct matrix_args {
  uint64_t ptr, epr, ox, oy, transpose;
  bool operator!=(const matrix_args& o) const {
    return ptr != o.ptr || epr != o.epr || ox != o.ox || oy != o.oy || transpose != o.transpose;
  }
};
inline void matrix_rendezvous(const char* what, const void* p, ulong epr, vec<ulong, 2> origin, bool transpose,
                              const char* file, int line) {
  matrix_args a{uint64_t(uintptr_t(p)), epr, origin.x, origin.y, transpose ? 1u : 0u};
  rt::SimdView s = simd_xchg<matrix_args>(a, 0, what, file, line);
  for (uint32_t l = 0; l < rt::kSimdWidth; l++) {
    if (!(s.active >> l & 1u)) continue;
    matrix_args o = simd_get<matrix_args>(s, l);
    if (o != a) {
      char msg[200];
      __builtin_snprintf(msg, sizeof msg,
                         "%s: lanes %u and %u pass different arguments (pointer, elements_per_row, origin or "
                         "transpose); a SIMD-group matrix operation needs the same arguments on every lane",
                         what, s.lane, l);
      rt::kernel_error(file, line, msg);
    }
  }
}
}  // namespace detail

// matrix_origin is (column, row) of the loaded matrix's first element in
// the loaded (possibly transposed) orientation.
template <class T, int C, int R, class U>
inline void simdgroup_load(simdgroup_matrix<T, C, R>& d, const U* src, ulong elements_per_row = C,
                           vec<ulong, 2> matrix_origin = vec<ulong, 2>(0), bool transpose_matrix = false,
                           MSLEMU_SITE_PARAMS) {
  detail::matrix_rendezvous("simdgroup_load", src, elements_per_row, matrix_origin, transpose_matrix, MSLEMU_SITE);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      ulong row = matrix_origin.y + r, col = matrix_origin.x + c;
      d.m[r][c] = T(transpose_matrix ? src[col * elements_per_row + row] : src[row * elements_per_row + col]);
    }
}
template <class T, int C, int R, class U>
inline void simdgroup_store(const simdgroup_matrix<T, C, R>& d, U* dst, ulong elements_per_row = C,
                            vec<ulong, 2> matrix_origin = vec<ulong, 2>(0), bool transpose_matrix = false,
                            MSLEMU_SITE_PARAMS) {
  detail::matrix_rendezvous("simdgroup_store", dst, elements_per_row, matrix_origin, transpose_matrix, MSLEMU_SITE);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) {
      ulong row = matrix_origin.y + r, col = matrix_origin.x + c;
      (transpose_matrix ? dst[col * elements_per_row + row] : dst[row * elements_per_row + col]) = U(d.m[r][c]);
    }
}
// d = a * b (+ c), accumulated in float in k order, rounded once to D's type.
template <class TD, class TA, class TB, class TC>
inline void simdgroup_multiply_accumulate(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                                          const simdgroup_matrix<TB, 8, 8>& b, const simdgroup_matrix<TC, 8, 8>& c) {
  simdgroup_matrix<TD, 8, 8> r;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      float s = 0.0f;
      for (int k = 0; k < 8; k++) s += float(a.m[i][k]) * float(b.m[k][j]);
      r.m[i][j] = TD(s + float(c.m[i][j]));
    }
  d = r;
}
template <class TD, class TA, class TB>
inline void simdgroup_multiply(simdgroup_matrix<TD, 8, 8>& d, const simdgroup_matrix<TA, 8, 8>& a,
                               const simdgroup_matrix<TB, 8, 8>& b) {
  simdgroup_matrix<TD, 8, 8> r;
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) {
      float s = 0.0f;
      for (int k = 0; k < 8; k++) s += float(a.m[i][k]) * float(b.m[k][j]);
      r.m[i][j] = TD(s);
    }
  d = r;
}

}  // namespace metal

// half literals: 1.5h.
inline metal::half operator"" h(long double v) { return metal::half(float(v)); }
inline metal::half operator"" h(unsigned long long v) { return metal::half(float(v)); }

// MSL's vector and scalar type names are usable without `using namespace metal`.
using metal::bfloat;
using metal::half;
using metal::uchar;
using metal::uint;
using metal::ulong;
using metal::ushort;
#define MSLEMU_GLOBAL_VEC(name) using metal::name##2; using metal::name##3; using metal::name##4;
MSLEMU_GLOBAL_VEC(float)
MSLEMU_GLOBAL_VEC(half)
MSLEMU_GLOBAL_VEC(bfloat)
MSLEMU_GLOBAL_VEC(int)
MSLEMU_GLOBAL_VEC(uint)
MSLEMU_GLOBAL_VEC(short)
MSLEMU_GLOBAL_VEC(ushort)
MSLEMU_GLOBAL_VEC(char)
MSLEMU_GLOBAL_VEC(uchar)
MSLEMU_GLOBAL_VEC(bool)
MSLEMU_GLOBAL_VEC(long)
MSLEMU_GLOBAL_VEC(ulong)
MSLEMU_GLOBAL_VEC(packed_float)
MSLEMU_GLOBAL_VEC(packed_half)
MSLEMU_GLOBAL_VEC(packed_int)
MSLEMU_GLOBAL_VEC(packed_uint)
MSLEMU_GLOBAL_VEC(packed_short)
MSLEMU_GLOBAL_VEC(packed_ushort)
MSLEMU_GLOBAL_VEC(packed_char)
MSLEMU_GLOBAL_VEC(packed_uchar)
#undef MSLEMU_GLOBAL_VEC

// Constants of <metal_math>.
#define MAXFLOAT FLT_MAX
#define HUGE_VALF (__builtin_huge_valf())
#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))
#define HALF_MAX (metal::half::from_bits(0x7bff))
#define HALF_MIN (metal::half::from_bits(0x0400))
#define HALF_EPSILON (metal::half::from_bits(0x1400))
#define M_E_F 2.71828182845904523536028747135266250f
#define M_LOG2E_F 1.44269504088896340735992468100189214f
#define M_LOG10E_F 0.434294481903251827651128918916605082f
#define M_LN2_F 0.693147180559945309417232121458176568f
#define M_LN10_F 2.30258509299404568401799145468436421f
#define M_PI_F 3.14159265358979323846264338327950288f
#define M_PI_2_F 1.57079632679489661923132169163975144f
#define M_PI_4_F 0.785398163397448309615660845819875721f
#define M_1_PI_F 0.318309886183790671537767526745028724f
#define M_2_PI_F 0.636619772367581343075535053490057448f
#define M_2_SQRTPI_F 1.12837916709551257389615890312154517f
#define M_SQRT2_F 1.41421356237309504880168872420969808f
#define M_SQRT1_2_F 0.707106781186547524400844362104849039f

namespace mslemu {
namespace glue {
// Narrows a three-component position attribute to its declared type.
template <class A> inline A attr3(const uint32_t* v) {
  if constexpr (metal::detail::is_vecish<A>) {
    A a;
    for (int i = 0; i < metal::vtraits<A>::n; i++) a.d_[i] = typename metal::vtraits<A>::elem(v[i]);
    return a;
  } else {
    return A(v[0]);
  }
}
}  // namespace glue
}  // namespace mslemu

#define __METAL__ 1
#define __METAL_VERSION__ 310
#define __HAVE_BFLOAT__ 1
#define MSLEMU 1
#define METAL_FUNC inline

// The MSL address-space and function qualifiers. `threadgroup` inside an
// attribute ([[threadgroup(n)]]) is renamed by mslemu's Build before
// compilation, because this macro would otherwise empty it.
#define device
#define constant const
#define threadgroup
#define thread
#define kernel
#define threadgroup_imageblock

#endif
