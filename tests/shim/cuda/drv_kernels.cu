// Kernels with known signatures: their parameter layouts (C ABI: each parameter at its
// alignment) are what tests/shim/test_fatbin.py expects the cubin parser to report, and
// `scale` is what drv_launch.c launches through the driver API.
#include <cuda_runtime.h>

struct Big { double d[5]; int x; };        // 48 bytes, align 8
struct S5 { char c[5]; };                  // 5 bytes, align 1
struct Huge { int v[1100]; };              // 4400 bytes: KPARAM_INFO_V2 in the cubin

__device__ float gvar[37];                 // 148 bytes: cuModuleGetGlobal

__global__ void k1(float* a, int n, double d, char c, float4* v) { if (n) a[0] = d + c + v[0].x; }
__global__ void k2(Big b, short s, long long l) {}
__global__ void k3() {}
extern "C" __global__ void k4(const int* __restrict__ p, unsigned char u, float2 f2, double2 d2) {}
__global__ void __launch_bounds__(256) lb(float* out, S5 s, Huge h)
{
    __shared__ float t[1000];
    t[threadIdx.x] = s.c[0] + h.v[3];
    __syncthreads();
    out[threadIdx.x] = t[threadIdx.x ^ 1];
}
template <typename T> __global__ void tk(T* p, T v, unsigned long long n) { p[n] = v; }
template __global__ void tk<double>(double*, double, unsigned long long);
template __global__ void tk<short>(short*, short, unsigned long long);

extern "C" __global__ void scale(float* x, int n, float a)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = a * x[i] + gvar[i % 37];
}
