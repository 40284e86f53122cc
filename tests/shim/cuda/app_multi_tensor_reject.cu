// A multi-tensor launch its decoder must reject, and the run report: a kernel spelled like
// torch's multi_tensor_apply_kernel<TensorListMetadata<1>, UnaryOpFunctor<float, 1, 1, 0>>
// (aten/src/ATen/native/cuda/MultiTensorApply.cuh) whose metadata holds 700 tensors, a size no
// torch build's layout has (770 in the 32 KB layout, 110 in the 4 KB one). It reaches 800 KB:
// under the 1 MB above which an estimated kernel is reported anyway.
// Prints: RESULT tensors=700 elements=N sync_err=E
#include <cstdio>
#include <cuda_runtime.h>

namespace at {
namespace native {
namespace {

constexpr int kTensors = 700, kBlocks = 2240, kChunk = 65536;

template <int n> struct TensorListMetadata {
    const void *addresses[n][kTensors];
    long long numel_for_tensor[kTensors];
    unsigned short block_to_tensor[kBlocks];
    int block_to_chunk[kBlocks];
    int start_tensor_this_launch;
};

template <typename T, int depth, int r_args_depth, int res_arg_index> struct UnaryOpFunctor {
    __device__ void operator()(TensorListMetadata<depth> &tl) const {
        int tensor = tl.block_to_tensor[blockIdx.x];
        long long first = (long long)tl.block_to_chunk[blockIdx.x] * kChunk;
        T *x = (T *)tl.addresses[res_arg_index][tensor];
        for (long long i = first + threadIdx.x; i < tl.numel_for_tensor[tensor] && i < first + kChunk; i += blockDim.x)
            x[i] = x[i] * 2;
    }
};

template <typename T, typename U> __global__ void multi_tensor_apply_kernel(T tl, U callable) {
    callable(tl);
}

}  // namespace
}  // namespace native
}  // namespace at

static at::native::TensorListMetadata<1> tl;

int main() {
    const long long elements = 200000;   // 4 chunks, 800 KB of fp32
    float *x = nullptr;
    cudaMalloc(&x, elements * sizeof(float));
    tl.addresses[0][0] = x;
    tl.numel_for_tensor[0] = elements;
    int blocks = (int)((elements + at::native::kChunk - 1) / at::native::kChunk);
    for (int b = 0; b < blocks; b++) {
        tl.block_to_tensor[b] = 0;
        tl.block_to_chunk[b] = b;
    }
    at::native::multi_tensor_apply_kernel<<<blocks, 512>>>(tl, at::native::UnaryOpFunctor<float, 1, 1, 0>());
    cudaError_t err = cudaDeviceSynchronize();
    printf("RESULT tensors=%d elements=%lld sync_err=%d\n", at::native::kTensors, elements, (int)err);
    cudaFree(x);
    return err == cudaSuccess ? 0 : 1;
}
