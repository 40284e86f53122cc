// Allocate fixed-size chunks until the device is full: the failing allocation, the error code
// and cudaMemGetInfo must follow the chosen GPU's capacity. Usage: app_oom CHUNK_BYTES
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

#include "check.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s CHUNK_BYTES\n", argv[0]);
        return 2;
    }
    const size_t chunk = strtoull(argv[1], NULL, 10);
    size_t free0 = 0, total = 0;
    CHECK(cudaMemGetInfo(&free0, &total));
    printf("RESULT free0=%zu total=%zu\n", free0, total);

    void *ptrs[256];
    int ok = 0;
    cudaError_t err = cudaSuccess;
    while (ok < 256) {
        err = cudaMalloc(&ptrs[ok], chunk);
        if (err != cudaSuccess) break;
        size_t free_now = 0, total_now = 0;
        CHECK(cudaMemGetInfo(&free_now, &total_now));
        ok++;
        printf("RESULT alloc=%d free=%zu total=%zu\n", ok - 1, free_now, total_now);
    }
    printf("RESULT first_fail=%d err=%d err_name=%s\n", ok, (int)err, cudaGetErrorName(err));
    // The failure is sticky in cudaGetLastError once, then cleared; the context still works.
    printf("RESULT last_error=%d\n", (int)cudaGetLastError());
    printf("RESULT last_error_after=%d\n", (int)cudaGetLastError());
    void *small = NULL;
    printf("RESULT small_after_fail=%d\n", (int)cudaMalloc(&small, 1 << 20));
    if (small) CHECK(cudaFree(small));
    for (int i = 0; i < ok; i++) CHECK(cudaFree(ptrs[i]));
    size_t free_end = 0;
    CHECK(cudaMemGetInfo(&free_end, &total));
    printf("RESULT free_end=%zu\n", free_end);
    printf("RESULT done=1\n");
    return 0;
}
