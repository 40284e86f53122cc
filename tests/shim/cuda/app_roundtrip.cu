// Data round trips through small (host-backed) device allocations: what a program writes to
// the GPU and copies back must survive, even though no kernel runs.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cuda_runtime.h>

#include "check.h"

static int same(const unsigned char *a, const unsigned char *b, size_t n) {
    return memcmp(a, b, n) == 0;
}

int main(void) {
    const size_t n = 64 << 10;  // well under the backed threshold (4 MiB)
    unsigned char *pattern = (unsigned char *)malloc(n);
    unsigned char *back = (unsigned char *)malloc(n);
    for (size_t i = 0; i < n; i++) pattern[i] = (unsigned char)(i * 131u + 7u);

    int count = 0;
    CHECK(cudaGetDeviceCount(&count));
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("RESULT device_count=%d\n", count);
    printf("RESULT device_name=%s\n", prop.name);
    printf("RESULT total_global_mem=%zu\n", prop.totalGlobalMem);
    printf("RESULT cc=%d.%d\n", prop.major, prop.minor);
    printf("RESULT sm_count=%d\n", prop.multiProcessorCount);

    // H2D -> D2D -> D2H keeps the pattern.
    unsigned char *d_a = NULL, *d_b = NULL;
    CHECK(cudaMalloc(&d_a, n));
    CHECK(cudaMalloc(&d_b, n));
    CHECK(cudaMemcpy(d_a, pattern, n, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(d_b, d_a, n, cudaMemcpyDeviceToDevice));
    memset(back, 0, n);
    CHECK(cudaMemcpy(back, d_b, n, cudaMemcpyDeviceToHost));
    printf("RESULT roundtrip_ok=%d\n", same(pattern, back, n));

    // cudaMemcpyDefault infers the direction from the pointers.
    memset(back, 0, n);
    CHECK(cudaMemcpy(back, d_a, n, cudaMemcpyDefault));
    printf("RESULT default_kind_ok=%d\n", same(pattern, back, n));

    // cudaMemset then D2H reads the set byte everywhere.
    CHECK(cudaMemset(d_b, 0x5A, n));
    CHECK(cudaMemcpy(back, d_b, n, cudaMemcpyDeviceToHost));
    int memset_ok = 1;
    for (size_t i = 0; i < n; i++) memset_ok &= back[i] == 0x5A;
    printf("RESULT memset_ok=%d\n", memset_ok);

    // Async copies on a stream through pinned memory, completed by a stream sync.
    cudaStream_t s;
    CHECK(cudaStreamCreate(&s));
    unsigned char *pinned = NULL;
    CHECK(cudaMallocHost(&pinned, n));
    memset(pinned, 0, n);
    CHECK(cudaMemcpyAsync(d_b, pattern, n, cudaMemcpyHostToDevice, s));
    CHECK(cudaMemsetAsync(d_a, 0, n, s));
    CHECK(cudaMemcpyAsync(d_a, d_b, n / 2, cudaMemcpyDeviceToDevice, s));
    CHECK(cudaMemcpyAsync(pinned, d_a, n, cudaMemcpyDeviceToHost, s));
    CHECK(cudaStreamSynchronize(s));
    int async_ok = same(pinned, pattern, n / 2);
    for (size_t i = n / 2; i < n; i++) async_ok &= pinned[i] == 0;
    printf("RESULT async_ok=%d\n", async_ok);

    // Pointer attributes tell device memory from pinned host memory.
    cudaPointerAttributes attr;
    CHECK(cudaPointerGetAttributes(&attr, d_a + 100));
    printf("RESULT attr_device_type=%d\n", (int)attr.type);
    CHECK(cudaPointerGetAttributes(&attr, pinned));
    printf("RESULT attr_host_type=%d\n", (int)attr.type);

    CHECK(cudaFreeHost(pinned));
    CHECK(cudaStreamDestroy(s));
    CHECK(cudaFree(d_a));
    CHECK(cudaFree(d_b));
    CHECK(cudaDeviceSynchronize());
    free(pattern);
    free(back);
    printf("RESULT done=1\n");
    return 0;
}
