// Many long kernels then cudaDeviceSynchronize: the program's clocks advance by the predicted
// GPU time although the host never waits that long. Usage: app_sleep_sync LAUNCHES
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <sys/time.h>
#include <cuda_runtime.h>

#include "check.h"

__global__ void stream_through(const float *x, float *y, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = x[i] + 1.0f;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double real_s(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec + tv.tv_usec * 1e-6;
}

int main(int argc, char **argv) {
    const int launches = argc > 1 ? atoi(argv[1]) : 3000;
    const size_t n = 4ull << 30;  // 16 GiB per buffer: ~10 ms per launch at HBM3 speed
    float *x = NULL, *y = NULL;
    CHECK(cudaMalloc(&x, n * sizeof(float)));
    CHECK(cudaMalloc(&y, n * sizeof(float)));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    CHECK(cudaDeviceSynchronize());

    double m0 = mono_s(), r0 = real_s();
    CHECK(cudaEventRecord(e0));
    for (int i = 0; i < launches; i++) stream_through<<<132 * 16, 256>>>(x, y, n);
    CHECK(cudaEventRecord(e1));
    double m_issued = mono_s();
    CHECK(cudaDeviceSynchronize());
    double m1 = mono_s(), r1 = real_s();
    float gpu_ms = 0.0f;
    CHECK(cudaEventElapsedTime(&gpu_ms, e0, e1));
    printf("RESULT launches=%d\n", launches);
    printf("RESULT gpu_ms=%.3f\n", gpu_ms);
    printf("RESULT issue_s=%.6f\n", m_issued - m0);
    printf("RESULT mono_delta_s=%.6f\n", m1 - m0);
    printf("RESULT real_delta_s=%.6f\n", r1 - r0);
    printf("RESULT time_after_s=%ld\n", (long)time(NULL));
    printf("RESULT time_before_s=%ld\n", (long)r0);
    CHECK(cudaFree(x));
    CHECK(cudaFree(y));
    printf("RESULT done=1\n");
    return 0;
}
