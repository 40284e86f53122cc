/* cuBLAS (cublas_api.h, _v2 exported names): handles and modes, host<->device vector and
 * matrix copies, and the routines torch calls, each recorded as one op on the handle's
 * stream: GEMMs as TW_OP_GEMM (m, n, k, batch, lda, ldb, ldc), level-1/2 and batched
 * factorisations as TW_OP_LIBRARY / TW_OP_SOLVER with their shapes. Nothing is computed. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_api.h>

#include "dtype_map.h"
#include "tw_core.h"

#define TW_CUBLAS_MAGIC 0x73616c6275637774ULL /* "twcublas" */
#define TW_CUBLAS_VERSION (CUBLAS_VER_MAJOR * 10000 + CUBLAS_VER_MINOR * 100 + CUBLAS_VER_PATCH)

struct cublasContext {
    uint64_t magic;
    cudaStream_t stream;          /* as the program gave it; resolved at each op */
    void *workspace;
    size_t workspace_bytes;
    cublasMath_t math_mode;
    cublasPointerMode_t pointer_mode;
    cublasAtomicsMode_t atomics_mode;
    int sm_count_target;
    int device;
};

static bool handle_ok(cublasHandle_t h) { return h && h->magic == TW_CUBLAS_MAGIC; }

/* Interned once per call site: ids are stable for the process, so a benign race stores
 * the same value twice. */
#define NAME_ID(str)                                                                   \
    ({                                                                                 \
        static _Atomic uint32_t id_;                                                   \
        uint32_t v_ = atomic_load_explicit(&id_, memory_order_relaxed);                \
        if (TW_UNLIKELY(!v_)) {                                                        \
            v_ = tw_name_intern(str);                                                  \
            atomic_store_explicit(&id_, v_, memory_order_relaxed);                     \
        }                                                                              \
        v_;                                                                            \
    })

/* ------------------------------------------------------------------ handle and modes */

TW_EXPORT cublasStatus_t cublasCreate_v2(cublasHandle_t *handle)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    struct cublasContext *h = calloc(1, sizeof(*h));
    if (!h)
        return CUBLAS_STATUS_ALLOC_FAILED;
    h->magic = TW_CUBLAS_MAGIC;
    h->math_mode = CUBLAS_DEFAULT_MATH;
    h->pointer_mode = CUBLAS_POINTER_MODE_HOST;
    h->atomics_mode = CUBLAS_ATOMICS_NOT_ALLOWED;
    h->device = tw_device_current();
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasDestroy_v2(cublasHandle_t handle)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->magic = 0;
    free(handle);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasGetVersion_v2(cublasHandle_t handle, int *version)
{
    if (!version)
        return CUBLAS_STATUS_INVALID_VALUE;
    *version = TW_CUBLAS_VERSION;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value)
{
    if (!value)
        return CUBLAS_STATUS_INVALID_VALUE;
    switch (type) {
    case MAJOR_VERSION: *value = CUBLAS_VER_MAJOR; return CUBLAS_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUBLAS_VER_MINOR; return CUBLAS_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUBLAS_VER_PATCH; return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
}

TW_EXPORT size_t cublasGetCudartVersion(void) { return CUDART_VERSION; }

TW_EXPORT const char *cublasGetStatusName(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

TW_EXPORT const char *cublasGetStatusString(cublasStatus_t status)
{
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    case CUBLAS_STATUS_LICENSE_ERROR: return "error detected trying to check the license";
    default: return "unknown error";
    }
}

TW_EXPORT cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasGetStream_v2(cublasHandle_t handle, cudaStream_t *stream)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!stream)
        return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t handle, void *workspace, size_t bytes)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !workspace)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->workspace = workspace;
    handle->workspace_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->math_mode;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasSetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t mode)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasGetPointerMode_v2(cublasHandle_t handle, cublasPointerMode_t *mode)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasSetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t mode)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->atomics_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasGetAtomicsMode(cublasHandle_t handle, cublasAtomicsMode_t *mode)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!mode)
        return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->atomics_mode;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasSetSmCountTarget(cublasHandle_t handle, int sm_count_target)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (sm_count_target < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    handle->sm_count_target = sm_count_target;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasGetSmCountTarget(cublasHandle_t handle, int *sm_count_target)
{
    if (!handle_ok(handle))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!sm_count_target)
        return CUBLAS_STATUS_INVALID_VALUE;
    *sm_count_target = handle->sm_count_target;
    return CUBLAS_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ copies */

/* Strided element copy, real where both sides are host-addressable (tw_mem_copy_data). */
static void copy_strided(void *dst, int64_t dst_stride, const void *src, int64_t src_stride,
                         int64_t count, int64_t elem_bytes)
{
    if (dst_stride == 1 && src_stride == 1) {
        tw_mem_copy_data(dst, src, (uint64_t)(count * elem_bytes));
        return;
    }
    for (int64_t i = 0; i < count; i++)
        tw_mem_copy_data((char *)dst + i * dst_stride * elem_bytes,
                         (const char *)src + i * src_stride * elem_bytes, (uint64_t)elem_bytes);
}

static void copy_matrix(void *dst, int64_t ldd, const void *src, int64_t lds, int64_t rows,
                        int64_t cols, int64_t elem_bytes)
{
    if (rows == ldd && rows == lds) {
        tw_mem_copy_data(dst, src, (uint64_t)(rows * cols * elem_bytes));
        return;
    }
    for (int64_t c = 0; c < cols; c++)
        tw_mem_copy_data((char *)dst + c * ldd * elem_bytes,
                         (const char *)src + c * lds * elem_bytes, (uint64_t)(rows * elem_bytes));
}

/* The copy as an op on the stream; synchronous variants then wait for it like cudaMemcpy. */
static void submit_copy(uint32_t name_id, void *stream, void *dst, const void *src,
                        uint64_t bytes, bool synchronous)
{
    tw_stream *s = tw_stream_resolve(stream);
    tw_desc d = {0};
    d.kind = TW_OP_MEMCPY;
    d.device = (uint32_t)tw_stream_device(s);
    d.dims[0] = tw_mem_copy_kind(dst, src);
    d.bytes = bytes;
    d.name_id = name_id;
    tw_submit(s, &d);
    if (synchronous)
        tw_stream_synchronize(s);
}

static cublasStatus_t vector_copy(uint32_t name_id, int64_t n, int64_t elem, const void *x,
                                  int64_t incx, void *y, int64_t incy, void *stream, bool sync)
{
    if (n < 0 || elem <= 0 || incx == 0 || incy == 0 || !x || !y)
        return CUBLAS_STATUS_INVALID_VALUE;
    copy_strided(y, incy, x, incx, n, elem);
    submit_copy(name_id, stream, y, x, (uint64_t)(n * elem), sync);
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t matrix_copy(uint32_t name_id, int64_t rows, int64_t cols, int64_t elem,
                                  const void *a, int64_t lda, void *b, int64_t ldb, void *stream,
                                  bool sync)
{
    if (rows < 0 || cols < 0 || elem <= 0 || lda < rows || ldb < rows || lda <= 0 || ldb <= 0 ||
        !a || !b)
        return CUBLAS_STATUS_INVALID_VALUE;
    copy_matrix(b, ldb, a, lda, rows, cols, elem);
    submit_copy(name_id, stream, b, a, (uint64_t)(rows * cols * elem), sync);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasSetVector(int n, int elemSize, const void *x, int incx, void *y, int incy)
{
    return vector_copy(NAME_ID("cublasSetVector"), n, elemSize, x, incx, y, incy, NULL, true);
}

TW_EXPORT cublasStatus_t cublasGetVector(int n, int elemSize, const void *x, int incx, void *y, int incy)
{
    return vector_copy(NAME_ID("cublasGetVector"), n, elemSize, x, incx, y, incy, NULL, true);
}

TW_EXPORT cublasStatus_t cublasSetVectorAsync(int n, int elemSize, const void *x, int incx, void *y,
                                              int incy, cudaStream_t stream)
{
    return vector_copy(NAME_ID("cublasSetVectorAsync"), n, elemSize, x, incx, y, incy, stream, false);
}

TW_EXPORT cublasStatus_t cublasGetVectorAsync(int n, int elemSize, const void *x, int incx, void *y,
                                              int incy, cudaStream_t stream)
{
    return vector_copy(NAME_ID("cublasGetVectorAsync"), n, elemSize, x, incx, y, incy, stream, false);
}

TW_EXPORT cublasStatus_t cublasSetMatrix(int rows, int cols, int elemSize, const void *A, int lda,
                                         void *B, int ldb)
{
    return matrix_copy(NAME_ID("cublasSetMatrix"), rows, cols, elemSize, A, lda, B, ldb, NULL, true);
}

TW_EXPORT cublasStatus_t cublasGetMatrix(int rows, int cols, int elemSize, const void *A, int lda,
                                         void *B, int ldb)
{
    return matrix_copy(NAME_ID("cublasGetMatrix"), rows, cols, elemSize, A, lda, B, ldb, NULL, true);
}

TW_EXPORT cublasStatus_t cublasSetMatrixAsync(int rows, int cols, int elemSize, const void *A, int lda,
                                              void *B, int ldb, cudaStream_t stream)
{
    return matrix_copy(NAME_ID("cublasSetMatrixAsync"), rows, cols, elemSize, A, lda, B, ldb, stream,
                       false);
}

TW_EXPORT cublasStatus_t cublasGetMatrixAsync(int rows, int cols, int elemSize, const void *A, int lda,
                                              void *B, int ldb, cudaStream_t stream)
{
    return matrix_copy(NAME_ID("cublasGetMatrixAsync"), rows, cols, elemSize, A, lda, B, ldb, stream,
                       false);
}

/* ------------------------------------------------------------------ GEMM family */

typedef struct gemm_shape {
    int transa, transb;       /* cublasOperation_t */
    int64_t m, n, k, batch, lda, ldb, ldc;
    uint32_t dt_a, dt_b, dt_c, dt_compute; /* enum tw_dtype */
    bool complex;
} gemm_shape;

/* A float compute type runs on TF32 tensor cores when the handle's math mode allows it. */
static uint32_t effective_compute(cublasHandle_t h, uint32_t dt_compute)
{
    if (dt_compute == TW_DT_F32 && (h->math_mode & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH)
        return TW_DT_TF32;
    return dt_compute;
}

static cublasStatus_t submit_gemm(cublasHandle_t h, uint32_t name_id, const gemm_shape *g)
{
    if (!handle_ok(h))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (g->m < 0 || g->n < 0 || g->k < 0 || g->batch < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (g->m == 0 || g->n == 0 || g->batch == 0)
        return CUBLAS_STATUS_SUCCESS; /* cuBLAS launches nothing */
    tw_stream *s = tw_stream_resolve(h->stream);
    tw_desc d = {0};
    d.kind = TW_OP_GEMM;
    d.device = (uint32_t)tw_stream_device(s);
    d.dtype_a = g->dt_a;
    d.dtype_b = g->dt_b;
    d.dtype_out = g->dt_c;
    d.dtype_compute = effective_compute(h, g->dt_compute);
    if (g->transa != CUBLAS_OP_N)
        d.flags |= TW_FLAG_TRANS_A;
    if (g->transb != CUBLAS_OP_N)
        d.flags |= TW_FLAG_TRANS_B;
    d.dims[0] = g->m;
    d.dims[1] = g->n;
    d.dims[2] = g->k;
    d.dims[3] = g->batch;
    d.dims[4] = g->lda;
    d.dims[5] = g->ldb;
    d.dims[6] = g->ldc;
    uint64_t mn = (uint64_t)g->m * (uint64_t)g->n, mk = (uint64_t)g->m * (uint64_t)g->k,
             kn = (uint64_t)g->k * (uint64_t)g->n, batch = (uint64_t)g->batch;
    /* a complex multiply-add is 4 real multiplies and 4 adds */
    d.flops = (g->complex ? 8u : 2u) * mn * (uint64_t)g->k * batch;
    d.bytes = (mk * tw_dtype_bytes(g->dt_a) + kn * tw_dtype_bytes(g->dt_b) +
               mn * tw_dtype_bytes(g->dt_c)) * batch;
    d.name_id = name_id;
    tw_submit(s, &d);
    return CUBLAS_STATUS_SUCCESS;
}

#define SHAPE(ta, tb, M, N, K, B, LDA, LDB, LDC, DA, DB, DC, DCOMP, CPLX)                       \
    (gemm_shape){.transa = (int)(ta), .transb = (int)(tb), .m = (M), .n = (N), .k = (K),       \
                 .batch = (B), .lda = (LDA), .ldb = (LDB), .ldc = (LDC), .dt_a = (DA),         \
                 .dt_b = (DB), .dt_c = (DC), .dt_compute = (DCOMP), .complex = (CPLX)}

/* Typed S/D/C/Z/H gemm: plain, strided-batched and pointer-array batched, 32- and 64-bit. */
#define DEF_TYPED_GEMM(P, T, IT, SUFFIX, DT, CPLX)                                              \
    TW_EXPORT cublasStatus_t cublas##P##gemm##SUFFIX(                                           \
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, IT m, IT n, IT k,         \
        const T *alpha, const T *A, IT lda, const T *B, IT ldb, const T *beta, T *C, IT ldc)    \
    {                                                                                           \
        gemm_shape g = SHAPE(ta, tb, m, n, k, 1, lda, ldb, ldc, DT, DT, DT, DT, CPLX);          \
        return submit_gemm(h, NAME_ID("cublas" #P "gemm" #SUFFIX), &g);                         \
    }

#define DEF_TYPED_GEMM_SB(P, T, IT, SUFFIX, DT, CPLX)                                           \
    TW_EXPORT cublasStatus_t cublas##P##gemmStridedBatched##SUFFIX(                             \
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, IT m, IT n, IT k,         \
        const T *alpha, const T *A, IT lda, long long sa, const T *B, IT ldb, long long sb,     \
        const T *beta, T *C, IT ldc, long long sc, IT batch)                                    \
    {                                                                                           \
        gemm_shape g = SHAPE(ta, tb, m, n, k, batch, lda, ldb, ldc, DT, DT, DT, DT, CPLX);      \
        return submit_gemm(h, NAME_ID("cublas" #P "gemmStridedBatched" #SUFFIX), &g);           \
    }

#define DEF_TYPED_GEMM_B(P, T, IT, SUFFIX, DT, CPLX)                                            \
    TW_EXPORT cublasStatus_t cublas##P##gemmBatched##SUFFIX(                                    \
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, IT m, IT n, IT k,         \
        const T *alpha, const T *const A[], IT lda, const T *const B[], IT ldb, const T *beta,  \
        T *const C[], IT ldc, IT batch)                                                         \
    {                                                                                           \
        gemm_shape g = SHAPE(ta, tb, m, n, k, batch, lda, ldb, ldc, DT, DT, DT, DT, CPLX);      \
        return submit_gemm(h, NAME_ID("cublas" #P "gemmBatched" #SUFFIX), &g);                  \
    }

#define DEF_ALL_TYPED(P, T, DT, CPLX, PLAIN)                                                    \
    DEF_TYPED_GEMM(P, T, int, PLAIN, DT, CPLX)                                                  \
    DEF_TYPED_GEMM(P, T, int64_t, PLAIN##_64, DT, CPLX)                                         \
    DEF_TYPED_GEMM_SB(P, T, int, , DT, CPLX)                                                    \
    DEF_TYPED_GEMM_SB(P, T, int64_t, _64, DT, CPLX)                                             \
    DEF_TYPED_GEMM_B(P, T, int, , DT, CPLX)                                                     \
    DEF_TYPED_GEMM_B(P, T, int64_t, _64, DT, CPLX)

DEF_ALL_TYPED(S, float, TW_DT_F32, false, _v2)
DEF_ALL_TYPED(D, double, TW_DT_F64, false, _v2)
DEF_ALL_TYPED(C, cuComplex, TW_DT_C64, true, _v2)
DEF_ALL_TYPED(Z, cuDoubleComplex, TW_DT_C128, true, _v2)
/* cublas_api.h declares the H routines for C++ only (__half); the ABI passes pointers. */
typedef struct tw_half { unsigned short bits; } tw_half;
DEF_ALL_TYPED(H, tw_half, TW_DT_F16, false, )

static bool is_complex_type(cudaDataType t)
{
    return t == CUDA_C_32F || t == CUDA_C_64F || t == CUDA_C_16F || t == CUDA_C_16BF;
}

#define DEF_GEMM_EX(IT, SUFFIX)                                                                 \
    TW_EXPORT cublasStatus_t cublasGemmEx##SUFFIX(                                              \
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, IT m, IT n, IT k,         \
        const void *alpha, const void *A, cudaDataType at, IT lda, const void *B,               \
        cudaDataType bt, IT ldb, const void *beta, void *C, cudaDataType ct, IT ldc,            \
        cublasComputeType_t compute, cublasGemmAlgo_t algo)                                     \
    {                                                                                           \
        gemm_shape g = SHAPE(ta, tb, m, n, k, 1, lda, ldb, ldc, tw_dtype_from_cuda(at),         \
                             tw_dtype_from_cuda(bt), tw_dtype_from_cuda(ct),                    \
                             tw_dtype_from_cublas_compute(compute), is_complex_type(at));       \
        return submit_gemm(h, NAME_ID("cublasGemmEx" #SUFFIX), &g);                             \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublasGemmStridedBatchedEx##SUFFIX(                                \
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, IT m, IT n, IT k,         \
        const void *alpha, const void *A, cudaDataType at, IT lda, long long sa, const void *B, \
        cudaDataType bt, IT ldb, long long sb, const void *beta, void *C, cudaDataType ct,      \
        IT ldc, long long sc, IT batch, cublasComputeType_t compute, cublasGemmAlgo_t algo)     \
    {                                                                                           \
        gemm_shape g = SHAPE(ta, tb, m, n, k, batch, lda, ldb, ldc, tw_dtype_from_cuda(at),     \
                             tw_dtype_from_cuda(bt), tw_dtype_from_cuda(ct),                    \
                             tw_dtype_from_cublas_compute(compute), is_complex_type(at));       \
        return submit_gemm(h, NAME_ID("cublasGemmStridedBatchedEx" #SUFFIX), &g);               \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublasGemmBatchedEx##SUFFIX(                                       \
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, IT m, IT n, IT k,         \
        const void *alpha, const void *const A[], cudaDataType at, IT lda,                      \
        const void *const B[], cudaDataType bt, IT ldb, const void *beta, void *const C[],      \
        cudaDataType ct, IT ldc, IT batch, cublasComputeType_t compute, cublasGemmAlgo_t algo)  \
    {                                                                                           \
        gemm_shape g = SHAPE(ta, tb, m, n, k, batch, lda, ldb, ldc, tw_dtype_from_cuda(at),     \
                             tw_dtype_from_cuda(bt), tw_dtype_from_cuda(ct),                    \
                             tw_dtype_from_cublas_compute(compute), is_complex_type(at));       \
        return submit_gemm(h, NAME_ID("cublasGemmBatchedEx" #SUFFIX), &g);                      \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublasSgemmEx##SUFFIX(                                             \
        cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, IT m, IT n, IT k,         \
        const float *alpha, const void *A, cudaDataType at, IT lda, const void *B,              \
        cudaDataType bt, IT ldb, const float *beta, void *C, cudaDataType ct, IT ldc)           \
    {                                                                                           \
        gemm_shape g = SHAPE(ta, tb, m, n, k, 1, lda, ldb, ldc, tw_dtype_from_cuda(at),         \
                             tw_dtype_from_cuda(bt), tw_dtype_from_cuda(ct), TW_DT_F32, false); \
        return submit_gemm(h, NAME_ID("cublasSgemmEx" #SUFFIX), &g);                            \
    }

DEF_GEMM_EX(int, )
DEF_GEMM_EX(int64_t, _64)

/* ------------------------------------------------------------------ level 1/2, triangular */

static cublasStatus_t submit_library(cublasHandle_t h, uint32_t name_id, int kind, uint32_t dt,
                                     int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                                     uint64_t flops, uint64_t bytes)
{
    if (!handle_ok(h))
        return CUBLAS_STATUS_NOT_INITIALIZED;
    tw_stream *s = tw_stream_resolve(h->stream);
    tw_desc d = {0};
    d.kind = (uint32_t)kind;
    d.device = (uint32_t)tw_stream_device(s);
    d.dtype_a = d.dtype_b = d.dtype_out = d.dtype_compute = dt;
    d.dims[0] = d0;
    d.dims[1] = d1;
    d.dims[2] = d2;
    d.dims[3] = d3;
    d.flops = flops;
    d.bytes = bytes;
    d.name_id = name_id;
    tw_submit(s, &d);
    return CUBLAS_STATUS_SUCCESS;
}

/* gemv is a GEMM with n = 1: y(m') = op(A)(m' x n') x(n'). */
#define DEF_GEMV(P, T, DT, CPLX)                                                                \
    TW_EXPORT cublasStatus_t cublas##P##gemv_v2(cublasHandle_t h, cublasOperation_t trans,     \
                                                int m, int n, const T *alpha, const T *A,       \
                                                int lda, const T *x, int incx, const T *beta,   \
                                                T *y, int incy)                                 \
    {                                                                                           \
        int64_t rows = trans == CUBLAS_OP_N ? m : n, cols = trans == CUBLAS_OP_N ? n : m;       \
        gemm_shape g = SHAPE(trans, CUBLAS_OP_N, rows, 1, cols, 1, lda, cols, rows, DT, DT, DT, \
                             DT, CPLX);                                                         \
        return submit_gemm(h, NAME_ID("cublas" #P "gemv_v2"), &g);                              \
    }
DEF_GEMV(S, float, TW_DT_F32, false)
DEF_GEMV(D, double, TW_DT_F64, false)
DEF_GEMV(C, cuComplex, TW_DT_C64, true)
DEF_GEMV(Z, cuDoubleComplex, TW_DT_C128, true)

/* A dot product with a host result pointer is synchronous in cuBLAS: the caller waits for
 * the stream. The result is computed for real when both vectors are host-backed; otherwise
 * (unbacked data, like an unbacked D2H) the destination is left as it was. */
static void dot_result(cublasHandle_t h, int n, const void *x, int incx, const void *y, int incy,
                       void *result, bool is_double)
{
    tw_alloc ax, ay;
    bool backed = tw_mem_lookup(x, &ax) && ax.backed && tw_mem_lookup(y, &ay) && ay.backed;
    if (h->pointer_mode == CUBLAS_POINTER_MODE_DEVICE) {
        if (!backed)
            return;
        tw_alloc ar;
        if (!tw_mem_lookup(result, &ar) || !ar.backed)
            return;
    } else {
        tw_stream_synchronize(tw_stream_resolve(h->stream));
        if (!backed)
            return;
    }
    double acc = 0;
    for (int i = 0; i < n; i++) {
        if (is_double)
            acc += ((const double *)x)[(int64_t)i * incx] * ((const double *)y)[(int64_t)i * incy];
        else
            acc += (double)((const float *)x)[(int64_t)i * incx] *
                   (double)((const float *)y)[(int64_t)i * incy];
    }
    if (is_double)
        *(double *)result = acc;
    else
        *(float *)result = (float)acc;
}

TW_EXPORT cublasStatus_t cublasSdot_v2(cublasHandle_t h, int n, const float *x, int incx,
                                       const float *y, int incy, float *result)
{
    cublasStatus_t st = submit_library(h, NAME_ID("cublasSdot_v2"), TW_OP_LIBRARY, TW_DT_F32, n, 0,
                                       0, 0, 2ull * (uint64_t)(n > 0 ? n : 0),
                                       8ull * (uint64_t)(n > 0 ? n : 0));
    if (st == CUBLAS_STATUS_SUCCESS && n > 0 && incx > 0 && incy > 0 && result)
        dot_result(h, n, x, incx, y, incy, result, false);
    return st;
}

TW_EXPORT cublasStatus_t cublasDdot_v2(cublasHandle_t h, int n, const double *x, int incx,
                                       const double *y, int incy, double *result)
{
    cublasStatus_t st = submit_library(h, NAME_ID("cublasDdot_v2"), TW_OP_LIBRARY, TW_DT_F64, n, 0,
                                       0, 0, 2ull * (uint64_t)(n > 0 ? n : 0),
                                       16ull * (uint64_t)(n > 0 ? n : 0));
    if (st == CUBLAS_STATUS_SUCCESS && n > 0 && incx > 0 && incy > 0 && result)
        dot_result(h, n, x, incx, y, incy, result, true);
    return st;
}

#define DEF_AXPY(P, T, DT, CPLX)                                                                \
    TW_EXPORT cublasStatus_t cublas##P##axpy_v2(cublasHandle_t h, int n, const T *alpha,       \
                                                const T *x, int incx, T *y, int incy)           \
    {                                                                                           \
        uint64_t un = (uint64_t)(n > 0 ? n : 0);                                                \
        return submit_library(h, NAME_ID("cublas" #P "axpy_v2"), TW_OP_LIBRARY, DT, n, 0, 0, 0, \
                              (CPLX ? 8u : 2u) * un, 3u * un * sizeof(T));                      \
    }
DEF_AXPY(S, float, TW_DT_F32, false)
DEF_AXPY(D, double, TW_DT_F64, false)
DEF_AXPY(C, cuComplex, TW_DT_C64, true)
DEF_AXPY(Z, cuDoubleComplex, TW_DT_C128, true)

/* Triangular solve with op(A) of order m (left) or n (right) and B m x n: dims m, n, 0,
 * batch; flops = order^2 x (the other side) per matrix (x4 for complex). */
static cublasStatus_t submit_trsm(cublasHandle_t h, uint32_t name_id, cublasSideMode_t side,
                                  int64_t m, int64_t n, int64_t batch, uint32_t dt, bool cplx,
                                  size_t elem)
{
    if (m < 0 || n < 0 || batch < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t order = (uint64_t)(side == CUBLAS_SIDE_LEFT ? m : n);
    uint64_t flops = order * (uint64_t)m * (uint64_t)n * (uint64_t)batch * (cplx ? 4u : 1u);
    uint64_t bytes = (order * order + 2u * (uint64_t)m * (uint64_t)n) * elem * (uint64_t)batch;
    return submit_library(h, name_id, TW_OP_SOLVER, dt, m, n, 0, batch, flops, bytes);
}

#define DEF_TRSM(P, T, DT, CPLX)                                                                \
    TW_EXPORT cublasStatus_t cublas##P##trsm_v2(                                                \
        cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t tr,   \
        cublasDiagType_t diag, int m, int n, const T *alpha, const T *A, int lda, T *B, int ldb) \
    {                                                                                           \
        return submit_trsm(h, NAME_ID("cublas" #P "trsm_v2"), side, m, n, 1, DT, CPLX,          \
                           sizeof(T));                                                          \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublas##P##trsm_v2_64(                                             \
        cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t tr,   \
        cublasDiagType_t diag, int64_t m, int64_t n, const T *alpha, const T *A, int64_t lda,   \
        T *B, int64_t ldb)                                                                      \
    {                                                                                           \
        return submit_trsm(h, NAME_ID("cublas" #P "trsm_v2_64"), side, m, n, 1, DT, CPLX,       \
                           sizeof(T));                                                          \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublas##P##trsmBatched(                                            \
        cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t tr,   \
        cublasDiagType_t diag, int m, int n, const T *alpha, const T *const A[], int lda,       \
        T *const B[], int ldb, int batch)                                                       \
    {                                                                                           \
        return submit_trsm(h, NAME_ID("cublas" #P "trsmBatched"), side, m, n, batch, DT, CPLX,  \
                           sizeof(T));                                                          \
    }
DEF_TRSM(S, float, TW_DT_F32, false)
DEF_TRSM(D, double, TW_DT_F64, false)
DEF_TRSM(C, cuComplex, TW_DT_C64, true)
DEF_TRSM(Z, cuDoubleComplex, TW_DT_C128, true)

/* ------------------------------------------------------------------ batched factorisations */

/* info arrays: zero them where the program can read them back (host-backed), so a caller
 * that checks them sees success, as for a well-conditioned input. */
static void zero_info(void *info, uint64_t bytes)
{
    tw_alloc a;
    if (info && tw_mem_lookup(info, &a) && a.backed)
        tw_mem_set_data(info, 0, bytes);
}

static cublasStatus_t submit_batched_lu(cublasHandle_t h, uint32_t name_id, int n, int nrhs,
                                        int batch, uint32_t dt, bool cplx, size_t elem,
                                        uint64_t flops_per_matrix)
{
    if (n < 0 || nrhs < 0 || batch < 0)
        return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t bytes = ((uint64_t)n * (uint64_t)n + (uint64_t)n * (uint64_t)nrhs) * elem * (uint64_t)batch;
    return submit_library(h, name_id, TW_OP_SOLVER, dt, n, n, nrhs, batch,
                          flops_per_matrix * (uint64_t)batch * (cplx ? 4u : 1u), bytes);
}

#define DEF_BATCHED_LU(P, T, DT, CPLX)                                                          \
    TW_EXPORT cublasStatus_t cublas##P##getrfBatched(cublasHandle_t h, int n, T *const A[],    \
                                                     int lda, int *P_, int *info, int batch)   \
    {                                                                                           \
        uint64_t un = (uint64_t)(n > 0 ? n : 0);                                                \
        cublasStatus_t st = submit_batched_lu(h, NAME_ID("cublas" #P "getrfBatched"), n, 0,     \
                                              batch, DT, CPLX, sizeof(T), 2u * un * un * un / 3u); \
        if (st == CUBLAS_STATUS_SUCCESS && batch > 0)                                           \
            zero_info(info, (uint64_t)batch * sizeof(int));                                     \
        return st;                                                                              \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublas##P##getriBatched(cublasHandle_t h, int n,                  \
                                                     const T *const A[], int lda,               \
                                                     const int *P_, T *const C[], int ldc,      \
                                                     int *info, int batch)                      \
    {                                                                                           \
        uint64_t un = (uint64_t)(n > 0 ? n : 0);                                                \
        cublasStatus_t st = submit_batched_lu(h, NAME_ID("cublas" #P "getriBatched"), n, n,     \
                                              batch, DT, CPLX, sizeof(T), 4u * un * un * un / 3u); \
        if (st == CUBLAS_STATUS_SUCCESS && batch > 0)                                           \
            zero_info(info, (uint64_t)batch * sizeof(int));                                     \
        return st;                                                                              \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublas##P##getrsBatched(                                           \
        cublasHandle_t h, cublasOperation_t tr, int n, int nrhs, const T *const A[], int lda,   \
        const int *P_, T *const B[], int ldb, int *info, int batch)                             \
    {                                                                                           \
        uint64_t un = (uint64_t)(n > 0 ? n : 0), ur = (uint64_t)(nrhs > 0 ? nrhs : 0);          \
        cublasStatus_t st = submit_batched_lu(h, NAME_ID("cublas" #P "getrsBatched"), n, nrhs,  \
                                              batch, DT, CPLX, sizeof(T), 2u * un * un * ur);   \
        /* info is a single host int here: 0 = parameters valid */                              \
        if (st == CUBLAS_STATUS_SUCCESS && info)                                                \
            *info = 0;                                                                          \
        return st;                                                                              \
    }                                                                                           \
    TW_EXPORT cublasStatus_t cublas##P##geqrfBatched(cublasHandle_t h, int m, int n,           \
                                                     T *const A[], int lda, T *const tau[],     \
                                                     int *info, int batch)                      \
    {                                                                                           \
        if (m < 0 || n < 0 || batch < 0)                                                        \
            return CUBLAS_STATUS_INVALID_VALUE;                                                 \
        uint64_t um = (uint64_t)m, un = (uint64_t)n;                                            \
        /* Householder QR: 2 m n^2 - 2/3 n^3 (m >= n) */                                        \
        uint64_t f = 2u * um * un * un - (um >= un ? 2u * un * un * un / 3u : 0u);              \
        cublasStatus_t st = submit_library(h, NAME_ID("cublas" #P "geqrfBatched"), TW_OP_SOLVER, \
                                           DT, m, n, 0, batch,                                  \
                                           f * (uint64_t)batch * (CPLX ? 4u : 1u),              \
                                           um * un * sizeof(T) * (uint64_t)batch);              \
        if (st == CUBLAS_STATUS_SUCCESS && info)                                                \
            *info = 0;                                                                          \
        return st;                                                                              \
    }
DEF_BATCHED_LU(S, float, TW_DT_F32, false)
DEF_BATCHED_LU(D, double, TW_DT_F64, false)
DEF_BATCHED_LU(C, cuComplex, TW_DT_C64, true)
DEF_BATCHED_LU(Z, cuDoubleComplex, TW_DT_C128, true)
