/* cuDNN's legacy (v7-style) API as torch still calls it: tensor and filter descriptors, and
 * batch normalisation (nn.BatchNorm* with cuDNN enabled: forward training, backward, inference).
 * Each batch-norm call is one TW_OP_LIBRARY op on the handle's stream, named by the routine,
 * with the bytes its passes over the tensors move: training forward reads x for the statistics
 * and again to normalise, and writes y (3 tensor passes, 4 with the residual z); backward reads
 * x and dy for the reductions and again for dx, and writes dx (5 passes, 6 with dz);
 * inference reads x and writes y (2). Per-channel parameters add 2 to 6 vectors of C. */
#include <stdlib.h>
#include <string.h>

#include <cudnn_ops.h>

#include "dtype_map.h"
#include "tw_core.h"

#define TENSOR_MAGIC 0x726f736e6574ULL /* "tensor" */
#define FILTER_MAGIC 0x7265746c6966ULL /* "filter" */
#define MAX_DIMS 8

struct cudnnTensorStruct {
    uint64_t magic;
    cudnnDataType_t dtype;
    int nb_dims;
    int dims[MAX_DIMS];
    int strides[MAX_DIMS];
};

struct cudnnFilterStruct {
    uint64_t magic;
    cudnnDataType_t dtype;
    cudnnTensorFormat_t format;
    int nb_dims;
    int dims[MAX_DIMS];
};

static bool tensor_ok(const struct cudnnTensorStruct *t)
{
    return t != NULL && t->magic == TENSOR_MAGIC;
}

/* A set descriptor: one with dimensions. */
static bool tensor_set(const struct cudnnTensorStruct *t)
{
    return tensor_ok(t) && t->nb_dims > 0;
}

static size_t dtype_bytes(cudnnDataType_t dtype)
{
    switch (dtype) {
    case CUDNN_DATA_DOUBLE: case CUDNN_DATA_INT64: return 8;
    case CUDNN_DATA_FLOAT: case CUDNN_DATA_INT32: return 4;
    case CUDNN_DATA_HALF: case CUDNN_DATA_BFLOAT16: return 2;
    default: return 1;
    }
}

static uint64_t elements(const struct cudnnTensorStruct *t)
{
    uint64_t n = 1;
    for (int i = 0; i < t->nb_dims; i++)
        n *= (uint64_t)t->dims[i];
    return n;
}

/* ------------------------------------------------------------------ tensor descriptors */

TW_EXPORT cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t *desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    struct cudnnTensorStruct *t = calloc(1, sizeof *t);
    if (t == NULL)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    t->magic = TENSOR_MAGIC;
    *desc = t;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_SUCCESS; /* documented: destroying NULL is a no-op */
    if (!tensor_ok(desc))
        return CUDNN_STATUS_BAD_PARAM;
    desc->magic = 0;
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnSetTensorNdDescriptor(cudnnTensorDescriptor_t desc, cudnnDataType_t dtype, int nb_dims,
                                                   const int dims[], const int strides[])
{
    if (!tensor_ok(desc) || dims == NULL || strides == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    if (nb_dims < 1 || nb_dims > MAX_DIMS)
        return CUDNN_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < nb_dims; i++)
        if (dims[i] <= 0 || strides[i] <= 0)
            return CUDNN_STATUS_BAD_PARAM;
    desc->dtype = dtype;
    desc->nb_dims = nb_dims;
    memcpy(desc->dims, dims, (size_t)nb_dims * sizeof *dims);
    memcpy(desc->strides, strides, (size_t)nb_dims * sizeof *strides);
    return CUDNN_STATUS_SUCCESS;
}

/* Packed strides for a format: NCHW is row-major; NHWC makes C the innermost dimension. */
static void packed_strides(cudnnTensorFormat_t format, int nb_dims, const int dims[], int strides[])
{
    int order[MAX_DIMS];
    for (int i = 0; i < nb_dims; i++)
        order[i] = i;
    if (format == CUDNN_TENSOR_NHWC && nb_dims > 2) {
        for (int i = 1; i < nb_dims - 1; i++)
            order[i] = i + 1;
        order[nb_dims - 1] = 1;
    }
    int stride = 1;
    for (int i = nb_dims - 1; i >= 0; i--) {
        strides[order[i]] = stride;
        stride *= dims[order[i]];
    }
}

TW_EXPORT cudnnStatus_t cudnnSetTensorNdDescriptorEx(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                                     cudnnDataType_t dtype, int nb_dims, const int dims[])
{
    if (!tensor_ok(desc) || dims == NULL || nb_dims < 1 || nb_dims > MAX_DIMS)
        return CUDNN_STATUS_BAD_PARAM;
    int strides[MAX_DIMS];
    for (int i = 0; i < nb_dims; i++)
        if (dims[i] <= 0)
            return CUDNN_STATUS_BAD_PARAM;
    packed_strides(format, nb_dims, dims, strides);
    return cudnnSetTensorNdDescriptor(desc, dtype, nb_dims, dims, strides);
}

TW_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                                                   cudnnDataType_t dtype, int n, int c, int h, int w)
{
    int dims[4] = {n, c, h, w};
    return cudnnSetTensorNdDescriptorEx(desc, format, dtype, 4, dims);
}

TW_EXPORT cudnnStatus_t cudnnSetTensor4dDescriptorEx(cudnnTensorDescriptor_t desc, cudnnDataType_t dtype, int n,
                                                     int c, int h, int w, int ns, int cs, int hs, int ws)
{
    int dims[4] = {n, c, h, w}, strides[4] = {ns, cs, hs, ws};
    return cudnnSetTensorNdDescriptor(desc, dtype, 4, dims, strides);
}

TW_EXPORT cudnnStatus_t cudnnGetTensorNdDescriptor(const cudnnTensorDescriptor_t desc, int requested,
                                                   cudnnDataType_t *dtype, int *nb_dims, int dims[], int strides[])
{
    if (!tensor_set(desc) || dtype == NULL || nb_dims == NULL || requested < 0)
        return CUDNN_STATUS_BAD_PARAM;
    *dtype = desc->dtype;
    *nb_dims = desc->nb_dims;
    for (int i = 0; i < requested && i < desc->nb_dims; i++) {
        if (dims != NULL)
            dims[i] = desc->dims[i];
        if (strides != NULL)
            strides[i] = desc->strides[i];
    }
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnGetTensor4dDescriptor(const cudnnTensorDescriptor_t desc, cudnnDataType_t *dtype,
                                                   int *n, int *c, int *h, int *w, int *ns, int *cs, int *hs,
                                                   int *ws)
{
    if (!tensor_set(desc) || desc->nb_dims != 4 || !dtype || !n || !c || !h || !w || !ns || !cs || !hs || !ws)
        return CUDNN_STATUS_BAD_PARAM;
    *dtype = desc->dtype;
    *n = desc->dims[0], *c = desc->dims[1], *h = desc->dims[2], *w = desc->dims[3];
    *ns = desc->strides[0], *cs = desc->strides[1], *hs = desc->strides[2], *ws = desc->strides[3];
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnGetTensorSizeInBytes(const cudnnTensorDescriptor_t desc, size_t *size)
{
    if (!tensor_set(desc) || size == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    uint64_t span = 1; /* the farthest element's offset plus one */
    for (int i = 0; i < desc->nb_dims; i++)
        span += (uint64_t)(desc->dims[i] - 1) * (uint64_t)desc->strides[i];
    *size = span * dtype_bytes(desc->dtype);
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ filter descriptors */

TW_EXPORT cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t *desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    struct cudnnFilterStruct *f = calloc(1, sizeof *f);
    if (f == NULL)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    f->magic = FILTER_MAGIC;
    *desc = f;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_SUCCESS;
    if (desc->magic != FILTER_MAGIC)
        return CUDNN_STATUS_BAD_PARAM;
    desc->magic = 0;
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnSetFilterNdDescriptor(cudnnFilterDescriptor_t desc, cudnnDataType_t dtype,
                                                   cudnnTensorFormat_t format, int nb_dims, const int dims[])
{
    if (desc == NULL || desc->magic != FILTER_MAGIC || dims == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    if (nb_dims < 1 || nb_dims > MAX_DIMS)
        return CUDNN_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < nb_dims; i++)
        if (dims[i] <= 0)
            return CUDNN_STATUS_BAD_PARAM;
    desc->dtype = dtype;
    desc->format = format;
    desc->nb_dims = nb_dims;
    memcpy(desc->dims, dims, (size_t)nb_dims * sizeof *dims);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnGetFilterNdDescriptor(const cudnnFilterDescriptor_t desc, int requested,
                                                   cudnnDataType_t *dtype, cudnnTensorFormat_t *format,
                                                   int *nb_dims, int dims[])
{
    if (desc == NULL || desc->magic != FILTER_MAGIC || desc->nb_dims == 0 || !dtype || !format || !nb_dims)
        return CUDNN_STATUS_BAD_PARAM;
    *dtype = desc->dtype;
    *format = desc->format;
    *nb_dims = desc->nb_dims;
    for (int i = 0; i < requested && i < desc->nb_dims && dims != NULL; i++)
        dims[i] = desc->dims[i];
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ batch normalisation */

/* x's shape must be 4-D or 5-D and the parameters' 1xCx1x1 (spatial) or 1xCxHxW (per
 * activation): what cuDNN checks before it launches anything. */
static cudnnStatus_t check_bn(cudnnHandle_t handle, const struct cudnnTensorStruct *x,
                              const struct cudnnTensorStruct *param)
{
    cudaStream_t stream;
    if (cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS)
        return CUDNN_STATUS_BAD_PARAM;
    if (!tensor_set(x) || !tensor_set(param))
        return CUDNN_STATUS_BAD_PARAM;
    if (x->nb_dims < 4 || x->nb_dims > 5 || param->nb_dims != x->nb_dims || param->dims[0] != 1 ||
        param->dims[1] != x->dims[1])
        return CUDNN_STATUS_BAD_PARAM;
    return CUDNN_STATUS_SUCCESS;
}

/* One op on the handle's stream: `passes` reads or writes of x-sized tensors plus `vectors`
 * per-channel parameter vectors; 8 floating-point operations per element and pass pair. */
static cudnnStatus_t submit_bn(cudnnHandle_t handle, const char *routine, const struct cudnnTensorStruct *x,
                               const struct cudnnTensorStruct *param, int passes, int vectors, uint32_t flags)
{
    cudaStream_t stream = NULL;
    cudnnGetStream(handle, &stream);
    tw_stream *s = tw_stream_resolve(stream);
    tw_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.kind = TW_OP_LIBRARY;
    desc.device = (uint32_t)tw_stream_device(s);
    desc.dtype_a = desc.dtype_out = tw_dtype_from_cudnn(x->dtype);
    desc.dtype_compute = tw_dtype_from_cudnn(CUDNN_DATA_FLOAT);
    desc.flags = flags;
    for (int i = 0; i < x->nb_dims && i < 8; i++)
        desc.dims[i] = x->dims[i];
    uint64_t n = elements(x);
    desc.bytes = (uint64_t)passes * n * dtype_bytes(x->dtype) + (uint64_t)vectors * elements(param) *
                 dtype_bytes(param->dtype);
    desc.flops = 8 * n;
    desc.name_id = tw_name_intern(routine);
    tw_submit(s, &desc);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnDeriveBNTensorDescriptor(cudnnTensorDescriptor_t derived,
                                                      const cudnnTensorDescriptor_t x, cudnnBatchNormMode_t mode)
{
    if (!tensor_ok(derived) || !tensor_set(x) || x->nb_dims < 4 || x->nb_dims > 5)
        return CUDNN_STATUS_BAD_PARAM;
    int dims[MAX_DIMS];
    for (int i = 0; i < x->nb_dims; i++)
        dims[i] = i == 1 || mode == CUDNN_BATCHNORM_PER_ACTIVATION ? x->dims[i] : 1;
    dims[0] = 1;
    cudnnDataType_t dtype = x->dtype == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    return cudnnSetTensorNdDescriptorEx(derived, CUDNN_TENSOR_NCHW, dtype, x->nb_dims, dims);
}

/* Workspace and reserve: the emulated kernels need none. */
TW_EXPORT cudnnStatus_t cudnnGetBatchNormalizationForwardTrainingExWorkspaceSize(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t ops, const cudnnTensorDescriptor_t x,
    const cudnnTensorDescriptor_t z, const cudnnTensorDescriptor_t y, const cudnnTensorDescriptor_t param,
    const cudnnActivationDescriptor_t activation, size_t *bytes)
{
    cudnnStatus_t st = check_bn(handle, x, param);
    if (st == CUDNN_STATUS_SUCCESS && bytes == NULL)
        st = CUDNN_STATUS_BAD_PARAM;
    if (st == CUDNN_STATUS_SUCCESS)
        *bytes = 0;
    return st;
}

TW_EXPORT cudnnStatus_t cudnnGetBatchNormalizationBackwardExWorkspaceSize(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t ops, const cudnnTensorDescriptor_t x,
    const cudnnTensorDescriptor_t y, const cudnnTensorDescriptor_t dy, const cudnnTensorDescriptor_t dz,
    const cudnnTensorDescriptor_t dx, const cudnnTensorDescriptor_t param,
    const cudnnActivationDescriptor_t activation, size_t *bytes)
{
    cudnnStatus_t st = check_bn(handle, x, param);
    if (st == CUDNN_STATUS_SUCCESS && bytes == NULL)
        st = CUDNN_STATUS_BAD_PARAM;
    if (st == CUDNN_STATUS_SUCCESS)
        *bytes = 0;
    return st;
}

TW_EXPORT cudnnStatus_t cudnnGetBatchNormalizationTrainingExReserveSpaceSize(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t ops,
    const cudnnActivationDescriptor_t activation, const cudnnTensorDescriptor_t x, size_t *bytes)
{
    cudaStream_t stream;
    if (cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS || !tensor_set(x) || bytes == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    *bytes = 0;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTrainingEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t ops, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t x_desc, const void *x, const cudnnTensorDescriptor_t z_desc, const void *z,
    const cudnnTensorDescriptor_t y_desc, void *y, const cudnnTensorDescriptor_t param, const void *scale,
    const void *bias, double average_factor, void *running_mean, void *running_var, double epsilon,
    void *save_mean, void *save_inv_var, cudnnActivationDescriptor_t activation, void *workspace,
    size_t workspace_bytes, void *reserve, size_t reserve_bytes)
{
    cudnnStatus_t st = check_bn(handle, x_desc, param);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    if (alpha == NULL || beta == NULL || x == NULL || y == NULL || scale == NULL || bias == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    bool add = ops == CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION && z != NULL;
    return submit_bn(handle, "cudnnBatchNormalizationForwardTrainingEx", x_desc, param, add ? 4 : 3, 6, 0);
}

TW_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardTraining(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t x_desc, const void *x, const cudnnTensorDescriptor_t y_desc, void *y,
    const cudnnTensorDescriptor_t param, const void *scale, const void *bias, double average_factor,
    void *running_mean, void *running_var, double epsilon, void *save_mean, void *save_inv_var)
{
    return cudnnBatchNormalizationForwardTrainingEx(handle, mode, CUDNN_BATCHNORM_OPS_BN, alpha, beta, x_desc, x,
                                                    NULL, NULL, y_desc, y, param, scale, bias, average_factor,
                                                    running_mean, running_var, epsilon, save_mean, save_inv_var,
                                                    NULL, NULL, 0, NULL, 0);
}

TW_EXPORT cudnnStatus_t cudnnBatchNormalizationBackwardEx(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, cudnnBatchNormOps_t ops, const void *alpha_data,
    const void *beta_data, const void *alpha_param, const void *beta_param, const cudnnTensorDescriptor_t x_desc,
    const void *x, const cudnnTensorDescriptor_t y_desc, const void *y, const cudnnTensorDescriptor_t dy_desc,
    const void *dy, const cudnnTensorDescriptor_t dz_desc, void *dz, const cudnnTensorDescriptor_t dx_desc,
    void *dx, const cudnnTensorDescriptor_t param, const void *scale, const void *bias, void *dscale,
    void *dbias, double epsilon, const void *saved_mean, const void *saved_inv_var,
    cudnnActivationDescriptor_t activation, void *workspace, size_t workspace_bytes, void *reserve,
    size_t reserve_bytes)
{
    cudnnStatus_t st = check_bn(handle, x_desc, param);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    if (x == NULL || dy == NULL || dx == NULL || scale == NULL || dscale == NULL || dbias == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    bool add = ops == CUDNN_BATCHNORM_OPS_BN_ADD_ACTIVATION && dz != NULL;
    return submit_bn(handle, "cudnnBatchNormalizationBackwardEx", x_desc, param, add ? 6 : 5, 5,
                     TW_FLAG_BACKWARD);
}

TW_EXPORT cudnnStatus_t cudnnBatchNormalizationBackward(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha_data, const void *beta_data,
    const void *alpha_param, const void *beta_param, const cudnnTensorDescriptor_t x_desc, const void *x,
    const cudnnTensorDescriptor_t dy_desc, const void *dy, const cudnnTensorDescriptor_t dx_desc, void *dx,
    const cudnnTensorDescriptor_t param, const void *scale, void *dscale, void *dbias, double epsilon,
    const void *saved_mean, const void *saved_inv_var)
{
    return cudnnBatchNormalizationBackwardEx(handle, mode, CUDNN_BATCHNORM_OPS_BN, alpha_data, beta_data,
                                             alpha_param, beta_param, x_desc, x, NULL, NULL, dy_desc, dy, NULL,
                                             NULL, dx_desc, dx, param, scale, NULL, dscale, dbias, epsilon,
                                             saved_mean, saved_inv_var, NULL, NULL, 0, NULL, 0);
}

TW_EXPORT cudnnStatus_t cudnnBatchNormalizationForwardInference(
    cudnnHandle_t handle, cudnnBatchNormMode_t mode, const void *alpha, const void *beta,
    const cudnnTensorDescriptor_t x_desc, const void *x, const cudnnTensorDescriptor_t y_desc, void *y,
    const cudnnTensorDescriptor_t param, const void *scale, const void *bias, const void *mean,
    const void *variance, double epsilon)
{
    cudnnStatus_t st = check_bn(handle, x_desc, param);
    if (st != CUDNN_STATUS_SUCCESS)
        return st;
    if (x == NULL || y == NULL || scale == NULL || bias == NULL || mean == NULL || variance == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    return submit_bn(handle, "cudnnBatchNormalizationForwardInference", x_desc, param, 2, 4, 0);
}
