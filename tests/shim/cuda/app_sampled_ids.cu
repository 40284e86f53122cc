// A server's sampling kernels, declared as FlashInfer's sampling.cuh declares them (namespace,
// template parameters, parameter lists; the bodies here are simple stand-ins: under emulate no
// kernel body runs). Under emulate the shim writes index 0 into output[b] (and true into valid[b])
// for each block b, so ids a program reads back are in the vocabulary, not the stale bytes the
// buffer held. A kernel of another name with the same parameters is left alone.
#include <cstdint>
#include <cstdio>
#include <cuda_runtime.h>

#include "check.h"

namespace flashinfer {
namespace sampling {

template <uint32_t BLOCK_THREADS, int SCAN_ALGORITHM, int REDUCE_ALGORITHM, uint32_t VEC_SIZE,
          bool DETERMINISTIC, typename DType, typename IdType>
__global__ void TopKTopPSamplingFromProbKernel(DType *probs, IdType *top_k_arr, float *top_p_arr,
                                               IdType *output, bool *valid, IdType *indices,
                                               IdType top_k_val, float top_p_val, uint32_t d,
                                               uint64_t *seed_arr, uint64_t seed_val,
                                               uint64_t *offset_arr, uint64_t offset_val,
                                               uint32_t seed_stride, uint32_t offset_stride) {
    if (threadIdx.x == 0) {
        output[blockIdx.x] = (IdType)(d - 1);
        if (valid != nullptr) valid[blockIdx.x] = true;
    }
}

template <uint32_t BLOCK_THREADS, int SCAN_ALGORITHM, int REDUCE_ALGORITHM, uint32_t VEC_SIZE,
          bool DETERMINISTIC, typename DType, typename IdType>
__global__ void MinPSamplingFromProbKernel(DType *probs, float *min_p_arr, IdType *output,
                                           bool *valid, IdType *indices, float min_p_val, uint32_t d,
                                           uint64_t *seed_arr, uint64_t seed_val,
                                           uint64_t *offset_arr, uint64_t offset_val,
                                           uint32_t seed_stride, uint32_t offset_stride) {
    if (threadIdx.x == 0) output[blockIdx.x] = (IdType)(d - 1);
}

// not a sampling kernel: its output keeps what it held
template <typename DType, typename IdType>
__global__ void TopKRenormKernel(DType *probs, IdType *top_k_arr, float *top_p_arr, IdType *output,
                                 bool *valid, uint32_t d) {
    if (threadIdx.x == 0) output[blockIdx.x] = (IdType)(d - 1);
}

}  // namespace sampling
}  // namespace flashinfer

int main(void) {
    const int batch = 6;
    const uint32_t vocab = 32000;
    float *probs = nullptr;
    int *ids = nullptr, *other = nullptr;
    long *long_ids = nullptr;
    bool *valid = nullptr;
    CHECK(cudaMalloc(&probs, sizeof(float) * batch * vocab));
    CHECK(cudaMalloc(&ids, sizeof(int) * batch));
    CHECK(cudaMalloc(&long_ids, sizeof(long) * batch));
    CHECK(cudaMalloc(&other, sizeof(int) * batch));
    CHECK(cudaMalloc(&valid, batch));
    // stale bytes: 0x7f7f7f7f, far outside any vocabulary
    CHECK(cudaMemset(ids, 0x7f, sizeof(int) * batch));
    CHECK(cudaMemset(long_ids, 0x7f, sizeof(long) * batch));
    CHECK(cudaMemset(other, 0x7f, sizeof(int) * batch));
    CHECK(cudaMemset(valid, 0, batch));

    flashinfer::sampling::TopKTopPSamplingFromProbKernel<1024, 2, 2, 4, false, float, int>
        <<<batch, 1024>>>(probs, nullptr, nullptr, ids, valid, nullptr, 50, 0.9f, vocab, nullptr,
                          1, nullptr, 0, 0, 0);
    flashinfer::sampling::MinPSamplingFromProbKernel<1024, 2, 2, 4, false, float, long>
        <<<batch, 1024>>>(probs, nullptr, long_ids, nullptr, nullptr, 0.1f, vocab, nullptr, 1,
                          nullptr, 0, 0, 0);
    flashinfer::sampling::TopKRenormKernel<float, int>
        <<<batch, 1024>>>(probs, nullptr, nullptr, other, nullptr, vocab);
    CHECK(cudaGetLastError());

    int h_ids[batch], h_other[batch];
    long h_long[batch];
    bool h_valid[batch];
    CHECK(cudaMemcpy(h_ids, ids, sizeof h_ids, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(h_long, long_ids, sizeof h_long, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(h_other, other, sizeof h_other, cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(h_valid, valid, sizeof h_valid, cudaMemcpyDeviceToHost));
    for (int b = 0; b < batch; b++)
        printf("RESULT row=%d id=%d long_id=%ld valid=%d other=%d\n", b, h_ids[b], h_long[b],
               (int)h_valid[b], h_other[b]);
    return 0;
}
