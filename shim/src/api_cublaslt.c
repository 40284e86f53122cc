/* cuBLASLt (cublasLt.h): handles, matmul / layout / preference descriptors as real structs
 * that keep every attribute a caller sets, a heuristic that returns one usable algorithm,
 * and cublasLtMatmul recorded as a TW_OP_GEMM with m, n, k and batch from the layouts.
 * torch passes its cuBLAS handle as the Lt handle, so matmul never looks inside it. */
#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>

#include "dtype_map.h"
#include "tw_core.h"

#define TW_CUBLASLT_VERSION (CUBLAS_VER_MAJOR * 10000 + CUBLAS_VER_MINOR * 100 + CUBLAS_VER_PATCH)
#define TW_LT_MAGIC 0x746c73616c627563ULL

struct cublasLtContext {
    uint64_t magic;
    int device;
};

/* The descriptors live in the caller-visible semi-opaque storage (Create allocates one,
 * Init_internal uses the caller's), so each struct must fit its opaque type. */
typedef struct lt_matmul_desc {
    int32_t compute_type, scale_type, pointer_mode, transa, transb, transc, fill_mode;
    uint32_t epilogue;
    void *bias_pointer;
    int64_t bias_batch_stride;
    void *aux_pointer;
    int64_t aux_ld, aux_batch_stride, alpha_vector_batch_stride;
    int32_t sm_count_target;
    void *a_scale_pointer, *b_scale_pointer, *c_scale_pointer, *d_scale_pointer;
    void *amax_d_pointer;
    int32_t aux_data_type;
    void *aux_scale_pointer, *aux_amax_pointer;
    int8_t fast_accum;
    int32_t bias_data_type;
    int32_t a_scale_mode, b_scale_mode, c_scale_mode, d_scale_mode, aux_scale_mode;
    void *d_out_scale_pointer;
    int32_t d_out_scale_mode;
    void *emulation_desc;
} lt_matmul_desc;
static_assert(sizeof(lt_matmul_desc) <= sizeof(cublasLtMatmulDescOpaque_t), "matmul desc size");

typedef struct lt_layout {
    uint32_t type;            /* cudaDataType */
    int32_t order;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch_count;
    uint32_t batch_mode;
    int64_t strided_batch_offset, plane_offset;
} lt_layout;
static_assert(sizeof(lt_layout) <= sizeof(cublasLtMatrixLayoutOpaque_t), "layout size");

typedef struct lt_pref {
    uint32_t search_mode;
    uint64_t max_workspace_bytes;
    uint32_t reduction_scheme_mask;
    uint32_t min_alignment_a, min_alignment_b, min_alignment_c, min_alignment_d;
    float max_waves_count;
    uint64_t impl_mask;
} lt_pref;
static_assert(sizeof(lt_pref) <= sizeof(cublasLtMatmulPreferenceOpaque_t), "preference size");

/* The algorithm's configuration, kept in cublasLtMatmulAlgo_t's data words. */
typedef struct lt_algo {
    int32_t id;
    uint32_t tile_id;
    int32_t splitk_num;
    uint32_t reduction_scheme, cta_swizzling, custom_option, stages_id;
    uint16_t inner_shape_id, cluster_shape_id;
    uint32_t initialized;
} lt_algo;
static_assert(sizeof(lt_algo) <= sizeof(cublasLtMatmulAlgo_t), "algo size");

/* attribute id -> (offset, size) in a descriptor struct; size 0 = unknown attribute */
typedef struct attr_slot { uint16_t offset, size; } attr_slot;
#define SLOT(type, field) {offsetof(type, field), sizeof(((type *)0)->field)}

static const attr_slot matmul_slots[] = {
    [CUBLASLT_MATMUL_DESC_COMPUTE_TYPE] = SLOT(lt_matmul_desc, compute_type),
    [CUBLASLT_MATMUL_DESC_SCALE_TYPE] = SLOT(lt_matmul_desc, scale_type),
    [CUBLASLT_MATMUL_DESC_POINTER_MODE] = SLOT(lt_matmul_desc, pointer_mode),
    [CUBLASLT_MATMUL_DESC_TRANSA] = SLOT(lt_matmul_desc, transa),
    [CUBLASLT_MATMUL_DESC_TRANSB] = SLOT(lt_matmul_desc, transb),
    [CUBLASLT_MATMUL_DESC_TRANSC] = SLOT(lt_matmul_desc, transc),
    [CUBLASLT_MATMUL_DESC_FILL_MODE] = SLOT(lt_matmul_desc, fill_mode),
    [CUBLASLT_MATMUL_DESC_EPILOGUE] = SLOT(lt_matmul_desc, epilogue),
    [CUBLASLT_MATMUL_DESC_BIAS_POINTER] = SLOT(lt_matmul_desc, bias_pointer),
    [CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE] = SLOT(lt_matmul_desc, bias_batch_stride),
    [CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER] = SLOT(lt_matmul_desc, aux_pointer),
    [CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD] = SLOT(lt_matmul_desc, aux_ld),
    [CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE] = SLOT(lt_matmul_desc, aux_batch_stride),
    [CUBLASLT_MATMUL_DESC_ALPHA_VECTOR_BATCH_STRIDE] = SLOT(lt_matmul_desc, alpha_vector_batch_stride),
    [CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET] = SLOT(lt_matmul_desc, sm_count_target),
    [CUBLASLT_MATMUL_DESC_A_SCALE_POINTER] = SLOT(lt_matmul_desc, a_scale_pointer),
    [CUBLASLT_MATMUL_DESC_B_SCALE_POINTER] = SLOT(lt_matmul_desc, b_scale_pointer),
    [CUBLASLT_MATMUL_DESC_C_SCALE_POINTER] = SLOT(lt_matmul_desc, c_scale_pointer),
    [CUBLASLT_MATMUL_DESC_D_SCALE_POINTER] = SLOT(lt_matmul_desc, d_scale_pointer),
    [CUBLASLT_MATMUL_DESC_AMAX_D_POINTER] = SLOT(lt_matmul_desc, amax_d_pointer),
    [CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE] = SLOT(lt_matmul_desc, aux_data_type),
    [CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_SCALE_POINTER] = SLOT(lt_matmul_desc, aux_scale_pointer),
    [CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_AMAX_POINTER] = SLOT(lt_matmul_desc, aux_amax_pointer),
    [CUBLASLT_MATMUL_DESC_FAST_ACCUM] = SLOT(lt_matmul_desc, fast_accum),
    [CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE] = SLOT(lt_matmul_desc, bias_data_type),
    [CUBLASLT_MATMUL_DESC_A_SCALE_MODE] = SLOT(lt_matmul_desc, a_scale_mode),
    [CUBLASLT_MATMUL_DESC_B_SCALE_MODE] = SLOT(lt_matmul_desc, b_scale_mode),
    [CUBLASLT_MATMUL_DESC_C_SCALE_MODE] = SLOT(lt_matmul_desc, c_scale_mode),
    [CUBLASLT_MATMUL_DESC_D_SCALE_MODE] = SLOT(lt_matmul_desc, d_scale_mode),
    [CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_SCALE_MODE] = SLOT(lt_matmul_desc, aux_scale_mode),
    [CUBLASLT_MATMUL_DESC_D_OUT_SCALE_POINTER] = SLOT(lt_matmul_desc, d_out_scale_pointer),
    [CUBLASLT_MATMUL_DESC_D_OUT_SCALE_MODE] = SLOT(lt_matmul_desc, d_out_scale_mode),
    [CUBLASLT_MATMUL_DESC_EMULATION_DESCRIPTOR] = SLOT(lt_matmul_desc, emulation_desc),
};

static const attr_slot layout_slots[] = {
    [CUBLASLT_MATRIX_LAYOUT_TYPE] = SLOT(lt_layout, type),
    [CUBLASLT_MATRIX_LAYOUT_ORDER] = SLOT(lt_layout, order),
    [CUBLASLT_MATRIX_LAYOUT_ROWS] = SLOT(lt_layout, rows),
    [CUBLASLT_MATRIX_LAYOUT_COLS] = SLOT(lt_layout, cols),
    [CUBLASLT_MATRIX_LAYOUT_LD] = SLOT(lt_layout, ld),
    [CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT] = SLOT(lt_layout, batch_count),
    [CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET] = SLOT(lt_layout, strided_batch_offset),
    [CUBLASLT_MATRIX_LAYOUT_PLANE_OFFSET] = SLOT(lt_layout, plane_offset),
    [CUBLASLT_MATRIX_LAYOUT_BATCH_MODE] = SLOT(lt_layout, batch_mode),
};

static const attr_slot pref_slots[] = {
    [CUBLASLT_MATMUL_PREF_SEARCH_MODE] = SLOT(lt_pref, search_mode),
    [CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES] = SLOT(lt_pref, max_workspace_bytes),
    [CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK] = SLOT(lt_pref, reduction_scheme_mask),
    [CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = SLOT(lt_pref, min_alignment_a),
    [CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES] = SLOT(lt_pref, min_alignment_b),
    [CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES] = SLOT(lt_pref, min_alignment_c),
    [CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES] = SLOT(lt_pref, min_alignment_d),
    [CUBLASLT_MATMUL_PREF_MAX_WAVES_COUNT] = SLOT(lt_pref, max_waves_count),
    [CUBLASLT_MATMUL_PREF_IMPL_MASK] = SLOT(lt_pref, impl_mask),
};

static const attr_slot algo_slots[] = {
    [CUBLASLT_ALGO_CONFIG_ID] = SLOT(lt_algo, id),
    [CUBLASLT_ALGO_CONFIG_TILE_ID] = SLOT(lt_algo, tile_id),
    [CUBLASLT_ALGO_CONFIG_SPLITK_NUM] = SLOT(lt_algo, splitk_num),
    [CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME] = SLOT(lt_algo, reduction_scheme),
    [CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING] = SLOT(lt_algo, cta_swizzling),
    [CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION] = SLOT(lt_algo, custom_option),
    [CUBLASLT_ALGO_CONFIG_STAGES_ID] = SLOT(lt_algo, stages_id),
    [CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID] = SLOT(lt_algo, inner_shape_id),
    [CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID] = SLOT(lt_algo, cluster_shape_id),
};

#define NSLOTS(t) (sizeof(t) / sizeof((t)[0]))

/* cuBLASLt's rule: the buffer must be exactly the attribute's size. */
static cublasStatus_t attr_set(void *obj, const attr_slot *slots, size_t nslots, int attr,
                               const void *buf, size_t bytes, const char *what)
{
    if (!obj)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (attr < 0 || (size_t)attr >= nslots || slots[attr].size == 0) {
        TW_WARN("%s: attribute %d is not supported", what, attr);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (!buf || bytes != slots[attr].size)
        return CUBLAS_STATUS_INVALID_VALUE;
    memcpy((char *)obj + slots[attr].offset, buf, bytes);
    return CUBLAS_STATUS_SUCCESS;
}

/* buf NULL with bytes 0 asks for the size only (sizeWritten). */
static cublasStatus_t attr_get(const void *obj, const attr_slot *slots, size_t nslots, int attr,
                               void *buf, size_t bytes, size_t *written, const char *what)
{
    if (!obj)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (attr < 0 || (size_t)attr >= nslots || slots[attr].size == 0) {
        TW_WARN("%s: attribute %d is not supported", what, attr);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    size_t size = slots[attr].size;
    if (bytes == 0 && !buf) {
        if (!written)
            return CUBLAS_STATUS_INVALID_VALUE;
        *written = size;
        return CUBLAS_STATUS_SUCCESS;
    }
    if (!buf || bytes < size)
        return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(buf, (const char *)obj + slots[attr].offset, size);
    if (written)
        *written = size;
    return CUBLAS_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ handle, versions */

TW_EXPORT cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle)
{
    if (!handle)
        return CUBLAS_STATUS_INVALID_VALUE;
    struct cublasLtContext *h = calloc(1, sizeof(*h));
    if (!h)
        return CUBLAS_STATUS_ALLOC_FAILED;
    h->magic = TW_LT_MAGIC;
    h->device = tw_device_current();
    *handle = h;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle)
{
    if (!handle || handle->magic != TW_LT_MAGIC)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->magic = 0;
    free(handle);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT size_t cublasLtGetVersion(void) { return TW_CUBLASLT_VERSION; }
TW_EXPORT size_t cublasLtGetCudartVersion(void) { return CUDART_VERSION; }

TW_EXPORT cublasStatus_t cublasLtGetProperty(libraryPropertyType type, int *value)
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

/* Same codes and texts as cuBLAS (api_cublas.c). */
TW_EXPORT const char *cublasLtGetStatusName(cublasStatus_t status) { return cublasGetStatusName(status); }
TW_EXPORT const char *cublasLtGetStatusString(cublasStatus_t status) { return cublasGetStatusString(status); }

/* ------------------------------------------------------------------ matmul descriptor */

static void matmul_desc_defaults(lt_matmul_desc *d, cublasComputeType_t compute, cudaDataType_t scale)
{
    memset(d, 0, sizeof(*d));
    d->compute_type = compute;
    d->scale_type = scale;
    d->pointer_mode = CUBLASLT_POINTER_MODE_HOST;
    d->transa = d->transb = d->transc = CUBLAS_OP_N;
    d->fill_mode = CUBLAS_FILL_MODE_FULL;
    d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    d->aux_data_type = -1;
    d->bias_data_type = -1;
}

TW_EXPORT cublasStatus_t cublasLtMatmulDescInit_internal(cublasLtMatmulDesc_t desc, size_t size,
                                                         cublasComputeType_t compute,
                                                         cudaDataType_t scale)
{
    if (!desc || size < sizeof(lt_matmul_desc))
        return CUBLAS_STATUS_INVALID_VALUE;
    matmul_desc_defaults((lt_matmul_desc *)desc, compute, scale);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc,
                                                  cublasComputeType_t compute, cudaDataType_t scale)
{
    if (!desc)
        return CUBLAS_STATUS_INVALID_VALUE;
    cublasLtMatmulDescOpaque_t *d = calloc(1, sizeof(*d));
    if (!d)
        return CUBLAS_STATUS_ALLOC_FAILED;
    matmul_desc_defaults((lt_matmul_desc *)d, compute, scale);
    *desc = d;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc)
{
    free(desc);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                                        cublasLtMatmulDescAttributes_t attr,
                                                        const void *buf, size_t bytes)
{
    return attr_set(desc, matmul_slots, NSLOTS(matmul_slots), attr, buf, bytes,
                    "cublasLtMatmulDescSetAttribute");
}

TW_EXPORT cublasStatus_t cublasLtMatmulDescGetAttribute(cublasLtMatmulDesc_t desc,
                                                        cublasLtMatmulDescAttributes_t attr,
                                                        void *buf, size_t bytes, size_t *written)
{
    return attr_get(desc, matmul_slots, NSLOTS(matmul_slots), attr, buf, bytes, written,
                    "cublasLtMatmulDescGetAttribute");
}

/* ------------------------------------------------------------------ matrix layout */

static void layout_defaults(lt_layout *l, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld)
{
    memset(l, 0, sizeof(*l));
    l->type = type;
    l->order = CUBLASLT_ORDER_COL;
    l->rows = rows;
    l->cols = cols;
    l->ld = ld;
    l->batch_count = 1;
}

TW_EXPORT cublasStatus_t cublasLtMatrixLayoutInit_internal(cublasLtMatrixLayout_t layout, size_t size,
                                                           cudaDataType type, uint64_t rows,
                                                           uint64_t cols, int64_t ld)
{
    if (!layout || size < sizeof(lt_layout))
        return CUBLAS_STATUS_INVALID_VALUE;
    layout_defaults((lt_layout *)layout, type, rows, cols, ld);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type,
                                                    uint64_t rows, uint64_t cols, int64_t ld)
{
    if (!layout)
        return CUBLAS_STATUS_INVALID_VALUE;
    cublasLtMatrixLayoutOpaque_t *l = calloc(1, sizeof(*l));
    if (!l)
        return CUBLAS_STATUS_ALLOC_FAILED;
    layout_defaults((lt_layout *)l, type, rows, cols, ld);
    *layout = l;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout)
{
    free(layout);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout,
                                                          cublasLtMatrixLayoutAttribute_t attr,
                                                          const void *buf, size_t bytes)
{
    return attr_set(layout, layout_slots, NSLOTS(layout_slots), attr, buf, bytes,
                    "cublasLtMatrixLayoutSetAttribute");
}

TW_EXPORT cublasStatus_t cublasLtMatrixLayoutGetAttribute(cublasLtMatrixLayout_t layout,
                                                          cublasLtMatrixLayoutAttribute_t attr,
                                                          void *buf, size_t bytes, size_t *written)
{
    return attr_get(layout, layout_slots, NSLOTS(layout_slots), attr, buf, bytes, written,
                    "cublasLtMatrixLayoutGetAttribute");
}

/* ------------------------------------------------------------------ preference */

static void pref_defaults(lt_pref *p)
{
    memset(p, 0, sizeof(*p));
    p->search_mode = CUBLASLT_SEARCH_BEST_FIT;
    p->reduction_scheme_mask = CUBLASLT_REDUCTION_SCHEME_MASK;
    p->min_alignment_a = p->min_alignment_b = p->min_alignment_c = p->min_alignment_d = 256;
    p->impl_mask = UINT64_MAX;
}

TW_EXPORT cublasStatus_t cublasLtMatmulPreferenceInit_internal(cublasLtMatmulPreference_t pref, size_t size)
{
    if (!pref || size < sizeof(lt_pref))
        return CUBLAS_STATUS_INVALID_VALUE;
    pref_defaults((lt_pref *)pref);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref)
{
    if (!pref)
        return CUBLAS_STATUS_INVALID_VALUE;
    cublasLtMatmulPreferenceOpaque_t *p = calloc(1, sizeof(*p));
    if (!p)
        return CUBLAS_STATUS_ALLOC_FAILED;
    pref_defaults((lt_pref *)p);
    *pref = p;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref)
{
    free(pref);
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                              cublasLtMatmulPreferenceAttributes_t attr,
                                                              const void *buf, size_t bytes)
{
    return attr_set(pref, pref_slots, NSLOTS(pref_slots), attr, buf, bytes,
                    "cublasLtMatmulPreferenceSetAttribute");
}

TW_EXPORT cublasStatus_t cublasLtMatmulPreferenceGetAttribute(cublasLtMatmulPreference_t pref,
                                                              cublasLtMatmulPreferenceAttributes_t attr,
                                                              void *buf, size_t bytes, size_t *written)
{
    return attr_get(pref, pref_slots, NSLOTS(pref_slots), attr, buf, bytes, written,
                    "cublasLtMatmulPreferenceGetAttribute");
}

/* ------------------------------------------------------------------ algorithms */

typedef struct lt_shape {
    int64_t m, n, k, batch;
} lt_shape;

/* m, n, k from the layouts as cuBLASLt reads them: A is stored k x m when transposed. */
static bool matmul_shape(const lt_matmul_desc *op, const lt_layout *a, const lt_layout *b,
                         const lt_layout *d, lt_shape *out)
{
    if (!op || !a || !b || !d)
        return false;
    bool ta = op->transa != CUBLAS_OP_N, tb = op->transb != CUBLAS_OP_N;
    out->m = (int64_t)(ta ? a->cols : a->rows);
    out->k = (int64_t)(ta ? a->rows : a->cols);
    out->n = (int64_t)(tb ? b->rows : b->cols);
    int64_t kb = (int64_t)(tb ? b->cols : b->rows);
    if (kb != out->k || (int64_t)d->rows != out->m || (int64_t)d->cols != out->n)
        return false;
    int32_t batch = d->batch_count;
    if (a->batch_count > batch) batch = a->batch_count;
    if (b->batch_count > batch) batch = b->batch_count;
    out->batch = batch > 0 ? batch : 1;
    return true;
}

/* One usable algorithm: 128x128 tiles, no workspace (so any preference's limit holds), and
 * the waves that tiling gives on the device's SMs. */
static void fill_result(const lt_shape *s, cublasLtMatmulHeuristicResult_t *r)
{
    memset(r, 0, sizeof(*r));
    lt_algo *algo = (lt_algo *)&r->algo;
    algo->id = 0;
    algo->tile_id = CUBLASLT_MATMUL_TILE_128x128;
    algo->splitk_num = 1;
    algo->reduction_scheme = CUBLASLT_REDUCTION_SCHEME_NONE;
    algo->initialized = 1;
    r->workspaceSize = 0;
    r->state = CUBLAS_STATUS_SUCCESS;
    int sms = tw_spec()->sm_count > 0 ? tw_spec()->sm_count : 1;
    double tiles = (double)((s->m + 127) / 128) * (double)((s->n + 127) / 128) * (double)s->batch;
    r->wavesCount = (float)(tiles / sms);
}

TW_EXPORT cublasStatus_t cublasLtMatmulAlgoGetHeuristic(
    cublasLtHandle_t handle, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
    cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
    cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t results[],
    int *returned)
{
    if (requested <= 0 || !results || !returned)
        return CUBLAS_STATUS_INVALID_VALUE;
    lt_shape s;
    if (!matmul_shape((const lt_matmul_desc *)op, (const lt_layout *)a, (const lt_layout *)b,
                      (const lt_layout *)d, &s)) {
        *returned = 0;
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    fill_result(&s, &results[0]);
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulAlgoCheck(cublasLtHandle_t handle, cublasLtMatmulDesc_t op,
                                                 cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                                 cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                                 const cublasLtMatmulAlgo_t *algo,
                                                 cublasLtMatmulHeuristicResult_t *result)
{
    if (!algo || !result)
        return CUBLAS_STATUS_INVALID_VALUE;
    lt_shape s;
    if (!matmul_shape((const lt_matmul_desc *)op, (const lt_layout *)a, (const lt_layout *)b,
                      (const lt_layout *)d, &s))
        return CUBLAS_STATUS_INVALID_VALUE;
    cublasLtMatmulAlgo_t keep = *algo; /* algo may point into result */
    fill_result(&s, result);
    result->algo = keep;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulAlgoInit(cublasLtHandle_t handle, cublasComputeType_t compute,
                                                cudaDataType_t scale, cudaDataType_t at,
                                                cudaDataType_t bt, cudaDataType_t ct,
                                                cudaDataType_t dt, int algo_id,
                                                cublasLtMatmulAlgo_t *algo)
{
    if (!algo)
        return CUBLAS_STATUS_INVALID_VALUE;
    memset(algo, 0, sizeof(*algo));
    lt_algo *a = (lt_algo *)algo;
    a->id = algo_id;
    a->splitk_num = 1;
    a->initialized = 1;
    return CUBLAS_STATUS_SUCCESS;
}

TW_EXPORT cublasStatus_t cublasLtMatmulAlgoConfigSetAttribute(cublasLtMatmulAlgo_t *algo,
                                                              cublasLtMatmulAlgoConfigAttributes_t attr,
                                                              const void *buf, size_t bytes)
{
    return attr_set(algo, algo_slots, NSLOTS(algo_slots), attr, buf, bytes,
                    "cublasLtMatmulAlgoConfigSetAttribute");
}

TW_EXPORT cublasStatus_t cublasLtMatmulAlgoConfigGetAttribute(const cublasLtMatmulAlgo_t *algo,
                                                              cublasLtMatmulAlgoConfigAttributes_t attr,
                                                              void *buf, size_t bytes, size_t *written)
{
    return attr_get(algo, algo_slots, NSLOTS(algo_slots), attr, buf, bytes, written,
                    "cublasLtMatmulAlgoConfigGetAttribute");
}

/* ------------------------------------------------------------------ matmul */

static uint32_t epilogue_flags(uint32_t epilogue)
{
    uint32_t flags = 0;
    /* BIAS adds a bias vector; BGRAD* (bit 16, BGRADA/B) reduce one: both are bias epilogues */
    if (epilogue & (CUBLASLT_EPILOGUE_BIAS | 16u | CUBLASLT_EPILOGUE_BGRADA | CUBLASLT_EPILOGUE_BGRADB))
        flags |= TW_FLAG_BIAS_EPILOGUE;
    if (epilogue & (CUBLASLT_EPILOGUE_GELU | 64u))
        flags |= TW_FLAG_GELU_EPILOGUE;
    return flags;
}

TW_EXPORT cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t op_desc,
                                        const void *alpha, const void *A, cublasLtMatrixLayout_t a_desc,
                                        const void *B, cublasLtMatrixLayout_t b_desc, const void *beta,
                                        const void *C, cublasLtMatrixLayout_t c_desc, void *D,
                                        cublasLtMatrixLayout_t d_desc, const cublasLtMatmulAlgo_t *algo,
                                        void *workspace, size_t workspace_bytes, cudaStream_t stream)
{
    static _Atomic uint32_t name_id;
    const lt_matmul_desc *op = (const lt_matmul_desc *)op_desc;
    const lt_layout *a = (const lt_layout *)a_desc, *b = (const lt_layout *)b_desc,
                    *d = (const lt_layout *)d_desc;
    lt_shape s;
    if (!handle)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!matmul_shape(op, a, b, d, &s))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (s.m == 0 || s.n == 0)
        return CUBLAS_STATUS_SUCCESS;
    uint32_t id = atomic_load_explicit(&name_id, memory_order_relaxed);
    if (TW_UNLIKELY(!id)) {
        id = tw_name_intern("cublasLtMatmul");
        atomic_store_explicit(&name_id, id, memory_order_relaxed);
    }
    tw_stream *st = tw_stream_resolve(stream);
    tw_desc t = {0};
    t.kind = TW_OP_GEMM;
    t.device = (uint32_t)tw_stream_device(st);
    t.dtype_a = tw_dtype_from_cuda((int)a->type);
    t.dtype_b = tw_dtype_from_cuda((int)b->type);
    t.dtype_out = tw_dtype_from_cuda((int)d->type);
    t.dtype_compute = tw_dtype_from_cublas_compute(op->compute_type);
    t.flags = epilogue_flags(op->epilogue);
    if (op->transa != CUBLAS_OP_N)
        t.flags |= TW_FLAG_TRANS_A;
    if (op->transb != CUBLAS_OP_N)
        t.flags |= TW_FLAG_TRANS_B;
    t.dims[0] = s.m;
    t.dims[1] = s.n;
    t.dims[2] = s.k;
    t.dims[3] = s.batch;
    t.dims[4] = a->ld;
    t.dims[5] = b->ld;
    t.dims[6] = d->ld;
    uint64_t m = (uint64_t)s.m, n = (uint64_t)s.n, k = (uint64_t)s.k, batch = (uint64_t)s.batch;
    bool cplx = t.dtype_a == TW_DT_C64 || t.dtype_a == TW_DT_C128;
    t.flops = (cplx ? 8u : 2u) * m * n * k * batch;
    t.bytes = (m * k * tw_dtype_bytes(t.dtype_a) + k * n * tw_dtype_bytes(t.dtype_b) +
               m * n * tw_dtype_bytes(t.dtype_out)) * batch;
    t.name_id = id;
    tw_submit(st, &t);
    return CUBLAS_STATUS_SUCCESS;
}
