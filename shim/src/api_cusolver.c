/* cuSOLVER dense (cusolverDn.h): handle, stream and params, and the LU / Cholesky routines
 * torch's linalg.solve / cholesky reach, recorded as TW_OP_SOLVER (m, n, nrhs, batch) on
 * the handle's stream. Workspace sizes come from a formula (one matrix of the operand type);
 * devInfo is zeroed where the program can read it back, so callers see success. The other
 * routines stay the generated not-supported stubs. */
#include <stdlib.h>

#include <cusolverDn.h>

#include "dtype_map.h"
#include "tw_core.h"

#define TW_CUSOLVER_MAGIC 0x7265766c6f737563ULL

struct cusolverDnContext {
    uint64_t magic;
    cudaStream_t stream;
};

struct cusolverDnParams {
    uint64_t magic;
};

static bool handle_ok(cusolverDnHandle_t h) { return h && h->magic == TW_CUSOLVER_MAGIC; }

TW_EXPORT cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle)
{
    if (!handle)
        return CUSOLVER_STATUS_INVALID_VALUE;
    struct cusolverDnContext *h = calloc(1, sizeof(*h));
    if (!h)
        return CUSOLVER_STATUS_ALLOC_FAILED;
    h->magic = TW_CUSOLVER_MAGIC;
    *handle = h;
    return CUSOLVER_STATUS_SUCCESS;
}

TW_EXPORT cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle)
{
    if (!handle_ok(handle))
        return CUSOLVER_STATUS_NOT_INITIALIZED;
    handle->magic = 0;
    free(handle);
    return CUSOLVER_STATUS_SUCCESS;
}

TW_EXPORT cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t stream)
{
    if (!handle_ok(handle))
        return CUSOLVER_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUSOLVER_STATUS_SUCCESS;
}

TW_EXPORT cusolverStatus_t cusolverDnGetStream(cusolverDnHandle_t handle, cudaStream_t *stream)
{
    if (!handle_ok(handle))
        return CUSOLVER_STATUS_NOT_INITIALIZED;
    if (!stream)
        return CUSOLVER_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUSOLVER_STATUS_SUCCESS;
}

TW_EXPORT cusolverStatus_t cusolverDnCreateParams(cusolverDnParams_t *params)
{
    if (!params)
        return CUSOLVER_STATUS_INVALID_VALUE;
    struct cusolverDnParams *p = calloc(1, sizeof(*p));
    if (!p)
        return CUSOLVER_STATUS_ALLOC_FAILED;
    p->magic = TW_CUSOLVER_MAGIC;
    *params = p;
    return CUSOLVER_STATUS_SUCCESS;
}

TW_EXPORT cusolverStatus_t cusolverDnDestroyParams(cusolverDnParams_t params)
{
    if (!params)
        return CUSOLVER_STATUS_INVALID_VALUE;
    free(params);
    return CUSOLVER_STATUS_SUCCESS;
}

static void zero_info(int *info)
{
    tw_alloc a;
    if (info && tw_mem_lookup(info, &a) && a.backed)
        tw_mem_set_data(info, 0, sizeof(int));
}

static cusolverStatus_t submit_solver(cusolverDnHandle_t h, const char *name, uint32_t dt,
                                      int64_t m, int64_t n, int64_t nrhs, uint64_t flops,
                                      uint64_t bytes, int *info)
{
    if (!handle_ok(h))
        return CUSOLVER_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || nrhs < 0)
        return CUSOLVER_STATUS_INVALID_VALUE;
    tw_stream *s = tw_stream_resolve(h->stream);
    tw_desc d = {0};
    d.kind = TW_OP_SOLVER;
    d.device = (uint32_t)tw_stream_device(s);
    d.dtype_a = d.dtype_b = d.dtype_out = d.dtype_compute = dt;
    d.dims[0] = m;
    d.dims[1] = n;
    d.dims[2] = nrhs;
    d.dims[3] = 1;
    d.flops = flops;
    d.bytes = bytes;
    d.name_id = tw_name_intern(name); /* hash lookup: a factorisation is not a hot path */
    tw_submit(s, &d);
    zero_info(info);
    return CUSOLVER_STATUS_SUCCESS;
}

/* LU: 2/3 n^3 (square) flops; solve: 2 n^2 nrhs; Cholesky: n^3 / 3 and 2 n^2 nrhs.
 * Complex types count 4 real flops per multiply-add pair. */
#define DEF_DENSE(P, T, DT, CPLX)                                                               \
    TW_EXPORT cusolverStatus_t cusolverDn##P##getrf_bufferSize(cusolverDnHandle_t h, int m,    \
                                                               int n, T *A, int lda, int *lw)  \
    {                                                                                           \
        if (!handle_ok(h))                                                                      \
            return CUSOLVER_STATUS_NOT_INITIALIZED;                                             \
        if (!lw || m < 0 || n < 0)                                                              \
            return CUSOLVER_STATUS_INVALID_VALUE;                                               \
        *lw = m * n > 0 ? m * n : 1;                                                            \
        return CUSOLVER_STATUS_SUCCESS;                                                         \
    }                                                                                           \
    TW_EXPORT cusolverStatus_t cusolverDn##P##getrf(cusolverDnHandle_t h, int m, int n, T *A,  \
                                                    int lda, T *work, int *ipiv, int *info)    \
    {                                                                                           \
        uint64_t mn = (uint64_t)(m < n ? m : n);                                                \
        uint64_t f = (uint64_t)m * (uint64_t)n * mn - (uint64_t)(m + n) * mn * mn / 2u +        \
                     mn * mn * mn / 3u;                                                         \
        return submit_solver(h, "cusolverDn" #P "getrf", DT, m, n, 0, 2u * f * (CPLX ? 4u : 1u), \
                             (uint64_t)m * (uint64_t)n * sizeof(T), info);                      \
    }                                                                                           \
    TW_EXPORT cusolverStatus_t cusolverDn##P##getrs(cusolverDnHandle_t h, cublasOperation_t tr, \
                                                    int n, int nrhs, const T *A, int lda,       \
                                                    const int *ipiv, T *B, int ldb, int *info) \
    {                                                                                           \
        uint64_t un = (uint64_t)n, ur = (uint64_t)nrhs;                                         \
        return submit_solver(h, "cusolverDn" #P "getrs", DT, n, n, nrhs,                        \
                             2u * un * un * ur * (CPLX ? 4u : 1u),                              \
                             (un * un + 2u * un * ur) * sizeof(T), info);                       \
    }                                                                                           \
    TW_EXPORT cusolverStatus_t cusolverDn##P##potrf_bufferSize(cusolverDnHandle_t h,           \
                                                               cublasFillMode_t uplo, int n,   \
                                                               T *A, int lda, int *lw)         \
    {                                                                                           \
        if (!handle_ok(h))                                                                      \
            return CUSOLVER_STATUS_NOT_INITIALIZED;                                             \
        if (!lw || n < 0)                                                                       \
            return CUSOLVER_STATUS_INVALID_VALUE;                                               \
        *lw = n * n > 0 ? n * n : 1;                                                            \
        return CUSOLVER_STATUS_SUCCESS;                                                         \
    }                                                                                           \
    TW_EXPORT cusolverStatus_t cusolverDn##P##potrf(cusolverDnHandle_t h, cublasFillMode_t uplo, \
                                                    int n, T *A, int lda, T *work, int lwork,  \
                                                    int *info)                                  \
    {                                                                                           \
        uint64_t un = (uint64_t)n;                                                              \
        return submit_solver(h, "cusolverDn" #P "potrf", DT, n, n, 0,                           \
                             un * un * un / 3u * (CPLX ? 4u : 1u), un * un * sizeof(T), info);  \
    }                                                                                           \
    TW_EXPORT cusolverStatus_t cusolverDn##P##potrs(cusolverDnHandle_t h, cublasFillMode_t uplo, \
                                                    int n, int nrhs, const T *A, int lda, T *B, \
                                                    int ldb, int *info)                         \
    {                                                                                           \
        uint64_t un = (uint64_t)n, ur = (uint64_t)nrhs;                                         \
        return submit_solver(h, "cusolverDn" #P "potrs", DT, n, n, nrhs,                        \
                             2u * un * un * ur * (CPLX ? 4u : 1u),                              \
                             (un * un + 2u * un * ur) * sizeof(T), info);                       \
    }

DEF_DENSE(S, float, TW_DT_F32, false)
DEF_DENSE(D, double, TW_DT_F64, false)
DEF_DENSE(C, cuComplex, TW_DT_C64, true)
DEF_DENSE(Z, cuDoubleComplex, TW_DT_C128, true)
