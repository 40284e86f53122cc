/* cuSPARSE as torch.sparse calls it: the handle, the generic API's sparse (CSR, COO) and dense
 * descriptors, SpMM and SpMV, and coo2csr. Each compute call is one TW_OP_LIBRARY op on the
 * handle's stream, named by the routine, with its flops (2 per stored non-zero and dense column)
 * and the bytes it reads and writes: the sparse matrix (values, column indices, row offsets or
 * row indices), the dense operand and the result. The other routines are generated stubs. */
#include <stdlib.h>
#include <string.h>

#include <cusparse.h>

#include "dtype_map.h"
#include "tw_core.h"

#define HANDLE_MAGIC 0x6573726170737563ULL /* "cusparse" */
#define SPMAT_MAGIC 0x74616d7073ULL
#define DNMAT_MAGIC 0x74616d6e64ULL
#define DNVEC_MAGIC 0x6365766e64ULL

struct cusparseContext {
    uint64_t magic;
    cudaStream_t stream;
    cusparsePointerMode_t pointer_mode;
};

struct cusparseSpMatDescr {
    uint64_t magic;
    cusparseFormat_t format;
    int64_t rows, cols, nnz;
    void *offsets_or_rows, *columns, *values;
    cusparseIndexType_t offset_type, index_type;
    cudaDataType value_type;
    int batch;
    int fill_mode, diag_type;
};

struct cusparseDnMatDescr {
    uint64_t magic;
    int64_t rows, cols, ld;
    void *values;
    cudaDataType value_type;
    cusparseOrder_t order;
    int batch;
    int64_t batch_stride;
};

struct cusparseDnVecDescr {
    uint64_t magic;
    int64_t size;
    void *values;
    cudaDataType value_type;
};

static bool handle_ok(const struct cusparseContext *h) { return h != NULL && h->magic == HANDLE_MAGIC; }
static bool spmat_ok(const struct cusparseSpMatDescr *m) { return m != NULL && m->magic == SPMAT_MAGIC; }
static bool dnmat_ok(const struct cusparseDnMatDescr *m) { return m != NULL && m->magic == DNMAT_MAGIC; }
static bool dnvec_ok(const struct cusparseDnVecDescr *v) { return v != NULL && v->magic == DNVEC_MAGIC; }

static uint64_t index_bytes(cusparseIndexType_t t)
{
    return t == CUSPARSE_INDEX_64I ? 8 : t == CUSPARSE_INDEX_16U ? 2 : 4;
}

static uint64_t value_bytes(cudaDataType t)
{
    uint32_t b = tw_dtype_bytes(tw_dtype_from_cuda(t));
    return b ? b : 4;
}

/* ------------------------------------------------------------------ handle */

TW_EXPORT cusparseStatus_t cusparseCreate(cusparseHandle_t *handle)
{
    if (handle == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    struct cusparseContext *h = calloc(1, sizeof *h);
    if (h == NULL)
        return CUSPARSE_STATUS_ALLOC_FAILED;
    h->magic = HANDLE_MAGIC;
    h->pointer_mode = CUSPARSE_POINTER_MODE_HOST;
    tw_ctx_primary_activate(tw_device_current());
    *handle = h;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseDestroy(cusparseHandle_t handle)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    handle->magic = 0;
    free(handle);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseSetStream(cusparseHandle_t handle, cudaStream_t stream)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseGetStream(cusparseHandle_t handle, cudaStream_t *stream)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (stream == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseSetPointerMode(cusparseHandle_t handle, cusparsePointerMode_t mode)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (mode != CUSPARSE_POINTER_MODE_HOST && mode != CUSPARSE_POINTER_MODE_DEVICE)
        return CUSPARSE_STATUS_INVALID_VALUE;
    handle->pointer_mode = mode;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseGetPointerMode(cusparseHandle_t handle, cusparsePointerMode_t *mode)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (mode == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *mode = handle->pointer_mode;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseGetVersion(cusparseHandle_t handle, int *version)
{
    if (!handle_ok(handle))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (version == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *version = CUSPARSE_VERSION;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseGetProperty(libraryPropertyType type, int *value)
{
    if (value == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    switch (type) {
    case MAJOR_VERSION: *value = CUSPARSE_VER_MAJOR; return CUSPARSE_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUSPARSE_VER_MINOR; return CUSPARSE_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUSPARSE_VER_PATCH; return CUSPARSE_STATUS_SUCCESS;
    default: return CUSPARSE_STATUS_INVALID_VALUE;
    }
}

TW_EXPORT const char *cusparseGetErrorName(cusparseStatus_t status)
{
    switch (status) {
    case CUSPARSE_STATUS_SUCCESS: return "CUSPARSE_STATUS_SUCCESS";
    case CUSPARSE_STATUS_NOT_INITIALIZED: return "CUSPARSE_STATUS_NOT_INITIALIZED";
    case CUSPARSE_STATUS_ALLOC_FAILED: return "CUSPARSE_STATUS_ALLOC_FAILED";
    case CUSPARSE_STATUS_INVALID_VALUE: return "CUSPARSE_STATUS_INVALID_VALUE";
    case CUSPARSE_STATUS_NOT_SUPPORTED: return "CUSPARSE_STATUS_NOT_SUPPORTED";
    case CUSPARSE_STATUS_INTERNAL_ERROR: return "CUSPARSE_STATUS_INTERNAL_ERROR";
    default: return "CUSPARSE_STATUS_UNKNOWN";
    }
}

TW_EXPORT const char *cusparseGetErrorString(cusparseStatus_t status)
{
    switch (status) {
    case CUSPARSE_STATUS_SUCCESS: return "success";
    case CUSPARSE_STATUS_NOT_INITIALIZED: return "initialization error";
    case CUSPARSE_STATUS_ALLOC_FAILED: return "out of memory";
    case CUSPARSE_STATUS_INVALID_VALUE: return "invalid value";
    case CUSPARSE_STATUS_NOT_SUPPORTED: return "operation not supported (timewarp: not implemented)";
    default: return cusparseGetErrorName(status);
    }
}

/* ------------------------------------------------------------------ descriptors */

static cusparseStatus_t create_sparse(cusparseSpMatDescr_t *out, cusparseFormat_t format, int64_t rows,
                                      int64_t cols, int64_t nnz, void *a, void *b, void *values,
                                      cusparseIndexType_t offset_type, cusparseIndexType_t index_type,
                                      cudaDataType value_type)
{
    if (out == NULL || rows < 0 || cols < 0 || nnz < 0 || (nnz > 0 && (b == NULL || values == NULL)))
        return CUSPARSE_STATUS_INVALID_VALUE;
    struct cusparseSpMatDescr *m = calloc(1, sizeof *m);
    if (m == NULL)
        return CUSPARSE_STATUS_ALLOC_FAILED;
    *m = (struct cusparseSpMatDescr){SPMAT_MAGIC, format, rows, cols, nnz, a, b, values, offset_type, index_type,
                                     value_type, 1, 0, 0};
    *out = m;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseCreateCsr(cusparseSpMatDescr_t *out, int64_t rows, int64_t cols, int64_t nnz,
                                             void *offsets, void *columns, void *values,
                                             cusparseIndexType_t offset_type, cusparseIndexType_t index_type,
                                             cusparseIndexBase_t base, cudaDataType value_type)
{
    if (offsets == NULL && rows > 0)
        return CUSPARSE_STATUS_INVALID_VALUE;
    return create_sparse(out, CUSPARSE_FORMAT_CSR, rows, cols, nnz, offsets, columns, values, offset_type,
                         index_type, value_type);
}

TW_EXPORT cusparseStatus_t cusparseCreateCoo(cusparseSpMatDescr_t *out, int64_t rows, int64_t cols, int64_t nnz,
                                             void *row_ind, void *col_ind, void *values, cusparseIndexType_t type,
                                             cusparseIndexBase_t base, cudaDataType value_type)
{
    if (row_ind == NULL && nnz > 0)
        return CUSPARSE_STATUS_INVALID_VALUE;
    return create_sparse(out, CUSPARSE_FORMAT_COO, rows, cols, nnz, row_ind, col_ind, values, type, type,
                         value_type);
}

TW_EXPORT cusparseStatus_t cusparseCsrSetPointers(cusparseSpMatDescr_t m, void *offsets, void *columns,
                                                  void *values)
{
    if (!spmat_ok(m) || m->format != CUSPARSE_FORMAT_CSR)
        return CUSPARSE_STATUS_INVALID_VALUE;
    m->offsets_or_rows = offsets;
    m->columns = columns;
    m->values = values;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseCsrSetStridedBatch(cusparseSpMatDescr_t m, int batch, int64_t offsets_stride,
                                                      int64_t values_stride)
{
    if (!spmat_ok(m) || batch < 1)
        return CUSPARSE_STATUS_INVALID_VALUE;
    m->batch = batch;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseSpMatGetSize(cusparseConstSpMatDescr_t m, int64_t *rows, int64_t *cols,
                                                int64_t *nnz)
{
    if (!spmat_ok(m) || rows == NULL || cols == NULL || nnz == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    *rows = m->rows;
    *cols = m->cols;
    *nnz = m->nnz;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseSpMatSetAttribute(cusparseSpMatDescr_t m, cusparseSpMatAttribute_t attribute,
                                                     void *data, size_t size)
{
    if (!spmat_ok(m) || data == NULL || size < sizeof(int))
        return CUSPARSE_STATUS_INVALID_VALUE;
    if (attribute == CUSPARSE_SPMAT_FILL_MODE)
        m->fill_mode = *(int *)data;
    else if (attribute == CUSPARSE_SPMAT_DIAG_TYPE)
        m->diag_type = *(int *)data;
    else
        return CUSPARSE_STATUS_INVALID_VALUE;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseDestroySpMat(cusparseConstSpMatDescr_t m)
{
    if (m == NULL)
        return CUSPARSE_STATUS_SUCCESS;
    if (!spmat_ok(m))
        return CUSPARSE_STATUS_INVALID_VALUE;
    ((struct cusparseSpMatDescr *)m)->magic = 0;
    free((void *)m);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseCreateDnMat(cusparseDnMatDescr_t *out, int64_t rows, int64_t cols, int64_t ld,
                                               void *values, cudaDataType value_type, cusparseOrder_t order)
{
    int64_t needed = order == CUSPARSE_ORDER_COL ? rows : cols;
    if (out == NULL || rows < 0 || cols < 0 || ld < needed)
        return CUSPARSE_STATUS_INVALID_VALUE;
    struct cusparseDnMatDescr *m = calloc(1, sizeof *m);
    if (m == NULL)
        return CUSPARSE_STATUS_ALLOC_FAILED;
    *m = (struct cusparseDnMatDescr){DNMAT_MAGIC, rows, cols, ld, values, value_type, order, 1, 0};
    *out = m;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseDnMatSetStridedBatch(cusparseDnMatDescr_t m, int batch, int64_t stride)
{
    if (!dnmat_ok(m) || batch < 1)
        return CUSPARSE_STATUS_INVALID_VALUE;
    m->batch = batch;
    m->batch_stride = stride;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseDestroyDnMat(cusparseConstDnMatDescr_t m)
{
    if (m == NULL)
        return CUSPARSE_STATUS_SUCCESS;
    if (!dnmat_ok(m))
        return CUSPARSE_STATUS_INVALID_VALUE;
    ((struct cusparseDnMatDescr *)m)->magic = 0;
    free((void *)m);
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseCreateDnVec(cusparseDnVecDescr_t *out, int64_t size, void *values,
                                               cudaDataType value_type)
{
    if (out == NULL || size < 0)
        return CUSPARSE_STATUS_INVALID_VALUE;
    struct cusparseDnVecDescr *v = calloc(1, sizeof *v);
    if (v == NULL)
        return CUSPARSE_STATUS_ALLOC_FAILED;
    *v = (struct cusparseDnVecDescr){DNVEC_MAGIC, size, values, value_type};
    *out = v;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseDestroyDnVec(cusparseConstDnVecDescr_t v)
{
    if (v == NULL)
        return CUSPARSE_STATUS_SUCCESS;
    if (!dnvec_ok(v))
        return CUSPARSE_STATUS_INVALID_VALUE;
    ((struct cusparseDnVecDescr *)v)->magic = 0;
    free((void *)v);
    return CUSPARSE_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ compute */

/* Bytes of the stored sparse matrix: values and column indices per non-zero, plus row offsets
 * (CSR) or row indices (COO). */
static uint64_t sparse_bytes(const struct cusparseSpMatDescr *a)
{
    uint64_t per_nnz = value_bytes(a->value_type) + index_bytes(a->index_type);
    uint64_t rows = a->format == CUSPARSE_FORMAT_COO ? (uint64_t)a->nnz * index_bytes(a->offset_type)
                                                      : (uint64_t)(a->rows + 1) * index_bytes(a->offset_type);
    return (uint64_t)a->batch * ((uint64_t)a->nnz * per_nnz + rows);
}

static void submit(cusparseHandle_t h, const char *routine, const struct cusparseSpMatDescr *a, int64_t n,
                   uint64_t bytes, uint64_t flops, cudaDataType compute)
{
    tw_stream *s = tw_stream_resolve(h->stream);
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_LIBRARY;
    desc.device = (uint32_t)tw_stream_device(s);
    desc.dtype_a = desc.dtype_out = tw_dtype_from_cuda(a->value_type);
    desc.dtype_compute = tw_dtype_from_cuda(compute);
    desc.dims[0] = a->rows;
    desc.dims[1] = n;
    desc.dims[2] = a->cols;
    desc.dims[3] = a->batch;
    desc.dims[4] = a->nnz;
    desc.bytes = bytes;
    desc.flops = flops;
    desc.name_id = tw_name_intern(routine);
    tw_submit(s, &desc);
}

static cusparseStatus_t check_spmm(cusparseHandle_t h, cusparseOperation_t op_a, cusparseOperation_t op_b,
                                   const void *alpha, const struct cusparseSpMatDescr *a,
                                   const struct cusparseDnMatDescr *b, const void *beta,
                                   const struct cusparseDnMatDescr *c)
{
    if (!handle_ok(h))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (alpha == NULL || beta == NULL || !spmat_ok(a) || !dnmat_ok(b) || !dnmat_ok(c))
        return CUSPARSE_STATUS_INVALID_VALUE;
    int64_t a_rows = op_a == CUSPARSE_OPERATION_NON_TRANSPOSE ? a->rows : a->cols;
    int64_t a_cols = op_a == CUSPARSE_OPERATION_NON_TRANSPOSE ? a->cols : a->rows;
    int64_t b_rows = op_b == CUSPARSE_OPERATION_NON_TRANSPOSE ? b->rows : b->cols;
    int64_t b_cols = op_b == CUSPARSE_OPERATION_NON_TRANSPOSE ? b->cols : b->rows;
    if (a_cols != b_rows || c->rows != a_rows || c->cols != b_cols)
        return CUSPARSE_STATUS_INVALID_VALUE;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseSpMM_bufferSize(cusparseHandle_t h, cusparseOperation_t op_a,
                                                   cusparseOperation_t op_b, const void *alpha,
                                                   cusparseConstSpMatDescr_t a, cusparseConstDnMatDescr_t b,
                                                   const void *beta, cusparseDnMatDescr_t c, cudaDataType compute,
                                                   cusparseSpMMAlg_t alg, size_t *size)
{
    cusparseStatus_t st = check_spmm(h, op_a, op_b, alpha, a, b, beta, c);
    if (st == CUSPARSE_STATUS_SUCCESS && size == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    if (st == CUSPARSE_STATUS_SUCCESS)
        *size = 0; /* the emulated kernel needs no scratch */
    return st;
}

TW_EXPORT cusparseStatus_t cusparseSpMM(cusparseHandle_t h, cusparseOperation_t op_a, cusparseOperation_t op_b,
                                        const void *alpha, cusparseConstSpMatDescr_t a,
                                        cusparseConstDnMatDescr_t b, const void *beta, cusparseDnMatDescr_t c,
                                        cudaDataType compute, cusparseSpMMAlg_t alg, void *buffer)
{
    cusparseStatus_t st = check_spmm(h, op_a, op_b, alpha, a, b, beta, c);
    if (st != CUSPARSE_STATUS_SUCCESS)
        return st;
    int64_t n = c->cols;
    uint64_t dense = (uint64_t)c->batch * ((uint64_t)b->rows * b->cols * value_bytes(b->value_type) +
                                           (uint64_t)c->rows * c->cols * value_bytes(c->value_type));
    submit(h, "cusparseSpMM", a, n, sparse_bytes(a) + dense, 2ull * a->batch * a->nnz * n, compute);
    return CUSPARSE_STATUS_SUCCESS;
}

static cusparseStatus_t check_spmv(cusparseHandle_t h, cusparseOperation_t op, const void *alpha,
                                   const struct cusparseSpMatDescr *a, const struct cusparseDnVecDescr *x,
                                   const void *beta, const struct cusparseDnVecDescr *y)
{
    if (!handle_ok(h))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (alpha == NULL || beta == NULL || !spmat_ok(a) || !dnvec_ok(x) || !dnvec_ok(y))
        return CUSPARSE_STATUS_INVALID_VALUE;
    bool plain = op == CUSPARSE_OPERATION_NON_TRANSPOSE;
    if (x->size != (plain ? a->cols : a->rows) || y->size != (plain ? a->rows : a->cols))
        return CUSPARSE_STATUS_INVALID_VALUE;
    return CUSPARSE_STATUS_SUCCESS;
}

TW_EXPORT cusparseStatus_t cusparseSpMV_bufferSize(cusparseHandle_t h, cusparseOperation_t op, const void *alpha,
                                                   cusparseConstSpMatDescr_t a, cusparseConstDnVecDescr_t x,
                                                   const void *beta, cusparseDnVecDescr_t y, cudaDataType compute,
                                                   cusparseSpMVAlg_t alg, size_t *size)
{
    cusparseStatus_t st = check_spmv(h, op, alpha, a, x, beta, y);
    if (st == CUSPARSE_STATUS_SUCCESS && size == NULL)
        return CUSPARSE_STATUS_INVALID_VALUE;
    if (st == CUSPARSE_STATUS_SUCCESS)
        *size = 0;
    return st;
}

TW_EXPORT cusparseStatus_t cusparseSpMV(cusparseHandle_t h, cusparseOperation_t op, const void *alpha,
                                        cusparseConstSpMatDescr_t a, cusparseConstDnVecDescr_t x, const void *beta,
                                        cusparseDnVecDescr_t y, cudaDataType compute, cusparseSpMVAlg_t alg,
                                        void *buffer)
{
    cusparseStatus_t st = check_spmv(h, op, alpha, a, x, beta, y);
    if (st != CUSPARSE_STATUS_SUCCESS)
        return st;
    uint64_t dense = (uint64_t)x->size * value_bytes(x->value_type) + (uint64_t)y->size * value_bytes(y->value_type);
    submit(h, "cusparseSpMV", a, 1, sparse_bytes(a) + dense, 2ull * a->nnz, compute);
    return CUSPARSE_STATUS_SUCCESS;
}

/* Row indices of sorted COO to CSR row offsets: reads nnz indices, writes m + 1 offsets. */
TW_EXPORT cusparseStatus_t cusparseXcoo2csr(cusparseHandle_t h, const int *coo_rows, int nnz, int m,
                                            int *csr_offsets, cusparseIndexBase_t base)
{
    if (!handle_ok(h))
        return CUSPARSE_STATUS_NOT_INITIALIZED;
    if (nnz < 0 || m < 0 || csr_offsets == NULL || (nnz > 0 && coo_rows == NULL))
        return CUSPARSE_STATUS_INVALID_VALUE;
    struct cusparseSpMatDescr shape = {SPMAT_MAGIC, CUSPARSE_FORMAT_COO, m, 0, nnz, NULL, NULL, NULL,
                                       CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUDA_R_32I, 1, 0, 0};
    submit(h, "cusparseXcoo2csr", &shape, 0, (uint64_t)nnz * 4 + (uint64_t)(m + 1) * 4, 0, CUDA_R_32I);
    return CUSPARSE_STATUS_SUCCESS;
}
