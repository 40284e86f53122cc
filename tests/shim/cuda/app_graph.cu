// Stream capture of three kernels and a memset into a CUDA graph, replayed ten times.
#include <cstdio>
#include <cuda_runtime.h>

#include "check.h"

__global__ void graph_fill(float *y, float v, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] = v;
}

__global__ void graph_axpy(const float *x, float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] += 2.0f * x[i];
}

__global__ void graph_square(float *y, size_t n) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) y[i] *= y[i];
}

int main(void) {
    const size_t n = 16u << 20;
    const unsigned grid = (unsigned)((n + 255) / 256);
    float *x = NULL, *y = NULL;
    CHECK(cudaMalloc(&x, n * sizeof(float)));
    CHECK(cudaMalloc(&y, n * sizeof(float)));
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));

    cudaGraph_t graph;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    CHECK(cudaStreamIsCapturing(s, &status));
    printf("RESULT capturing=%d\n", status == cudaStreamCaptureStatusActive);
    graph_fill<<<grid, 256, 0, s>>>(y, 1.0f, n);
    graph_axpy<<<grid, 256, 0, s>>>(x, y, n);
    CHECK(cudaMemsetAsync(x, 0, n * sizeof(float), s));
    graph_square<<<grid, 256, 0, s>>>(y, n);
    CHECK(cudaStreamEndCapture(s, &graph));
    size_t nodes = 0;
    CHECK(cudaGraphGetNodes(graph, NULL, &nodes));
    printf("RESULT nodes=%zu\n", nodes);

    cudaGraphExec_t exec;
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CHECK(cudaGraphUpload(exec, s));

    cudaEvent_t e0, e1, e2;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    CHECK(cudaEventCreate(&e2));
    CHECK(cudaEventRecord(e0, s));
    CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaEventRecord(e1, s));
    for (int i = 0; i < 10; i++) CHECK(cudaGraphLaunch(exec, s));
    CHECK(cudaEventRecord(e2, s));
    CHECK(cudaStreamSynchronize(s));
    float one_ms = 0.0f, ten_ms = 0.0f;
    CHECK(cudaEventElapsedTime(&one_ms, e0, e1));
    CHECK(cudaEventElapsedTime(&ten_ms, e1, e2));
    printf("RESULT one_replay_ms=%.6f\n", one_ms);
    printf("RESULT ten_replays_ms=%.6f\n", ten_ms);
    printf("RESULT replays=11\n");

    CHECK(cudaGraphExecDestroy(exec));
    CHECK(cudaGraphDestroy(graph));
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaFree(x));
    CHECK(cudaFree(y));
    printf("RESULT done=1\n");
    return 0;
}
