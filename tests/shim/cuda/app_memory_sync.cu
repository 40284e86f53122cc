// How long memory calls block the host, against the runtime's "API synchronization behavior":
// each case issues a long kernel first and reports how much virtual time the call took
// (host_ms) next to the kernel's own duration (kernel_ms, from events).
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <cuda_runtime.h>

#include "check.h"

__global__ void stream_copy(float *dst, const float *src, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) dst[i] = src[i];
}

static double now_ms(void) {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static const size_t N = (size_t)1 << 32; // 16 GiB of floats per buffer: a kernel of ~20 ms on an H100
static float *big_a, *big_b;

static void long_kernel(cudaStream_t s) {
    stream_copy<<<(unsigned)(N / 256), 256, 0, s>>>(big_b, big_a, N);
}

#define TIMED_CASE(label, s, call)                                                         \
    do {                                                                                   \
        CHECK(cudaDeviceSynchronize());                                                    \
        double t0_ = now_ms();                                                             \
        long_kernel(s);                                                                    \
        CHECK(call);                                                                       \
        printf("RESULT case=%s host_ms=%.6f\n", label, now_ms() - t0_);                    \
    } while (0)

int main(void) {
    CHECK(cudaMalloc(&big_a, N * sizeof(float)));
    CHECK(cudaMalloc(&big_b, N * sizeof(float)));
    float *small = NULL, *small2 = NULL, *pinned = NULL;
    CHECK(cudaMalloc(&small, 4096));
    CHECK(cudaMalloc(&small2, 4096));
    CHECK(cudaMallocHost(&pinned, 4096));
    float *pageable = (float *)malloc(4096), *pageable2 = (float *)malloc(4096);
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    // the kernel's own duration
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    CHECK(cudaEventRecord(e0, 0));
    long_kernel(0);
    CHECK(cudaEventRecord(e1, 0));
    CHECK(cudaEventSynchronize(e1));
    float kernel_ms = 0;
    CHECK(cudaEventElapsedTime(&kernel_ms, e0, e1));
    printf("RESULT kernel_ms=%.6f kernel_bytes=%zu\n", kernel_ms, 2 * N * sizeof(float));

    // asynchronous to the host
    TIMED_CASE("memset_device", 0, cudaMemset(small, 0, 4096));
    TIMED_CASE("memcpy_d2d", 0, cudaMemcpy(small2, small, 4096, cudaMemcpyDeviceToDevice));
    TIMED_CASE("memcpy_h2d_async_pinned", s, cudaMemcpyAsync(small, pinned, 4096, cudaMemcpyHostToDevice, s));
    // synchronous: the call returns once the stream's earlier work and the copy are done
    TIMED_CASE("memcpy_d2h", 0, cudaMemcpy(pageable, small, 4096, cudaMemcpyDeviceToHost));
    TIMED_CASE("memcpy_h2d_pageable", 0, cudaMemcpy(small, pageable, 4096, cudaMemcpyHostToDevice));
    TIMED_CASE("memcpy_h2h", 0, cudaMemcpy(pageable2, pageable, 4096, cudaMemcpyHostToHost));
    TIMED_CASE("memset_pinned", 0, cudaMemset(pinned, 0, 4096));
    TIMED_CASE("memcpy_d2h_async_pageable", s, cudaMemcpyAsync(pageable, small, 4096, cudaMemcpyDeviceToHost, s));
    float *victim = NULL;
    CHECK(cudaMalloc(&victim, 4096));
    TIMED_CASE("free_waits_for_device", s, cudaFree(victim));

    // stream-ordered frees: the memory is the pool's until the stream reaches the free
    size_t free_bytes = 0, total_bytes = 0;
    CHECK(cudaDeviceSynchronize());
    CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    size_t chunk = free_bytes / 10 * 6;
    void *ordered = NULL, *reuse = NULL, *plain = NULL;
    CHECK(cudaMallocAsync(&ordered, chunk, s));
    long_kernel(s);
    CHECK(cudaFreeAsync(ordered, s));
    int before_reached = cudaMalloc(&plain, chunk);
    cudaGetLastError();
    int same_stream = cudaMallocAsync(&reuse, chunk, s);
    CHECK(cudaFreeAsync(reuse, s));
    int double_free = cudaFreeAsync(reuse, s);
    cudaGetLastError();
    CHECK(cudaStreamSynchronize(s));
    int after_reached = cudaMalloc(&plain, chunk);
    printf("RESULT ordered_before=%d ordered_same_stream=%d ordered_double_free=%d ordered_after=%d\n",
           before_reached, same_stream, double_free, after_reached);
    if (after_reached == cudaSuccess)
        CHECK(cudaFree(plain));

    // peer copies name their devices
    int devices = 0;
    CHECK(cudaGetDeviceCount(&devices));
    if (devices >= 2) {
        float *on1 = NULL;
        CHECK(cudaSetDevice(1));
        CHECK(cudaMalloc(&on1, 1 << 20));
        CHECK(cudaSetDevice(0));
        CHECK(cudaDeviceSynchronize());
        CHECK(cudaEventRecord(e0, 0));
        double t0 = now_ms();
        long_kernel(0);
        CHECK(cudaMemcpyPeer(on1, 1, small, 0, 4096));
        double host_ms = now_ms() - t0;
        CHECK(cudaEventRecord(e1, 0));
        CHECK(cudaEventSynchronize(e1));
        float span_ms = 0;
        CHECK(cudaEventElapsedTime(&span_ms, e0, e1));
        int bad_device = cudaMemcpyPeer(on1, 7, small, 0, 4096);
        printf("RESULT case=memcpy_peer host_ms=%.6f span_ms=%.6f bad_device=%d\n", host_ms, span_ms, bad_device);
    }
    return 0;
}
