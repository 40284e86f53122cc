/* cuSPARSELt as torch's 2:4 semi-structured sparsity calls it (torch._cslt_compress,
 * torch._cslt_sparse_mm): the handle and descriptors are the library's opaque 512-byte structs,
 * here holding our state behind a magic. A matmul with a 2:4 structured operand is one
 * TW_OP_GEMM named cusparseLtMatmul with k halved: sparse tensor cores skip the pruned half, so
 * it costs what a dense GEMM of (m, n, k/2) does. Compress and prune are library ops with the
 * bytes they read and write; the compressed layout is the kept half of the values plus 2 bits
 * of position per kept value. */
#include <stdalign.h>
#include <string.h>

#include <cusparseLt.h>

#include "dtype_map.h"
#include "tw_core.h"

#define LT_HANDLE 0x4c48u
#define LT_MAT 0x4c4du
#define LT_MATMUL 0x4c4eu
#define LT_ALG 0x4c41u
#define LT_PLAN 0x4c50u

typedef struct lt_mat {
    uint32_t magic;
    bool structured;
    int64_t rows, cols, ld;
    cudaDataType dtype;
    cusparseOrder_t order;
    int batches;
} lt_mat;

typedef struct lt_matmul {
    uint32_t magic;
    cusparseOperation_t op_a, op_b;
    lt_mat a, b, c, d;
    cusparseComputeType compute;
    bool bias;
} lt_matmul;

typedef struct lt_alg {
    uint32_t magic;
    lt_matmul matmul;
    int config_id, search_iterations, split_k;
} lt_alg;

typedef struct lt_plan {
    uint32_t magic;
    lt_alg alg;
} lt_plan;

_Static_assert(sizeof(lt_mat) <= sizeof(cusparseLtMatDescriptor_t), "mat state too large");
_Static_assert(sizeof(lt_matmul) <= sizeof(cusparseLtMatmulDescriptor_t), "matmul state too large");
_Static_assert(sizeof(lt_alg) <= sizeof(cusparseLtMatmulAlgSelection_t), "alg state too large");
_Static_assert(sizeof(lt_plan) <= sizeof(cusparseLtMatmulPlan_t), "plan state too large");

static bool handle_ok(const cusparseLtHandle_t *h)
{
    uint32_t magic;
    if (h == NULL)
        return false;
    memcpy(&magic, h->data, sizeof magic);
    return magic == LT_HANDLE;
}

/* Our state inside one of the library's opaque structs, or NULL if it holds none of `want`. */
static void *state_of(const void *opaque, uint32_t want)
{
    uint32_t magic;
    if (opaque == NULL)
        return NULL;
    memcpy(&magic, opaque, sizeof magic);
    return magic == want ? (void *)opaque : NULL;
}

#define STATE(type, ptr, want) ((type *)state_of((ptr), (want)))

static uint64_t elem_bytes(cudaDataType t)
{
    uint32_t b = tw_dtype_bytes(tw_dtype_from_cuda(t));
    return b ? b : 2;
}

static uint64_t dense_bytes(const lt_mat *m)
{
    return (uint64_t)m->batches * (uint64_t)m->rows * (uint64_t)m->cols * elem_bytes(m->dtype);
}

/* Kept half of the values plus 2 bits of position for each kept value. */
static uint64_t compressed_bytes(const lt_mat *m)
{
    uint64_t n = (uint64_t)m->batches * (uint64_t)m->rows * (uint64_t)m->cols;
    return n / 2 * elem_bytes(m->dtype) + n / 8;
}

/* ------------------------------------------------------------------ handle */

TW_EXPORT cusparseStatus_t cusparseLtInit(cusparseLtHandle_t *handle)
{
    if (handle == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    memset(handle, 0, sizeof *handle);
    uint32_t magic = LT_HANDLE;
    memcpy(handle->data, &magic, sizeof magic);
    tw_ctx_primary_activate(tw_device_current());
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtDestroy(const cusparseLtHandle_t *handle)
{
    return handle_ok(handle) ? CUSPARSE_STATUS_SUCCESS : CUSPARSE_STATUS_NOT_INITIALIZED;
}

TW_EXPORT cusparseStatus_t cusparseLtGetVersion(const cusparseLtHandle_t *handle, int *version)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (version == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *version = CUSPARSELT_VERSION;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtGetProperty(libraryPropertyType type, int *value)
{
    if (value == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    switch (type) {
    case MAJOR_VERSION: *value = CUSPARSELT_VER_MAJOR; return CUSPARSE_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUSPARSELT_VER_MINOR; return CUSPARSE_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUSPARSELT_VER_PATCH; return CUSPARSE_STATUS_SUCCESS;
    default: return CUSPARSE_STATUS_INVALID_VALUE;
    }
}

/* ------------------------------------------------------------------ matrix descriptors */

static cusparseStatus_t mat_init(const cusparseLtHandle_t *handle, cusparseLtMatDescriptor_t *out, int64_t rows,
                                 int64_t cols, int64_t ld, cudaDataType dtype, cusparseOrder_t order,
                                 bool structured)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    int64_t needed = order == CUSPARSE_ORDER_ROW ? cols : rows;
    if (out == NULL || rows <= 0 || cols <= 0 || ld < needed)
        return CUSPARSE_STATUS_INVALID_VALUE;
    if (structured && (order == CUSPARSE_ORDER_ROW ? cols : rows) % 4 != 0)
        return CUSPARSE_STATUS_INVALID_VALUE; /* 2:4 groups run along the leading dimension */
    memset(out, 0, sizeof *out);
    lt_mat m = {LT_MAT, structured, rows, cols, ld, dtype, order, 1};
    memcpy(out->data, &m, sizeof m);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtDenseDescriptorInit(const cusparseLtHandle_t *handle,
                                                         cusparseLtMatDescriptor_t *out, int64_t rows, int64_t cols,
                                                         int64_t ld, uint32_t alignment, cudaDataType dtype,
                                                         cusparseOrder_t order)
{
    return mat_init(handle, out, rows, cols, ld, dtype, order, false);
}

TW_EXPORT cusparseStatus_t cusparseLtStructuredDescriptorInit(const cusparseLtHandle_t *handle,
                                                              cusparseLtMatDescriptor_t *out, int64_t rows,
                                                              int64_t cols, int64_t ld, uint32_t alignment,
                                                              cudaDataType dtype, cusparseOrder_t order,
                                                              cusparseLtSparsity_t sparsity)
{
    if (sparsity != CUSPARSELT_SPARSITY_50_PERCENT)
        return CUSPARSE_STATUS_INVALID_VALUE;
    return mat_init(handle, out, rows, cols, ld, dtype, order, true);
}

TW_EXPORT cusparseStatus_t cusparseLtMatDescriptorDestroy(const cusparseLtMatDescriptor_t *desc)
{
    return STATE(lt_mat, desc, LT_MAT) ? CUSPARSE_STATUS_SUCCESS : CUSPARSE_STATUS_INVALID_VALUE;
}

TW_EXPORT cusparseStatus_t cusparseLtMatDescSetAttribute(const cusparseLtHandle_t *handle,
                                                         cusparseLtMatDescriptor_t *desc,
                                                         cusparseLtMatDescAttribute_t attribute, const void *data,
                                                         size_t size)
{
    lt_mat *m = STATE(lt_mat, desc, LT_MAT);
    if (!handle_ok(handle) || m == NULL || data == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    if (attribute == CUSPARSELT_MAT_NUM_BATCHES && size == sizeof(int) && *(const int *)data >= 1)
        m->batches = *(const int *)data;
    else if (attribute != CUSPARSELT_MAT_BATCH_STRIDE)
        return CUSPARSE_STATUS_INVALID_VALUE;
    return CUSPARSE_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ matmul descriptor, algorithm, plan */

TW_EXPORT cusparseStatus_t cusparseLtMatmulDescriptorInit(const cusparseLtHandle_t *handle,
                                                          cusparseLtMatmulDescriptor_t *out,
                                                          cusparseOperation_t op_a, cusparseOperation_t op_b,
                                                          const cusparseLtMatDescriptor_t *a,
                                                          const cusparseLtMatDescriptor_t *b,
                                                          const cusparseLtMatDescriptor_t *c,
                                                          const cusparseLtMatDescriptor_t *d,
                                                          cusparseComputeType compute)
{
    lt_mat *ma = STATE(lt_mat, a, LT_MAT), *mb = STATE(lt_mat, b, LT_MAT);
    lt_mat *mc = STATE(lt_mat, c, LT_MAT), *md = STATE(lt_mat, d, LT_MAT);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (out == NULL || !ma || !mb || !mc || !md || ma->structured == mb->structured)
        return CUSPARSE_STATUS_INVALID_VALUE; /* exactly one operand is the structured one */
    int64_t k_a = op_a == CUSPARSE_OPERATION_NON_TRANSPOSE ? ma->cols : ma->rows;
    int64_t k_b = op_b == CUSPARSE_OPERATION_NON_TRANSPOSE ? mb->rows : mb->cols;
    if (k_a != k_b || md->rows != mc->rows || md->cols != mc->cols)
        return CUSPARSE_STATUS_INVALID_VALUE;
    memset(out, 0, sizeof *out);
    lt_matmul mm = {LT_MATMUL, op_a, op_b, *ma, *mb, *mc, *md, compute, false};
    memcpy(out->data, &mm, sizeof mm);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtMatmulDescSetAttribute(const cusparseLtHandle_t *handle,
                                                            cusparseLtMatmulDescriptor_t *desc,
                                                            cusparseLtMatmulDescAttribute_t attribute,
                                                            const void *data, size_t size)
{
    lt_matmul *mm = STATE(lt_matmul, desc, LT_MATMUL);
    if (!handle_ok(handle) || mm == NULL || data == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    if (attribute == CUSPARSELT_MATMUL_BIAS_POINTER)
        mm->bias = *(void *const *)data != NULL;
    return CUSPARSE_STATUS_SUCCESS; /* activations and scales change no modelled cost */
}

TW_EXPORT cusparseStatus_t cusparseLtMatmulAlgSelectionInit(const cusparseLtHandle_t *handle,
                                                            cusparseLtMatmulAlgSelection_t *out,
                                                            const cusparseLtMatmulDescriptor_t *desc,
                                                            cusparseLtMatmulAlg_t alg)
{
    lt_matmul *mm = STATE(lt_matmul, desc, LT_MATMUL);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (out == NULL || mm == NULL || alg != CUSPARSELT_MATMUL_ALG_DEFAULT)
        return CUSPARSE_STATUS_INVALID_VALUE;
    memset(out, 0, sizeof *out);
    lt_alg a = {LT_ALG, *mm, 0, 5, 1}; /* 5 search iterations: the library's default */
    memcpy(out->data, &a, sizeof a);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtMatmulAlgSelectionDestroy(const cusparseLtMatmulAlgSelection_t *alg)
{
    return STATE(lt_alg, alg, LT_ALG) ? CUSPARSE_STATUS_SUCCESS : CUSPARSE_STATUS_INVALID_VALUE;
}

/* One algorithm (config 0): the emulation has one cost per shape. */
TW_EXPORT cusparseStatus_t cusparseLtMatmulAlgSetAttribute(const cusparseLtHandle_t *handle,
                                                           cusparseLtMatmulAlgSelection_t *sel,
                                                           cusparseLtMatmulAlgAttribute_t attribute,
                                                           const void *data, size_t size)
{
    lt_alg *a = STATE(lt_alg, sel, LT_ALG);
    if (!handle_ok(handle) || a == NULL || data == NULL || size < sizeof(int))
        return CUSPARSE_STATUS_INVALID_VALUE;
    int v = *(const int *)data;
    switch (attribute) {
    case CUSPARSELT_MATMUL_ALG_CONFIG_ID:
        if (v != 0)
            return CUSPARSE_STATUS_INVALID_VALUE;
        a->config_id = v;
        return CUSPARSE_STATUS_SUCCESS;
    case CUSPARSELT_MATMUL_SEARCH_ITERATIONS:
        if (v < 1)
            return CUSPARSE_STATUS_INVALID_VALUE;
        a->search_iterations = v;
        return CUSPARSE_STATUS_SUCCESS;
    case CUSPARSELT_MATMUL_SPLIT_K: a->split_k = v; return CUSPARSE_STATUS_SUCCESS;
    case CUSPARSELT_MATMUL_ALG_CONFIG_MAX_ID: return CUSPARSE_STATUS_INVALID_VALUE; /* read-only */
    default: return CUSPARSE_STATUS_SUCCESS;
    }
}

TW_EXPORT cusparseStatus_t cusparseLtMatmulAlgGetAttribute(const cusparseLtHandle_t *handle,
                                                           const cusparseLtMatmulAlgSelection_t *sel,
                                                           cusparseLtMatmulAlgAttribute_t attribute, void *data,
                                                           size_t size)
{
    lt_alg *a = STATE(lt_alg, sel, LT_ALG);
    if (!handle_ok(handle) || a == NULL || data == NULL || size < sizeof(int))
        return CUSPARSE_STATUS_INVALID_VALUE;
    switch (attribute) {
    case CUSPARSELT_MATMUL_ALG_CONFIG_ID: *(int *)data = a->config_id; return CUSPARSE_STATUS_SUCCESS;
    case CUSPARSELT_MATMUL_ALG_CONFIG_MAX_ID: *(int *)data = 0; return CUSPARSE_STATUS_SUCCESS;
    case CUSPARSELT_MATMUL_SEARCH_ITERATIONS: *(int *)data = a->search_iterations; return CUSPARSE_STATUS_SUCCESS;
    case CUSPARSELT_MATMUL_SPLIT_K: *(int *)data = a->split_k; return CUSPARSE_STATUS_SUCCESS;
    default: return CUSPARSE_STATUS_INVALID_VALUE;
    }
}

TW_EXPORT cusparseStatus_t cusparseLtMatmulPlanInit(const cusparseLtHandle_t *handle, cusparseLtMatmulPlan_t *out,
                                                    const cusparseLtMatmulDescriptor_t *desc,
                                                    const cusparseLtMatmulAlgSelection_t *sel)
{
    lt_alg *a = STATE(lt_alg, sel, LT_ALG);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (out == NULL || a == NULL || STATE(lt_matmul, desc, LT_MATMUL) == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    memset(out, 0, sizeof *out);
    lt_plan p = {LT_PLAN, *a};
    p.alg.matmul = *STATE(lt_matmul, desc, LT_MATMUL); /* the descriptor as it is now */
    memcpy(out->data, &p, sizeof p);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtMatmulPlanDestroy(const cusparseLtMatmulPlan_t *plan)
{
    return STATE(lt_plan, plan, LT_PLAN) ? CUSPARSE_STATUS_SUCCESS : CUSPARSE_STATUS_INVALID_VALUE;
}

TW_EXPORT cusparseStatus_t cusparseLtMatmulGetWorkspace(const cusparseLtHandle_t *handle,
                                                        const cusparseLtMatmulPlan_t *plan, size_t *bytes)
{
    if (!handle_ok(handle) || STATE(lt_plan, plan, LT_PLAN) == NULL || bytes == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *bytes = 0;
    return CUSPARSE_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ compute */

static tw_stream *first_stream(cudaStream_t *streams, int32_t count)
{
    return tw_stream_resolve(streams != NULL && count > 0 ? streams[0] : NULL);
}

static void submit_matmul(const lt_matmul *mm, tw_stream *s)
{
    static uint32_t name_id;
    if (TW_UNLIKELY(name_id == 0))
        name_id = tw_name_intern("cusparseLtMatmul");
    const lt_mat *a = &mm->a, *b = &mm->b;
    bool ta = mm->op_a != CUSPARSE_OPERATION_NON_TRANSPOSE, tb = mm->op_b != CUSPARSE_OPERATION_NON_TRANSPOSE;
    int64_t m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols, n = tb ? b->rows : b->cols;
    int64_t batch = mm->d.batches;
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_GEMM;
    desc.device = (uint32_t)tw_stream_device(s);
    desc.dtype_a = tw_dtype_from_cuda(a->dtype);
    desc.dtype_b = tw_dtype_from_cuda(b->dtype);
    desc.dtype_out = tw_dtype_from_cuda(mm->d.dtype);
    desc.dtype_compute = mm->compute == CUSPARSE_COMPUTE_32I ? TW_DT_I32
                         : mm->compute == CUSPARSE_COMPUTE_16F ? TW_DT_F16 : TW_DT_F32;
    desc.flags = (ta ? TW_FLAG_TRANS_A : 0) | (tb ? TW_FLAG_TRANS_B : 0) | (mm->bias ? TW_FLAG_BIAS_EPILOGUE : 0);
    desc.dims[0] = m;
    desc.dims[1] = n;
    desc.dims[2] = k / 2; /* the pruned half is skipped */
    desc.dims[3] = batch;
    desc.dims[4] = a->ld;
    desc.dims[5] = b->ld;
    desc.dims[6] = mm->d.ld;
    const lt_mat *sparse = a->structured ? a : b, *dense = a->structured ? b : a;
    desc.bytes = compressed_bytes(sparse) + dense_bytes(dense) + dense_bytes(&mm->c) + dense_bytes(&mm->d);
    desc.flops = 2ull * (uint64_t)batch * (uint64_t)m * (uint64_t)n * (uint64_t)(k / 2);
    desc.name_id = name_id;
    tw_submit(s, &desc);
}

TW_EXPORT cusparseStatus_t cusparseLtMatmul(const cusparseLtHandle_t *handle, const cusparseLtMatmulPlan_t *plan,
                                            const void *alpha, const void *d_a, const void *d_b, const void *beta,
                                            const void *d_c, void *d_d, void *workspace, cudaStream_t *streams,
                                            int32_t stream_count)
{
    lt_plan *p = STATE(lt_plan, plan, LT_PLAN);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (p == NULL || alpha == NULL || beta == NULL || d_a == NULL || d_b == NULL || d_d == NULL ||
        stream_count < 0)
        return CUSPARSE_STATUS_INVALID_VALUE;
    submit_matmul(&p->alg.matmul, first_stream(streams, stream_count));
    return CUSPARSE_STATUS_SUCCESS;
}

/* The search times each candidate `search_iterations` times: one algorithm here, so that many
 * matmuls, and the plan keeps config 0. */
TW_EXPORT cusparseStatus_t cusparseLtMatmulSearch(const cusparseLtHandle_t *handle, cusparseLtMatmulPlan_t *plan,
                                                  const void *alpha, const void *d_a, const void *d_b,
                                                  const void *beta, const void *d_c, void *d_d, void *workspace,
                                                  cudaStream_t *streams, int32_t stream_count)
{
    lt_plan *p = STATE(lt_plan, plan, LT_PLAN);
    cusparseStatus_t st = cusparseLtMatmul(handle, plan, alpha, d_a, d_b, beta, d_c, d_d, workspace, streams,
                                           stream_count);
    for (int i = 1; st == CUSPARSE_STATUS_SUCCESS && i < p->alg.search_iterations; i++)
        submit_matmul(&p->alg.matmul, first_stream(streams, stream_count));
    return st;
}

static void submit_pass(const char *routine, const lt_mat *m, uint64_t bytes, cudaStream_t stream)
{
    tw_stream *s = tw_stream_resolve(stream);
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_LIBRARY;
    desc.device = (uint32_t)tw_stream_device(s);
    desc.dtype_a = desc.dtype_out = tw_dtype_from_cuda(m->dtype);
    desc.dims[0] = m->rows;
    desc.dims[1] = m->cols;
    desc.dims[3] = m->batches;
    desc.bytes = bytes;
    desc.name_id = tw_name_intern(routine);
    tw_submit(s, &desc);
}

TW_EXPORT cusparseStatus_t cusparseLtSpMMACompressedSize2(const cusparseLtHandle_t *handle,
                                                          const cusparseLtMatDescriptor_t *desc, size_t *size,
                                                          size_t *buffer_size)
{
    lt_mat *m = STATE(lt_mat, desc, LT_MAT);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (m == NULL || !m->structured || size == NULL || buffer_size == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *size = compressed_bytes(m);
    *buffer_size = 0;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtSpMMACompress2(const cusparseLtHandle_t *handle,
                                                    const cusparseLtMatDescriptor_t *desc, int is_sparse_a,
                                                    cusparseOperation_t op, const void *dense, void *compressed,
                                                    void *buffer, cudaStream_t stream)
{
    lt_mat *m = STATE(lt_mat, desc, LT_MAT);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (m == NULL || !m->structured || dense == NULL || compressed == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    submit_pass("cusparseLtSpMMACompress2", m, dense_bytes(m) + compressed_bytes(m), stream);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseLtSpMMAPrune2(const cusparseLtHandle_t *handle,
                                                 const cusparseLtMatDescriptor_t *desc, int is_sparse_a,
                                                 cusparseOperation_t op, const void *in, void *out,
                                                 cusparseLtPruneAlg_t alg, cudaStream_t stream)
{
    lt_mat *m = STATE(lt_mat, desc, LT_MAT);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (m == NULL || !m->structured || in == NULL || out == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    submit_pass("cusparseLtSpMMAPrune2", m, 2 * dense_bytes(m), stream);
    return CUSPARSE_STATUS_SUCCESS;
}

/* The check reads the matrix and writes one int; no kernel ran to prune it, so it reports what
 * the host can see: valid (0 means "is 2:4"). */
TW_EXPORT cusparseStatus_t cusparseLtSpMMAPruneCheck2(const cusparseLtHandle_t *handle,
                                                      const cusparseLtMatDescriptor_t *desc, int is_sparse_a,
                                                      cusparseOperation_t op, const void *in, int *d_valid,
                                                      cudaStream_t stream)
{
    lt_mat *m = STATE(lt_mat, desc, LT_MAT);
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (m == NULL || !m->structured || in == NULL || d_valid == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    tw_mem_set_data(d_valid, 0, sizeof *d_valid);
    submit_pass("cusparseLtSpMMAPruneCheck2", m, dense_bytes(m) + sizeof(int), stream);
    return CUSPARSE_STATUS_SUCCESS;
}
