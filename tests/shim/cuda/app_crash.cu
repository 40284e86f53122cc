// A host dereference of a large device allocation (unbacked on the emulator) must crash loudly
// and name the allocation, and the records written before the crash must survive.
#include <cstdio>
#include <cuda_runtime.h>

#include "check.h"

__global__ void before_crash(float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = 1.0f;
}

int main(void) {
    const size_t n = 256u << 20;  // 1 GiB of floats
    float *d = NULL;
    CHECK(cudaMalloc(&d, n * sizeof(float)));
    before_crash<<<(unsigned)((n + 255) / 256), 256>>>(d, n);
    CHECK(cudaDeviceSynchronize());
    printf("RESULT ptr=%p bytes=%zu\n", (void *)d, n * sizeof(float));
    fflush(stdout);
    volatile float *p = d + 1000;  // a host read of device memory: a bug in the program
    float v = *p;
    printf("RESULT survived=%f\n", v);
    return 0;
}
