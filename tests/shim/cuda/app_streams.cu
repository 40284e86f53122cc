// Two streams: a cross-stream event wait orders them; without it they overlap.
#include <cstdio>
#include <cuda_runtime.h>

#include "check.h"

__global__ void long_kernel(const float *x, float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] * 3.0f + y[i];
}

__global__ void short_kernel(float *z, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) z[i] += 1.0f;
}

static float since(cudaEvent_t base, cudaEvent_t e) {
    float ms = -1.0f;
    cudaEventElapsedTime(&ms, base, e);
    return ms;
}

// One scenario: A (long) on s1, B (short) on s2, with or without s2 waiting on A's event.
static int scenario(const char *label, int wait, cudaStream_t s1, cudaStream_t s2, const float *x,
                    float *y, float *z, size_t n_long, size_t n_short) {
    cudaEvent_t base, a_end, b_begin, b_end;
    CHECK(cudaEventCreate(&base));
    CHECK(cudaEventCreate(&a_end));
    CHECK(cudaEventCreate(&b_begin));
    CHECK(cudaEventCreate(&b_end));
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaEventRecord(base, s1));
    CHECK(cudaStreamWaitEvent(s2, base, 0));  // both streams start from the same point
    long_kernel<<<(unsigned)((n_long + 255) / 256), 256, 0, s1>>>(x, y, n_long);
    CHECK(cudaEventRecord(a_end, s1));
    if (wait) CHECK(cudaStreamWaitEvent(s2, a_end, 0));
    CHECK(cudaEventRecord(b_begin, s2));
    short_kernel<<<(unsigned)((n_short + 255) / 256), 256, 0, s2>>>(z, n_short);
    CHECK(cudaEventRecord(b_end, s2));
    CHECK(cudaDeviceSynchronize());
    printf("RESULT case=%s a_end_ms=%.6f b_begin_ms=%.6f b_end_ms=%.6f\n", label, since(base, a_end),
           since(base, b_begin), since(base, b_end));
    CHECK(cudaEventDestroy(base));
    CHECK(cudaEventDestroy(a_end));
    CHECK(cudaEventDestroy(b_begin));
    CHECK(cudaEventDestroy(b_end));
    return 0;
}

int main(void) {
    const size_t n_long = 64u << 20, n_short = 1024;
    float *x = NULL, *y = NULL, *z = NULL;
    CHECK(cudaMalloc(&x, n_long * sizeof(float)));
    CHECK(cudaMalloc(&y, n_long * sizeof(float)));
    CHECK(cudaMalloc(&z, n_short * sizeof(float)));
    cudaStream_t s1, s2;
    CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
    CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    if (scenario("wait", 1, s1, s2, x, y, z, n_long, n_short)) return 1;
    if (scenario("nowait", 0, s1, s2, x, y, z, n_long, n_short)) return 1;
    // A stream query while its work is pending says cudaErrorNotReady (600), then success.
    long_kernel<<<(unsigned)((n_long + 255) / 256), 256, 0, s1>>>(x, y, n_long);
    printf("RESULT query_pending=%d\n", (int)cudaStreamQuery(s1));
    CHECK(cudaStreamSynchronize(s1));
    printf("RESULT query_done=%d\n", (int)cudaStreamQuery(s1));
    CHECK(cudaStreamDestroy(s1));
    CHECK(cudaStreamDestroy(s2));
    CHECK(cudaFree(x));
    CHECK(cudaFree(y));
    CHECK(cudaFree(z));
    printf("RESULT done=1\n");
    return 0;
}
