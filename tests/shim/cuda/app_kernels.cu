// Memory-bound kernels of growing size, timed with CUDA events: the predicted times must grow
// with the work and never beat the memory roofline of the chosen GPU.
#include <cstdio>
#include <cuda_runtime.h>

#include "check.h"

// y = a * x + y: reads x and y, writes y (12 bytes per element).
__global__ void scale_add(const float *x, float *y, float a, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + y[i];
}

// One partial sum per block: reads x (4 bytes per element).
template <int BLOCK>
__global__ void block_reduce(const float *x, float *partial, size_t n) {
    __shared__ float buf[BLOCK];
    size_t i = blockIdx.x * (size_t)BLOCK + threadIdx.x;
    buf[threadIdx.x] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int s = BLOCK / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = buf[0];
}

int main(void) {
    const size_t sizes[] = {1u << 20, 4u << 20, 16u << 20, 64u << 20};
    const int block = 256;
    float *x = NULL, *y = NULL, *partial = NULL;
    const size_t max_n = sizes[3];
    CHECK(cudaMalloc(&x, max_n * sizeof(float)));
    CHECK(cudaMalloc(&y, max_n * sizeof(float)));
    CHECK(cudaMalloc(&partial, (max_n / block) * sizeof(float)));
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));

    // Warm-up, as on a real GPU: a kernel's first launch pays its one-time loading on the CPU.
    scale_add<<<1, block>>>(x, y, 2.0f, block);
    block_reduce<256><<<1, block>>>(x, partial, block);
    CHECK(cudaDeviceSynchronize());

    for (int i = 0; i < 4; i++) {
        size_t n = sizes[i];
        unsigned grid = (unsigned)((n + block - 1) / block);
        float ms = 0.0f;

        CHECK(cudaEventRecord(start));
        scale_add<<<grid, block>>>(x, y, 2.0f, n);
        CHECK(cudaGetLastError());
        CHECK(cudaEventRecord(stop));
        CHECK(cudaEventSynchronize(stop));
        CHECK(cudaEventElapsedTime(&ms, start, stop));
        printf("RESULT kernel=scale_add n=%zu grid=%u block=%d bytes=%zu ms=%.6f\n", n, grid, block,
               n * 12, ms);

        CHECK(cudaEventRecord(start));
        block_reduce<256><<<grid, block>>>(x, partial, n);
        CHECK(cudaGetLastError());
        CHECK(cudaEventRecord(stop));
        CHECK(cudaEventSynchronize(stop));
        CHECK(cudaEventElapsedTime(&ms, start, stop));
        printf("RESULT kernel=block_reduce n=%zu grid=%u block=%d bytes=%zu ms=%.6f\n", n, grid,
               block, n * 4, ms);
    }
    // cudaEventQuery on a completed event reports success, not cudaErrorNotReady.
    printf("RESULT query_after_sync=%d\n", (int)cudaEventQuery(stop));
    CHECK(cudaEventDestroy(start));
    CHECK(cudaEventDestroy(stop));
    CHECK(cudaFree(x));
    CHECK(cudaFree(y));
    CHECK(cudaFree(partial));
    printf("RESULT done=1\n");
    return 0;
}
