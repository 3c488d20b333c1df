// A host stand-in for what NVRTC predefines, so that g++ -fsyntax-only can
// check the translated source where no CUDA toolkit is installed
// (translate_test.go). Nothing here runs.
#define __device__
#define __global__
#define __forceinline__ inline
#define __noinline__
#define __shared__
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(n)
#define asm(...) ((void)0)
struct minerva_dim3 { unsigned x, y, z; };
extern minerva_dim3 threadIdx, blockIdx, blockDim, gridDim;
float __int_as_float(int);
float __uint_as_float(unsigned);
unsigned __float_as_uint(float);
void __syncthreads();
void __syncwarp();
void __threadfence();
unsigned __activemask();
int __ffs(int);
int __popc(unsigned);
int __clz(unsigned);
unsigned __brev(unsigned);
unsigned __umulhi(unsigned, unsigned);
int __mulhi(int, int);
template <class T> T __shfl_sync(unsigned, T, int);
template <class T> T __shfl_xor_sync(unsigned, T, int);
template <class T> T __shfl_down_sync(unsigned, T, unsigned);
template <class T> T __shfl_up_sync(unsigned, T, unsigned);
int __all_sync(unsigned, int);
int __any_sync(unsigned, int);
unsigned __ballot_sync(unsigned, int);
template <class T> T atomicAdd(T*, T);
template <class T> T atomicSub(T*, T);
template <class T> T atomicMax(T*, T);
template <class T> T atomicMin(T*, T);
template <class T> T atomicAnd(T*, T);
template <class T> T atomicOr(T*, T);
template <class T> T atomicXor(T*, T);
template <class T> T atomicExch(T*, T);
template <class T> T atomicCAS(T*, T, T);
float expf(float);
float exp2f(float);
float exp10f(float);
float logf(float);
float log2f(float);
float log10f(float);
float sqrtf(float);
float rsqrtf(float);
float sinf(float);
float cosf(float);
float tanf(float);
float asinf(float);
float acosf(float);
float atanf(float);
float sinhf(float);
float coshf(float);
float tanhf(float);
float sinpif(float);
float cospif(float);
float floorf(float);
float ceilf(float);
float roundf(float);
float rintf(float);
float truncf(float);
float fabsf(float);
float fminf(float, float);
float fmaxf(float, float);
float powf(float, float);
float fmodf(float, float);
float atan2f(float, float);
float copysignf(float, float);
float fdimf(float, float);
float fmaf(float, float, float);
