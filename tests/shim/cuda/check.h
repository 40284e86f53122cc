// CHECK(call): a failing CUDA runtime call prints FAIL with its place and error name, and the
// calling function returns 1 (the test programs call it from main).
#ifndef TEST_CUDA_CHECK_H
#define TEST_CUDA_CHECK_H

#include <cstdio>
#include <cuda_runtime.h>

#define CHECK(call)                                                                        \
    do {                                                                                   \
        cudaError_t err_ = (call);                                                         \
        if (err_ != cudaSuccess) {                                                         \
            fprintf(stderr, "FAIL %s:%d %s -> %s\n", __FILE__, __LINE__, #call,            \
                    cudaGetErrorName(err_));                                               \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

#endif
