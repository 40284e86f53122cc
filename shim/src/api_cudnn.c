/* cuDNN v9 (cudnn_graph.h, the backend API that cudnn-frontend drives): handles, versions,
 * and backend descriptors as property bags. Finalize computes what cuDNN would (heuristic
 * results, engines, plan workspace), and finalizing an execution plan classifies its
 * operation graph once into a canonical tw_desc: a convolution (TW_OP_CONV), an SDPA graph
 * (TW_OP_ATTENTION) or any other graph (TW_OP_LIBRARY named by its operations).
 * cudnnBackendExecute submits that descriptor to the handle's stream. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cudnn_graph.h>

#include "dtype_map.h"
#include "tw_core.h"

#define TW_CUDNN_MAGIC 0x6e6e6475637774ULL      /* "twcudnn" */
#define TW_CUDNN_DESC_MAGIC 0x63736564646e6e75ULL

/* ------------------------------------------------------------------ handle and versions */

struct cudnnContext {
    uint64_t magic;
    cudaStream_t stream;
    int device;
};

static bool handle_ok(cudnnHandle_t h) { return h && h->magic == TW_CUDNN_MAGIC; }

static _Thread_local char last_error[256];

static cudnnStatus_t fail(cudnnStatus_t st, const char *fmt, const char *what, long long value)
{
    snprintf(last_error, sizeof(last_error), fmt, what, value);
    TW_WARN("cudnn: %s", last_error);
    return st;
}

TW_EXPORT size_t cudnnGetVersion(void) { return CUDNN_VERSION; }
/* Newest compute capability this cuDNN supports, as major*100 + minor*10. */
TW_EXPORT size_t cudnnGetMaxDeviceVersion(void) { return 1210; }
TW_EXPORT size_t cudnnGetCudartVersion(void) { return CUDART_VERSION; }

TW_EXPORT cudnnStatus_t cudnnGetProperty(libraryPropertyType type, int *value)
{
    if (!value)
        return CUDNN_STATUS_BAD_PARAM;
    switch (type) {
    case MAJOR_VERSION: *value = CUDNN_MAJOR; return CUDNN_STATUS_SUCCESS;
    case MINOR_VERSION: *value = CUDNN_MINOR; return CUDNN_STATUS_SUCCESS;
    case PATCH_LEVEL: *value = CUDNN_PATCHLEVEL; return CUDNN_STATUS_SUCCESS;
    default: return CUDNN_STATUS_BAD_PARAM;
    }
}

TW_EXPORT const char *cudnnGetErrorString(cudnnStatus_t status)
{
    switch (status) {
    case CUDNN_STATUS_SUCCESS: return "CUDNN_STATUS_SUCCESS";
    case CUDNN_STATUS_NOT_INITIALIZED: return "CUDNN_STATUS_NOT_INITIALIZED";
    case CUDNN_STATUS_BAD_PARAM: return "CUDNN_STATUS_BAD_PARAM";
    case CUDNN_STATUS_BAD_PARAM_NULL_POINTER: return "CUDNN_STATUS_BAD_PARAM_NULL_POINTER";
    case CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED: return "CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED";
    case CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE: return "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE";
    case CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE: return "CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE";
    case CUDNN_STATUS_NOT_SUPPORTED: return "CUDNN_STATUS_NOT_SUPPORTED";
    case CUDNN_STATUS_INTERNAL_ERROR: return "CUDNN_STATUS_INTERNAL_ERROR";
    case CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED:
        return "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED";
    case CUDNN_STATUS_EXECUTION_FAILED: return "CUDNN_STATUS_EXECUTION_FAILED";
    default: return "CUDNN_STATUS_UNKNOWN";
    }
}

TW_EXPORT void cudnnGetLastErrorString(char *message, size_t max_size)
{
    if (!message || max_size == 0)
        return;
    snprintf(message, max_size, "%s", last_error);
    last_error[0] = '\0';
}

/* Logging callbacks: the shim emits no cuDNN log messages, so the callback is only kept. */
static struct { unsigned mask; void *udata; cudnnCallback_t fn; } g_callback = {0, NULL, NULL};

TW_EXPORT cudnnStatus_t cudnnSetCallback(unsigned mask, void *udata, cudnnCallback_t fptr)
{
    g_callback.mask = mask;
    g_callback.udata = udata;
    g_callback.fn = fptr;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnGetCallback(unsigned *mask, void **udata, cudnnCallback_t *fptr)
{
    if (mask) *mask = g_callback.mask;
    if (udata) *udata = g_callback.udata;
    if (fptr) *fptr = g_callback.fn;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnGraphVersionCheck(void) { return CUDNN_STATUS_SUCCESS; }

TW_EXPORT cudnnStatus_t cudnnCreate(cudnnHandle_t *handle)
{
    if (!handle)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    struct cudnnContext *h = calloc(1, sizeof(*h));
    if (!h)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    h->magic = TW_CUDNN_MAGIC;
    h->device = tw_device_current();
    *handle = h;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnDestroy(cudnnHandle_t handle)
{
    if (!handle_ok(handle))
        return CUDNN_STATUS_BAD_PARAM;
    handle->magic = 0;
    free(handle);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream)
{
    if (!handle_ok(handle))
        return CUDNN_STATUS_BAD_PARAM;
    handle->stream = stream;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnGetStream(cudnnHandle_t handle, cudaStream_t *stream)
{
    if (!handle_ok(handle) || !stream)
        return CUDNN_STATUS_BAD_PARAM;
    *stream = handle->stream;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnQueryRuntimeError(cudnnHandle_t handle, cudnnStatus_t *rstatus,
                                               cudnnErrQueryMode_t mode, cudnnRuntimeTag_t *tag)
{
    if (!handle_ok(handle) || !rstatus)
        return CUDNN_STATUS_BAD_PARAM;
    *rstatus = CUDNN_STATUS_SUCCESS; /* no kernel runs, so none can report an error */
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ backend descriptors */

typedef struct bag_attr {
    int name;                 /* cudnnBackendAttributeName_t */
    int type;                 /* cudnnBackendAttributeType_t */
    int64_t count;
    unsigned char *data;      /* count x element size */
} bag_attr;

typedef struct tw_cudnn_desc {
    uint64_t magic;
    int type;                 /* cudnnBackendDescriptorType_t */
    bool finalized;
    _Atomic int refs;         /* the caller's reference + one per bag that holds it */
    int nattrs, cap;
    bag_attr *attrs;
    /* execution plans: the op their graph amounts to, computed at finalize */
    bool has_op;
    tw_desc op;
    char op_name[96];
} tw_cudnn_desc;

static size_t type_bytes(int type)
{
    switch ((cudnnBackendAttributeType_t)type) {
    case CUDNN_TYPE_HANDLE: return sizeof(cudnnHandle_t);
    case CUDNN_TYPE_BOOLEAN: return sizeof(bool);
    case CUDNN_TYPE_INT64: return sizeof(int64_t);
    case CUDNN_TYPE_FLOAT: return sizeof(float);
    case CUDNN_TYPE_DOUBLE: return sizeof(double);
    case CUDNN_TYPE_VOID_PTR: return sizeof(void *);
    case CUDNN_TYPE_BACKEND_DESCRIPTOR: return sizeof(cudnnBackendDescriptor_t);
    case CUDNN_TYPE_CHAR: return 1;
    case CUDNN_TYPE_FRACTION: return sizeof(cudnnFraction_t);
    case CUDNN_TYPE_INT32: return sizeof(int32_t);
    case CUDNN_TYPE_DATA_TYPE: case CUDNN_TYPE_CONVOLUTION_MODE: case CUDNN_TYPE_HEUR_MODE:
    case CUDNN_TYPE_KNOB_TYPE: case CUDNN_TYPE_NAN_PROPOGATION: case CUDNN_TYPE_NUMERICAL_NOTE:
    case CUDNN_TYPE_LAYOUT_TYPE: case CUDNN_TYPE_ATTRIB_NAME: case CUDNN_TYPE_POINTWISE_MODE:
    case CUDNN_TYPE_GENSTATS_MODE: case CUDNN_TYPE_BN_FINALIZE_STATS_MODE:
    case CUDNN_TYPE_REDUCTION_OPERATOR_TYPE: case CUDNN_TYPE_BEHAVIOR_NOTE:
    case CUDNN_TYPE_TENSOR_REORDERING_MODE: case CUDNN_TYPE_RESAMPLE_MODE:
    case CUDNN_TYPE_PADDING_MODE: case CUDNN_TYPE_SIGNAL_MODE: case CUDNN_TYPE_NORM_MODE:
    case CUDNN_TYPE_NORM_FWD_PHASE: case CUDNN_TYPE_RNG_DISTRIBUTION:
    case CUDNN_TYPE_MOE_GROUPED_MATMUL_MODE:
        return sizeof(int32_t); /* C enums */
    default: return 0;
    }
}

static tw_cudnn_desc *as_desc(cudnnBackendDescriptor_t d)
{
    tw_cudnn_desc *x = d;
    return x && x->magic == TW_CUDNN_DESC_MAGIC ? x : NULL;
}

static void desc_release(tw_cudnn_desc *d);

static void attr_clear(bag_attr *a)
{
    if (a->type == CUDNN_TYPE_BACKEND_DESCRIPTOR) {
        cudnnBackendDescriptor_t *children = (cudnnBackendDescriptor_t *)a->data;
        for (int64_t i = 0; i < a->count; i++)
            desc_release(as_desc(children[i]));
    }
    free(a->data);
    a->data = NULL;
    a->count = 0;
}

static void desc_release(tw_cudnn_desc *d)
{
    if (!d || atomic_fetch_sub(&d->refs, 1) != 1)
        return;
    for (int i = 0; i < d->nattrs; i++)
        attr_clear(&d->attrs[i]);
    free(d->attrs);
    d->magic = 0;
    free(d);
}

static tw_cudnn_desc *desc_new(int type)
{
    tw_cudnn_desc *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->magic = TW_CUDNN_DESC_MAGIC;
    d->type = type;
    atomic_init(&d->refs, 1);
    return d;
}

static bag_attr *bag_find(const tw_cudnn_desc *d, int name)
{
    for (int i = 0; i < d->nattrs; i++)
        if (d->attrs[i].name == name)
            return &d->attrs[i];
    return NULL;
}

/* Store a copy; descriptors held by the bag are retained so a plan can be walked at
 * execute time even after the caller dropped its own references. */
static cudnnStatus_t bag_set(tw_cudnn_desc *d, int name, int type, int64_t count, const void *elems)
{
    size_t elem = type_bytes(type);
    if (!elem)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: attribute type %lld not supported",
                    "cudnnBackendSetAttribute", type);
    if (count < 0 || (count > 0 && !elems))
        return CUDNN_STATUS_BAD_PARAM;
    unsigned char *copy = NULL;
    if (count > 0) {
        copy = malloc((size_t)count * elem);
        if (!copy)
            return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
        memcpy(copy, elems, (size_t)count * elem);
    }
    if (type == CUDNN_TYPE_BACKEND_DESCRIPTOR) {
        cudnnBackendDescriptor_t *children = (cudnnBackendDescriptor_t *)copy;
        for (int64_t i = 0; i < count; i++) {
            tw_cudnn_desc *c = as_desc(children[i]);
            if (!c) {
                free(copy);
                return CUDNN_STATUS_BAD_PARAM;
            }
            atomic_fetch_add(&c->refs, 1);
        }
    }
    bag_attr *a = bag_find(d, name);
    if (a) {
        attr_clear(a);
    } else {
        if (d->nattrs == d->cap) {
            int cap = d->cap ? d->cap * 2 : 8;
            bag_attr *grown = realloc(d->attrs, (size_t)cap * sizeof(*grown));
            if (!grown) {
                free(copy);
                return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
            }
            d->attrs = grown;
            d->cap = cap;
        }
        a = &d->attrs[d->nattrs++];
        a->name = name;
    }
    a->type = type;
    a->count = count;
    a->data = copy;
    return CUDNN_STATUS_SUCCESS;
}

/* Make dst hold what src holds (used to fill descriptors the caller created for results). */
static cudnnStatus_t bag_copy(tw_cudnn_desc *dst, const tw_cudnn_desc *src)
{
    if (dst == src)
        return CUDNN_STATUS_SUCCESS;
    for (int i = 0; i < src->nattrs; i++) {
        const bag_attr *a = &src->attrs[i];
        cudnnStatus_t st = bag_set(dst, a->name, a->type, a->count, a->data);
        if (st != CUDNN_STATUS_SUCCESS)
            return st;
    }
    dst->type = src->type;
    dst->finalized = src->finalized;
    return CUDNN_STATUS_SUCCESS;
}

/* Integer-valued attribute of any integer or enum type; def if absent. */
static int64_t bag_int(const tw_cudnn_desc *d, int name, int64_t def)
{
    const bag_attr *a = d ? bag_find(d, name) : NULL;
    if (!a || a->count < 1)
        return def;
    switch (type_bytes(a->type)) {
    case 8: {
        int64_t v;
        memcpy(&v, a->data, 8);
        return v;
    }
    case 4: {
        int32_t v;
        memcpy(&v, a->data, 4);
        return v;
    }
    case 1: return a->data[0];
    default: return def;
    }
}

static int bag_ints(const tw_cudnn_desc *d, int name, int64_t *out, int max)
{
    const bag_attr *a = d ? bag_find(d, name) : NULL;
    if (!a || a->type != CUDNN_TYPE_INT64)
        return 0;
    int n = a->count < max ? (int)a->count : max;
    memcpy(out, a->data, (size_t)n * sizeof(int64_t));
    return n;
}

static tw_cudnn_desc *bag_desc(const tw_cudnn_desc *d, int name, int64_t index)
{
    const bag_attr *a = d ? bag_find(d, name) : NULL;
    if (!a || a->type != CUDNN_TYPE_BACKEND_DESCRIPTOR || index >= a->count)
        return NULL;
    return as_desc(((cudnnBackendDescriptor_t *)a->data)[index]);
}

TW_EXPORT cudnnStatus_t cudnnBackendCreateDescriptor(cudnnBackendDescriptorType_t type,
                                                     cudnnBackendDescriptor_t *out)
{
    if (!out)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    tw_cudnn_desc *d = desc_new(type);
    if (!d)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    *out = d;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnBackendDestroyDescriptor(cudnnBackendDescriptor_t desc)
{
    tw_cudnn_desc *d = as_desc(desc);
    if (!d)
        return CUDNN_STATUS_BAD_PARAM;
    desc_release(d);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnBackendInitialize(cudnnBackendDescriptor_t desc)
{
    tw_cudnn_desc *d = as_desc(desc);
    if (!d)
        return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnBackendSetAttribute(cudnnBackendDescriptor_t desc,
                                                 cudnnBackendAttributeName_t name,
                                                 cudnnBackendAttributeType_t type, int64_t count,
                                                 const void *elems)
{
    tw_cudnn_desc *d = as_desc(desc);
    if (!d)
        return CUDNN_STATUS_BAD_PARAM;
    if (d->finalized)
        return fail(CUDNN_STATUS_NOT_INITIALIZED, "%s: descriptor already finalized (attr %lld)",
                    "cudnnBackendSetAttribute", name);
    return bag_set(d, name, type, count, elems);
}

/* ---- the graph, as the plan reaches it: plan -> engine config -> engine -> op graph */

static tw_cudnn_desc *plan_graph(const tw_cudnn_desc *plan)
{
    tw_cudnn_desc *cfg = bag_desc(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, 0);
    tw_cudnn_desc *engine = bag_desc(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, 0);
    return bag_desc(engine, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, 0);
}

typedef struct tensor_info {
    int nd;
    int64_t dims[8], strides[8];
    int64_t uid;
    uint32_t dtype;           /* enum tw_dtype */
    bool is_virtual;
} tensor_info;

static bool tensor_of(const tw_cudnn_desc *t, tensor_info *out)
{
    memset(out, 0, sizeof(*out));
    if (!t || t->type != CUDNN_BACKEND_TENSOR_DESCRIPTOR)
        return false;
    out->nd = bag_ints(t, CUDNN_ATTR_TENSOR_DIMENSIONS, out->dims, 8);
    bag_ints(t, CUDNN_ATTR_TENSOR_STRIDES, out->strides, 8);
    out->uid = bag_int(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, -1);
    out->dtype = tw_dtype_from_cudnn((int)bag_int(t, CUDNN_ATTR_TENSOR_DATA_TYPE, -1));
    out->is_virtual = bag_int(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, 0) != 0;
    return out->nd > 0;
}

/* Bytes a tensor spans in memory: its highest addressed element + 1 (broadcast strides of
 * 0 add nothing). */
static uint64_t tensor_bytes(const tensor_info *t)
{
    uint64_t last = 0;
    for (int i = 0; i < t->nd; i++)
        if (t->dims[i] > 0)
            last += (uint64_t)(t->dims[i] - 1) * (uint64_t)(t->strides[i] > 0 ? t->strides[i] : 0);
    return t->nd ? (last + 1) * tw_dtype_bytes(t->dtype) : 0;
}

/* Every non-virtual tensor the graph's operations reference, once each (by uid). */
typedef struct tensor_set {
    int n;
    int64_t uids[64];
    uint64_t bytes;
} tensor_set;

static void tensor_set_add(tensor_set *s, const tw_cudnn_desc *t)
{
    tensor_info ti;
    if (!tensor_of(t, &ti) || ti.is_virtual)
        return;
    for (int i = 0; i < s->n; i++)
        if (s->uids[i] == ti.uid)
            return;
    if (s->n < 64)
        s->uids[s->n++] = ti.uid;
    s->bytes += tensor_bytes(&ti);
}

static void op_tensors(const tw_cudnn_desc *op, tensor_set *s)
{
    for (int i = 0; i < op->nattrs; i++) {
        const bag_attr *a = &op->attrs[i];
        if (a->type != CUDNN_TYPE_BACKEND_DESCRIPTOR)
            continue;
        for (int64_t j = 0; j < a->count; j++)
            tensor_set_add(s, as_desc(((cudnnBackendDescriptor_t *)a->data)[j]));
    }
}

static const char *op_short_name(int type)
{
    switch ((cudnnBackendDescriptorType_t)type) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR: return "conv_fprop";
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR: return "conv_dgrad";
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR: return "conv_wgrad";
    case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR: return "pointwise";
    case CUDNN_BACKEND_OPERATION_GEN_STATS_DESCRIPTOR: return "gen_stats";
    case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR: return "matmul";
    case CUDNN_BACKEND_OPERATION_BN_FINALIZE_STATISTICS_DESCRIPTOR: return "bn_finalize";
    case CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR: return "reduction";
    case CUDNN_BACKEND_OPERATION_BN_BWD_WEIGHTS_DESCRIPTOR: return "bn_bwd_weights";
    case CUDNN_BACKEND_OPERATION_RESAMPLE_FWD_DESCRIPTOR: return "resample_fwd";
    case CUDNN_BACKEND_OPERATION_RESAMPLE_BWD_DESCRIPTOR: return "resample_bwd";
    case CUDNN_BACKEND_OPERATION_CONCAT_DESCRIPTOR: return "concat";
    case CUDNN_BACKEND_OPERATION_SIGNAL_DESCRIPTOR: return "signal";
    case CUDNN_BACKEND_OPERATION_NORM_FORWARD_DESCRIPTOR: return "norm_fwd";
    case CUDNN_BACKEND_OPERATION_NORM_BACKWARD_DESCRIPTOR: return "norm_bwd";
    case CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR: return "reshape";
    case CUDNN_BACKEND_OPERATION_RNG_DESCRIPTOR: return "rng";
    case CUDNN_BACKEND_OPERATION_PAGED_CACHE_LOAD_DESCRIPTOR: return "paged_cache_load";
    case CUDNN_BACKEND_OPERATION_BLOCK_SCALE_QUANTIZE_DESCRIPTOR: return "block_scale_quantize";
    case CUDNN_BACKEND_OPERATION_BLOCK_SCALE_DEQUANTIZE_DESCRIPTOR: return "block_scale_dequantize";
    case CUDNN_BACKEND_OPERATION_EXPAND_BAND_MATRIX_DESCRIPTOR: return "expand_band";
    case CUDNN_BACKEND_OPERATION_CONTRACT_BAND_MATRIX_DESCRIPTOR: return "contract_band";
    case CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR: return "sdpa_fwd";
    case CUDNN_BACKEND_OPERATION_MOE_GROUPED_MATMUL_DESCRIPTOR: return "moe_grouped_matmul";
    case CUDNN_BACKEND_OPERATION_SDPA_BWD_DESCRIPTOR: return "sdpa_bwd";
    case CUDNN_BACKEND_OPERATION_DIAGONAL_BAND_MASK_DESCRIPTOR: return "diagonal_band_mask";
    case CUDNN_BACKEND_OPERATION_SOFTMAX_DESCRIPTOR: return "softmax";
    default: return "op";
    }
}

/* Convolution: logical NC[D]HW dims whatever the memory layout; a 3-D conv folds depth
 * into h and r (flops stay exact, computed from the output). */
static bool classify_conv(const tw_cudnn_desc *op, tw_desc *out)
{
    int x_attr, w_attr, y_attr, conv_attr;
    uint32_t flags = 0;
    switch (op->type) {
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
        x_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X;
        w_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W;
        y_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y;
        conv_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC;
        break;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
        x_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX;
        w_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W;
        y_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY;
        conv_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC;
        flags = TW_FLAG_BACKWARD_DATA;
        break;
    case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
        x_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X;
        w_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW;
        y_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY;
        conv_attr = CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC;
        flags = TW_FLAG_BACKWARD_FILTER;
        break;
    default:
        return false;
    }
    tensor_info x, w, y;
    if (!tensor_of(bag_desc(op, x_attr, 0), &x) || !tensor_of(bag_desc(op, w_attr, 0), &w) ||
        !tensor_of(bag_desc(op, y_attr, 0), &y) || x.nd < 3 || w.nd != x.nd || y.nd != x.nd)
        return false;
    int nd = x.nd;
    int64_t h = 1, r = 1, out_spatial = 1;
    for (int i = 2; i < nd - 1; i++) {
        h *= x.dims[i];
        r *= w.dims[i];
    }
    for (int i = 2; i < nd; i++)
        out_spatial *= y.dims[i];
    int64_t c = x.dims[1], k = w.dims[0], c_per_group = w.dims[1];
    int64_t groups = c_per_group > 0 && c % c_per_group == 0 ? c / c_per_group : 1;
    int64_t filter_spatial = r * w.dims[nd - 1];
    const tw_cudnn_desc *conv = bag_desc(op, conv_attr, 0);
    out->kind = TW_OP_CONV;
    out->flags = flags;
    out->dtype_a = x.dtype;
    out->dtype_b = w.dtype;
    out->dtype_out = y.dtype;
    out->dtype_compute = tw_dtype_from_cudnn((int)bag_int(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, -1));
    out->dims[0] = x.dims[0];
    out->dims[1] = c;
    out->dims[2] = h;
    out->dims[3] = x.dims[nd - 1];
    out->dims[4] = k;
    out->dims[5] = r;
    out->dims[6] = w.dims[nd - 1];
    out->dims[7] = groups;
    /* the same multiply-adds in all three directions */
    out->flops = 2u * (uint64_t)x.dims[0] * (uint64_t)k * (uint64_t)out_spatial *
                 (uint64_t)c_per_group * (uint64_t)filter_spatial;
    return true;
}

static uint64_t matmul_flops(const tw_cudnn_desc *op, tensor_info *a_out, tensor_info *b_out)
{
    tensor_info a, b;
    if (!tensor_of(bag_desc(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, 0), &a) ||
        !tensor_of(bag_desc(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, 0), &b) || a.nd < 2 || b.nd < 2)
        return 0;
    uint64_t batch = 1;
    for (int i = 0; i < a.nd - 2; i++) {
        int64_t da = a.dims[i], db = i < b.nd - 2 ? b.dims[i] : 1;
        batch *= (uint64_t)(da > db ? da : db);
    }
    if (a_out) *a_out = a;
    if (b_out) *b_out = b;
    return 2u * batch * (uint64_t)a.dims[a.nd - 2] * (uint64_t)a.dims[a.nd - 1] *
           (uint64_t)b.dims[b.nd - 1];
}

typedef struct graph_scan {
    int ops[64];
    int nops;
    int matmuls, exps, reductions, softmaxes, band_masks;
    bool sdpa_fwd, sdpa_bwd, causal_cmp;
    const tw_cudnn_desc *conv, *first_qk, *sdpa_op;
    tensor_info q, kt;
    uint64_t matmul_flops;
} graph_scan;

/* A causal mask compares a row index with a column index: both operands of the comparison
 * come from GEN_INDEX pointwise ops. */
static void scan_causal(const tw_cudnn_desc *graph, int64_t nops, graph_scan *s)
{
    int64_t index_uids[16];
    int nidx = 0;
    for (int64_t i = 0; i < nops; i++) {
        const tw_cudnn_desc *op = bag_desc(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, i);
        if (!op || op->type != CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR)
            continue;
        const tw_cudnn_desc *pw = bag_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, 0);
        if (bag_int(pw, CUDNN_ATTR_POINTWISE_MODE, -1) == CUDNN_POINTWISE_GEN_INDEX && nidx < 16) {
            tensor_info y;
            if (tensor_of(bag_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, 0), &y))
                index_uids[nidx++] = y.uid;
        }
    }
    for (int64_t i = 0; i < nops && nidx >= 2; i++) {
        const tw_cudnn_desc *op = bag_desc(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, i);
        if (!op || op->type != CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR)
            continue;
        int64_t mode = bag_int(bag_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, 0),
                               CUDNN_ATTR_POINTWISE_MODE, -1);
        if (mode < CUDNN_POINTWISE_CMP_EQ || mode > CUDNN_POINTWISE_CMP_LE)
            continue;
        tensor_info x, b;
        if (!tensor_of(bag_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, 0), &x) ||
            !tensor_of(bag_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, 0), &b))
            continue;
        bool xi = false, bi = false;
        for (int j = 0; j < nidx; j++) {
            xi |= index_uids[j] == x.uid;
            bi |= index_uids[j] == b.uid;
        }
        if (xi && bi)
            s->causal_cmp = true;
    }
}

static void scan_graph(const tw_cudnn_desc *graph, graph_scan *s, tensor_set *ts)
{
    memset(s, 0, sizeof(*s));
    const bag_attr *ops = bag_find(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS);
    int64_t nops = ops ? ops->count : 0;
    for (int64_t i = 0; i < nops; i++) {
        const tw_cudnn_desc *op = bag_desc(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, i);
        if (!op)
            continue;
        if (s->nops < 64)
            s->ops[s->nops++] = op->type;
        op_tensors(op, ts);
        switch (op->type) {
        case CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR:
        case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR:
        case CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR:
            if (!s->conv)
                s->conv = op;
            break;
        case CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR: {
            tensor_info a, b;
            uint64_t f = matmul_flops(op, &a, &b);
            s->matmul_flops += f;
            s->matmuls++;
            /* Q x K^T: the first matmul whose operands are both graph inputs */
            if (f && !s->first_qk && !a.is_virtual && !b.is_virtual && a.nd == 4 && b.nd == 4) {
                s->first_qk = op;
                s->q = a;
                s->kt = b;
            }
            break;
        }
        case CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR:
            if (bag_int(bag_desc(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, 0),
                        CUDNN_ATTR_POINTWISE_MODE, -1) == CUDNN_POINTWISE_EXP)
                s->exps++;
            break;
        case CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR: s->reductions++; break;
        case CUDNN_BACKEND_OPERATION_SOFTMAX_DESCRIPTOR: s->softmaxes++; break;
        case CUDNN_BACKEND_OPERATION_DIAGONAL_BAND_MASK_DESCRIPTOR: s->band_masks++; break;
        case CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR: s->sdpa_fwd = true; s->sdpa_op = op; break;
        case CUDNN_BACKEND_OPERATION_SDPA_BWD_DESCRIPTOR: s->sdpa_bwd = true; s->sdpa_op = op; break;
        default: break;
        }
    }
    scan_causal(graph, nops, s);
}

/* Native SDPA operation (cuDNN >= 9.x): q [b, h_q, s_q, d], k/v [b, h_kv, s_kv, d(_v)]. */
static bool classify_sdpa_op(const graph_scan *s, tw_desc *out)
{
    bool bwd = s->sdpa_bwd;
    tensor_info q, k, v;
    if (!tensor_of(bag_desc(s->sdpa_op, bwd ? CUDNN_ATTR_OPERATION_SDPA_BWD_QDESC
                                            : CUDNN_ATTR_OPERATION_SDPA_FWD_QDESC, 0), &q) ||
        !tensor_of(bag_desc(s->sdpa_op, bwd ? CUDNN_ATTR_OPERATION_SDPA_BWD_KDESC
                                            : CUDNN_ATTR_OPERATION_SDPA_FWD_KDESC, 0), &k) ||
        !tensor_of(bag_desc(s->sdpa_op, bwd ? CUDNN_ATTR_OPERATION_SDPA_BWD_VDESC
                                            : CUDNN_ATTR_OPERATION_SDPA_FWD_VDESC, 0), &v) ||
        q.nd != 4 || k.nd != 4 || v.nd != 4)
        return false;
    out->kind = TW_OP_ATTENTION;
    out->dtype_a = q.dtype;
    out->dtype_b = k.dtype;
    out->dtype_out = q.dtype;
    out->dtype_compute = TW_DT_F32;
    out->dims[0] = q.dims[0];
    out->dims[1] = q.dims[1];
    out->dims[2] = k.dims[1];
    out->dims[3] = q.dims[2];
    out->dims[4] = k.dims[2];
    out->dims[5] = q.dims[3];
    uint64_t bhss = (uint64_t)q.dims[0] * (uint64_t)q.dims[1] * (uint64_t)q.dims[2] * (uint64_t)k.dims[2];
    uint64_t d = (uint64_t)q.dims[3], dv = (uint64_t)v.dims[3];
    /* forward: S = Q K^T, O = P V; backward recomputes S and forms dV, dP, dQ, dK */
    out->flops = 2u * bhss * (bwd ? 3u * d + 2u * dv : d + dv);
    if (bwd)
        out->flags |= TW_FLAG_BACKWARD;
    return true;
}

/* Composite SDPA (matmul, softmax as exp/reduction, matmul): q and k^T from the first
 * matmul, flops summed over every matmul of the graph. */
static bool classify_sdpa_composite(const graph_scan *s, tw_desc *out)
{
    if (s->matmuls < 2 || !s->first_qk || (s->exps == 0 && s->softmaxes == 0))
        return false;
    out->kind = TW_OP_ATTENTION;
    out->dtype_a = s->q.dtype;
    out->dtype_b = s->kt.dtype;
    out->dtype_out = s->q.dtype;
    out->dtype_compute = TW_DT_F32;
    out->dims[0] = s->q.dims[0];
    out->dims[1] = s->q.dims[1];
    out->dims[2] = s->kt.dims[1];
    out->dims[3] = s->q.dims[2];
    out->dims[4] = s->kt.dims[3];
    out->dims[5] = s->q.dims[3];
    out->flops = s->matmul_flops;
    if (s->matmuls > 2) /* forward has QK^T and PV; backward adds dV, dP, dQ, dK */
        out->flags |= TW_FLAG_BACKWARD;
    return true;
}

/* Classify a finalized plan's graph into plan->op / plan->op_name. */
static void plan_classify(tw_cudnn_desc *plan)
{
    const tw_cudnn_desc *graph = plan_graph(plan);
    plan->has_op = false;
    if (!graph) {
        TW_WARN("cudnn: execution plan without an operation graph; executions are not recorded");
        return;
    }
    graph_scan s;
    tensor_set ts = {0};
    scan_graph(graph, &s, &ts);
    tw_desc d = {0};
    char name[96];
    if (s.conv && classify_conv(s.conv, &d)) {
        snprintf(name, sizeof(name), "cudnn:%s", op_short_name(s.conv->type));
    } else if ((s.sdpa_fwd || s.sdpa_bwd) && classify_sdpa_op(&s, &d)) {
        snprintf(name, sizeof(name), "cudnn:%s", s.sdpa_bwd ? "sdpa_bwd" : "sdpa_fwd");
    } else if (classify_sdpa_composite(&s, &d)) {
        snprintf(name, sizeof(name), "cudnn:%s", (d.flags & TW_FLAG_BACKWARD) ? "sdpa_bwd" : "sdpa_fwd");
    } else {
        /* any other graph: named by its operation types in graph order, dims unused */
        d.kind = TW_OP_LIBRARY;
        d.flops = s.matmul_flops;
        size_t len = (size_t)snprintf(name, sizeof(name), "cudnn:");
        for (int i = 0; i < s.nops && len < sizeof(name); i++) {
            const char *part = op_short_name(s.ops[i]);
            if (i > 0 && s.ops[i] == s.ops[i - 1])
                continue;
            len += (size_t)snprintf(name + len, sizeof(name) - len, "%s%s", i ? "+" : "", part);
        }
    }
    if (d.kind == TW_OP_ATTENTION && (s.causal_cmp || s.band_masks > 0))
        d.flags |= TW_FLAG_CAUSAL;
    d.bytes = ts.bytes;
    memcpy(plan->op_name, name, sizeof(name));
    plan->op = d;
    plan->has_op = true;
}

/* An engine for a graph: what heuristics and the fallback list return (index 0, no knobs). */
static tw_cudnn_desc *engine_for(cudnnBackendDescriptor_t graph, int64_t index)
{
    tw_cudnn_desc *e = desc_new(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    if (!e)
        return NULL;
    if (bag_set(e, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph) ||
        bag_set(e, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &index)) {
        desc_release(e);
        return NULL;
    }
    e->finalized = true;
    return e;
}

TW_EXPORT cudnnStatus_t cudnnBackendFinalize(cudnnBackendDescriptor_t desc)
{
    tw_cudnn_desc *d = as_desc(desc);
    if (!d)
        return CUDNN_STATUS_BAD_PARAM;
    switch (d->type) {
    case CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR:
        if (!bag_find(d, CUDNN_ATTR_OPERATIONGRAPH_OPS))
            return fail(CUDNN_STATUS_BAD_PARAM, "%s: operation graph without operations (%lld)",
                        "cudnnBackendFinalize", 0);
        break;
    case CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR:
        if (!bag_desc(d, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, 0))
            return fail(CUDNN_STATUS_BAD_PARAM, "%s: heuristics without an operation graph (%lld)",
                        "cudnnBackendFinalize", 0);
        break;
    case CUDNN_BACKEND_ENGINE_DESCRIPTOR:
        if (!bag_desc(d, CUDNN_ATTR_ENGINE_OPERATION_GRAPH, 0))
            return fail(CUDNN_STATUS_BAD_PARAM, "%s: engine without an operation graph (%lld)",
                        "cudnnBackendFinalize", 0);
        if (bag_int(d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, 0) != 0)
            return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: only engine 0 exists, asked for %lld",
                        "cudnnBackendFinalize", bag_int(d, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, 0));
        break;
    case CUDNN_BACKEND_ENGINECFG_DESCRIPTOR:
        if (!bag_desc(d, CUDNN_ATTR_ENGINECFG_ENGINE, 0))
            return fail(CUDNN_STATUS_BAD_PARAM, "%s: engine config without an engine (%lld)",
                        "cudnnBackendFinalize", 0);
        break;
    case CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR:
        if (!bag_desc(d, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, 0))
            return fail(CUDNN_STATUS_BAD_PARAM, "%s: plan without an engine config (%lld)",
                        "cudnnBackendFinalize", 0);
        plan_classify(d);
        break;
    default:
        break;
    }
    d->finalized = true;
    return CUDNN_STATUS_SUCCESS;
}

/* Copy out up to `requested` elements of what is stored (or only the count when elems is
 * NULL). Descriptor-typed elements are filled into the caller's descriptors. */
static cudnnStatus_t get_stored(const bag_attr *a, int type, int64_t requested, int64_t *count,
                                void *elems)
{
    if (a->type != type)
        return CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE;
    int64_t n = a->count < requested ? a->count : requested;
    if (count)
        *count = elems ? n : a->count;
    if (!elems || n <= 0)
        return CUDNN_STATUS_SUCCESS;
    if (type != CUDNN_TYPE_BACKEND_DESCRIPTOR) {
        memcpy(elems, a->data, (size_t)n * type_bytes(type));
        return CUDNN_STATUS_SUCCESS;
    }
    for (int64_t i = 0; i < n; i++) {
        tw_cudnn_desc *dst = as_desc(((cudnnBackendDescriptor_t *)elems)[i]);
        const tw_cudnn_desc *src = as_desc(((cudnnBackendDescriptor_t *)a->data)[i]);
        if (!dst || !src)
            return CUDNN_STATUS_BAD_PARAM;
        cudnnStatus_t st = bag_copy(dst, src);
        if (st != CUDNN_STATUS_SUCCESS)
            return st;
    }
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t get_int64(int type, int64_t value, int64_t requested, int64_t *count, void *elems)
{
    if (type != CUDNN_TYPE_INT64)
        return CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE;
    if (count)
        *count = 1;
    if (elems && requested >= 1)
        memcpy(elems, &value, sizeof(value));
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t get_empty_list(int64_t *count)
{
    if (count)
        *count = 0;
    return CUDNN_STATUS_SUCCESS;
}

/* Heuristic results: one engine config per requested slot up to the one engine we have. */
static cudnnStatus_t get_heur_results(tw_cudnn_desc *heur, int type, int64_t requested,
                                      int64_t *count, void *elems)
{
    if (type != CUDNN_TYPE_BACKEND_DESCRIPTOR)
        return CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE;
    if (!elems || requested < 1)
        return count ? (*count = 1, CUDNN_STATUS_SUCCESS) : CUDNN_STATUS_BAD_PARAM;
    tw_cudnn_desc *cfg = as_desc(((cudnnBackendDescriptor_t *)elems)[0]);
    const bag_attr *g = bag_find(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH);
    if (!cfg || !g)
        return CUDNN_STATUS_BAD_PARAM;
    tw_cudnn_desc *engine = engine_for(((cudnnBackendDescriptor_t *)g->data)[0], 0);
    if (!engine)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    cudnnBackendDescriptor_t e = engine;
    cudnnStatus_t st = bag_set(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &e);
    desc_release(engine); /* the config holds it now */
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    cfg->type = CUDNN_BACKEND_ENGINECFG_DESCRIPTOR;
    cfg->finalized = true;
    if (count)
        *count = 1;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t get_plan_json(tw_cudnn_desc *plan, int type, int64_t requested,
                                   int64_t *count, void *elems)
{
    if (type != CUDNN_TYPE_CHAR)
        return CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE;
    char json[256];
    int len = snprintf(json, sizeof(json), "{\"engine_id\":0,\"knobs\":{},\"operation\":\"%s\"}",
                       plan->has_op ? plan->op_name : "");
    int64_t need = len + 1;
    if (count)
        *count = need;
    if (elems && requested > 0) {
        int64_t n = requested < need ? requested : need;
        memcpy(elems, json, (size_t)n);
        ((char *)elems)[n - 1] = '\0';
    }
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnBackendGetAttribute(cudnnBackendDescriptor_t const desc,
                                                 cudnnBackendAttributeName_t name,
                                                 cudnnBackendAttributeType_t type,
                                                 int64_t requested, int64_t *count, void *elems)
{
    tw_cudnn_desc *d = as_desc(desc);
    if (!d)
        return CUDNN_STATUS_BAD_PARAM;
    if (requested < 0)
        return CUDNN_STATUS_BAD_PARAM;
    /* computed attributes first: cuDNN derives these, the caller never sets them */
    switch ((int)name) {
    case CUDNN_ATTR_OPERATIONGRAPH_ENGINE_GLOBAL_COUNT:
        return get_int64(type, 1, requested, count, elems);
    case CUDNN_ATTR_ENGINEHEUR_RESULTS:
        return get_heur_results(d, type, requested, count, elems);
    case CUDNN_ATTR_ENGINECFG_KNOB_CHOICES:
    case CUDNN_ATTR_ENGINECFG_INTERMEDIATE_INFO:
    case CUDNN_ATTR_ENGINE_KNOB_INFO:
    case CUDNN_ATTR_ENGINE_NUMERICAL_NOTE:
    case CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE:
    case CUDNN_ATTR_ENGINE_LAYOUT_INFO:
    case CUDNN_ATTR_EXECUTION_PLAN_COMPUTED_INTERMEDIATE_UIDS:
    case CUDNN_ATTR_EXECUTION_PLAN_RUN_ONLY_INTERMEDIATE_UIDS:
        if (!bag_find(d, name))
            return get_empty_list(count); /* one engine, no knobs, no notes */
        break;
    case CUDNN_ATTR_ENGINECFG_WORKSPACE_SIZE:
    case CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE:
        /* the emulated kernels need no scratch memory */
        return get_int64(type, 0, requested, count, elems);
    case CUDNN_ATTR_ENGINECFG_SHARED_MEMORY_USED:
        return get_int64(type, 0, requested, count, elems);
    case CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION:
        return get_plan_json(d, type, requested, count, elems);
    default:
        break;
    }
    const bag_attr *a = bag_find(d, name);
    if (!a)
        return fail(CUDNN_STATUS_BAD_PARAM, "%s: attribute %lld was never set",
                    "cudnnBackendGetAttribute", name);
    return get_stored(a, type, requested, count, elems);
}

TW_EXPORT cudnnStatus_t cudnnBackendExecute(cudnnHandle_t handle, cudnnBackendDescriptor_t plan_desc,
                                            cudnnBackendDescriptor_t variant_pack)
{
    tw_cudnn_desc *plan = as_desc(plan_desc);
    if (!handle_ok(handle))
        return CUDNN_STATUS_BAD_PARAM;
    if (!plan || plan->type != CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR)
        return CUDNN_STATUS_BAD_PARAM_DESCRIPTOR_TYPE;
    if (!plan->finalized)
        return CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED;
    if (!plan->has_op)
        return fail(CUDNN_STATUS_NOT_SUPPORTED, "%s: plan's graph could not be read (%lld)",
                    "cudnnBackendExecute", 0);
    tw_stream *s = tw_stream_resolve(handle->stream);
    tw_desc d = plan->op;
    d.device = (uint32_t)tw_stream_device(s);
    if (!d.name_id)
        d.name_id = plan->op.name_id = tw_name_intern(plan->op_name);
    tw_submit(s, &d);
    return CUDNN_STATUS_SUCCESS;
}
