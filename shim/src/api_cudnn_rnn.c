/* cuDNN's RNN API (v8 forms) as torch's nn.RNN / nn.GRU / nn.LSTM call it: dropout, RNN and RNN
 * data descriptors, the weight space and its per-matrix layout, temp-space sizes, forward and
 * backward. An RNN call becomes the GEMMs of cuDNN's standard algorithm, each a TW_OP_GEMM on the
 * handle's stream: per layer and direction, one GEMM of the input weights over every time step
 * (m = gates x hidden, n = seq x batch, k = the layer's input) and one GEMM of the recurrent
 * weights per time step (m = gates x hidden, n = batch, k = hidden); backward data runs the same
 * shapes for the gradients, backward weights one GEMM per weight matrix over all steps. The
 * cell's elementwise work is small next to them and not counted. */
#include <stdlib.h>
#include <string.h>

#include <cudnn_adv.h>
#include <cudnn_ops.h>

#include "dtype_map.h"
#include "tw_core.h"

#define RNN_MAGIC 0x6e6e72ULL
#define RNN_DATA_MAGIC 0x61746164ULL
#define DROPOUT_MAGIC 0x706f7264ULL

struct cudnnRNNStruct {
    uint64_t magic;
    cudnnRNNMode_t cell;
    cudnnRNNBiasMode_t bias;
    cudnnDirectionMode_t direction;
    cudnnDataType_t dtype;
    int32_t input_size, hidden_size, proj_size, layers;
};

struct cudnnRNNDataStruct {
    uint64_t magic;
    cudnnDataType_t dtype;
    int max_seq, batch, vector;
};

struct cudnnDropoutStruct {
    uint64_t magic;
    float dropout;
    void *states;
    size_t state_bytes;
    unsigned long long seed;
};

static bool rnn_ok(const struct cudnnRNNStruct *r) { return r != NULL && r->magic == RNN_MAGIC && r->layers > 0; }
static bool data_ok(const struct cudnnRNNDataStruct *d) { return d != NULL && d->magic == RNN_DATA_MAGIC && d->batch > 0; }

static int gates(const struct cudnnRNNStruct *r)
{
    return r->cell == CUDNN_LSTM ? 4 : r->cell == CUDNN_GRU ? 3 : 1;
}

static int directions(const struct cudnnRNNStruct *r) { return r->direction == CUDNN_BIDIRECTIONAL ? 2 : 1; }

static size_t elem_bytes(cudnnDataType_t t)
{
    return t == CUDNN_DATA_DOUBLE ? 8 : t == CUDNN_DATA_FLOAT ? 4 : 2;
}

/* Input width of a layer: the input for the first, the previous layer's output after. */
static int64_t layer_input(const struct cudnnRNNStruct *r, int layer)
{
    return layer == 0 ? r->input_size : (int64_t)r->hidden_size * directions(r);
}

static bool has_bias(const struct cudnnRNNStruct *r, bool recurrent)
{
    switch (r->bias) {
    case CUDNN_RNN_NO_BIAS: return false;
    case CUDNN_RNN_SINGLE_INP_BIAS: return !recurrent;
    case CUDNN_RNN_SINGLE_REC_BIAS: return recurrent;
    default: return true;
    }
}

/* Elements of one pseudo-layer (layer x direction): its matrices, then its biases. */
static uint64_t pseudo_layer_elements(const struct cudnnRNNStruct *r, int layer, uint64_t *matrices)
{
    uint64_t h = (uint64_t)r->hidden_size, g = (uint64_t)gates(r);
    *matrices = g * h * (uint64_t)layer_input(r, layer) + g * h * h;
    return *matrices + g * h * (has_bias(r, false) + has_bias(r, true));
}

static uint64_t weight_elements(const struct cudnnRNNStruct *r)
{
    uint64_t total = 0, matrices;
    for (int layer = 0; layer < r->layers; layer++)
        total += (uint64_t)directions(r) * pseudo_layer_elements(r, layer, &matrices);
    return total;
}

/* ------------------------------------------------------------------ dropout */

TW_EXPORT cudnnStatus_t cudnnCreateDropoutDescriptor(cudnnDropoutDescriptor_t *desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    struct cudnnDropoutStruct *d = calloc(1, sizeof *d);
    if (d == NULL)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    d->magic = DROPOUT_MAGIC;
    *desc = d;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnDestroyDropoutDescriptor(cudnnDropoutDescriptor_t desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_SUCCESS;
    if (desc->magic != DROPOUT_MAGIC)
        return CUDNN_STATUS_BAD_PARAM;
    desc->magic = 0;
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}

/* The RNG state: a curandState (48 bytes) per thread of one 256-thread block per SM (the amount
 * only sizes an allocation). */
TW_EXPORT cudnnStatus_t cudnnDropoutGetStatesSize(cudnnHandle_t handle, size_t *bytes)
{
    cudaStream_t stream;
    if (cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS || bytes == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    *bytes = (size_t)tw_spec()->sm_count * 256 * 48;
    return CUDNN_STATUS_SUCCESS;
}

static cudnnStatus_t set_dropout(cudnnDropoutDescriptor_t desc, cudnnHandle_t handle, float dropout, void *states,
                                 size_t bytes, unsigned long long seed)
{
    cudaStream_t stream;
    if (desc == NULL || desc->magic != DROPOUT_MAGIC || cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS ||
        dropout < 0 || dropout > 1)
        return CUDNN_STATUS_BAD_PARAM;
    desc->dropout = dropout;
    desc->states = states;
    desc->state_bytes = bytes;
    desc->seed = seed;
    return CUDNN_STATUS_SUCCESS;
}

/* Setting initialises the RNG states on the GPU: one pass writing them. */
TW_EXPORT cudnnStatus_t cudnnSetDropoutDescriptor(cudnnDropoutDescriptor_t desc, cudnnHandle_t handle,
                                                  float dropout, void *states, size_t bytes,
                                                  unsigned long long seed)
{
    cudnnStatus_t st = set_dropout(desc, handle, dropout, states, bytes, seed);
    if (st != CUDNN_STATUS_SUCCESS || states == NULL || bytes == 0)
        return st;
    cudaStream_t stream = NULL;
    cudnnGetStream(handle, &stream);
    tw_stream *s = tw_stream_resolve(stream);
    tw_desc d;
    memset(&d, 0, sizeof d);
    d.kind = TW_OP_LIBRARY;
    d.device = (uint32_t)tw_stream_device(s);
    d.bytes = bytes;
    d.name_id = tw_name_intern("cudnnSetDropoutDescriptor");
    tw_submit(s, &d);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnRestoreDropoutDescriptor(cudnnDropoutDescriptor_t desc, cudnnHandle_t handle,
                                                      float dropout, void *states, size_t bytes,
                                                      unsigned long long seed)
{
    return set_dropout(desc, handle, dropout, states, bytes, seed); /* states kept as they are */
}

/* ------------------------------------------------------------------ RNN and data descriptors */

TW_EXPORT cudnnStatus_t cudnnCreateRNNDescriptor(cudnnRNNDescriptor_t *desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    struct cudnnRNNStruct *r = calloc(1, sizeof *r);
    if (r == NULL)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    r->magic = RNN_MAGIC;
    *desc = r;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnDestroyRNNDescriptor(cudnnRNNDescriptor_t desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_SUCCESS;
    if (desc->magic != RNN_MAGIC)
        return CUDNN_STATUS_BAD_PARAM;
    desc->magic = 0;
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnSetRNNDescriptor_v8(cudnnRNNDescriptor_t desc, cudnnRNNAlgo_t algo,
                                                 cudnnRNNMode_t cell, cudnnRNNBiasMode_t bias,
                                                 cudnnDirectionMode_t direction, cudnnRNNInputMode_t input_mode,
                                                 cudnnDataType_t dtype, cudnnDataType_t math_precision,
                                                 cudnnMathType_t math_type, int32_t input_size,
                                                 int32_t hidden_size, int32_t proj_size, int32_t layers,
                                                 cudnnDropoutDescriptor_t dropout, uint32_t aux_flags)
{
    if (desc == NULL || desc->magic != RNN_MAGIC || input_size <= 0 || hidden_size <= 0 || layers <= 0 ||
        (unsigned)cell > CUDNN_GRU || (unsigned)direction > CUDNN_BIDIRECTIONAL)
        return CUDNN_STATUS_BAD_PARAM;
    if (proj_size != hidden_size) {
        tw_unimplemented("cudnnSetRNNDescriptor_v8(projection)");
        return CUDNN_STATUS_NOT_SUPPORTED; /* LSTM projections are not modelled */
    }
    desc->cell = cell;
    desc->bias = bias;
    desc->direction = direction;
    desc->dtype = dtype;
    desc->input_size = input_size;
    desc->hidden_size = hidden_size;
    desc->proj_size = proj_size;
    desc->layers = layers;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnCreateRNNDataDescriptor(cudnnRNNDataDescriptor_t *desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
    struct cudnnRNNDataStruct *d = calloc(1, sizeof *d);
    if (d == NULL)
        return CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    d->magic = RNN_DATA_MAGIC;
    *desc = d;
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnDestroyRNNDataDescriptor(cudnnRNNDataDescriptor_t desc)
{
    if (desc == NULL)
        return CUDNN_STATUS_SUCCESS;
    if (desc->magic != RNN_DATA_MAGIC)
        return CUDNN_STATUS_BAD_PARAM;
    desc->magic = 0;
    free(desc);
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnSetRNNDataDescriptor(cudnnRNNDataDescriptor_t desc, cudnnDataType_t dtype,
                                                  cudnnRNNDataLayout_t layout, int max_seq, int batch, int vector,
                                                  const int seq_lengths[], void *padding_fill)
{
    if (desc == NULL || desc->magic != RNN_DATA_MAGIC || max_seq <= 0 || batch <= 0 || vector <= 0 ||
        seq_lengths == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    for (int i = 0; i < batch; i++)
        if (seq_lengths[i] < 0 || seq_lengths[i] > max_seq)
            return CUDNN_STATUS_BAD_PARAM;
    desc->dtype = dtype;
    desc->max_seq = max_seq;
    desc->batch = batch;
    desc->vector = vector;
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ weights and temp space */

TW_EXPORT cudnnStatus_t cudnnGetRNNWeightSpaceSize(cudnnHandle_t handle, cudnnRNNDescriptor_t desc, size_t *bytes)
{
    cudaStream_t stream;
    if (cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS || !rnn_ok(desc) || bytes == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    *bytes = weight_elements(desc) * elem_bytes(desc->dtype);
    return CUDNN_STATUS_SUCCESS;
}

/* Where matrix and bias `lin` of pseudo-layer `pseudo` lie in the weight space: per pseudo-layer
 * (layer-major, direction-minor) all its matrices in linear-layer order, then all its biases
 * (gates x input matrices first: IDs 0..gates-1 act on the layer input, gates..2 gates-1 on h). */
TW_EXPORT cudnnStatus_t cudnnGetRNNWeightParams(cudnnHandle_t handle, cudnnRNNDescriptor_t desc, int32_t pseudo,
                                                size_t weight_bytes, const void *weights, int32_t lin,
                                                cudnnTensorDescriptor_t m_desc, void **m_addr,
                                                cudnnTensorDescriptor_t b_desc, void **b_addr)
{
    cudaStream_t stream;
    if (cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS || !rnn_ok(desc) || weights == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    int g = gates(desc), dirs = directions(desc);
    if (pseudo < 0 || pseudo >= desc->layers * dirs || lin < 0 || lin >= 2 * g)
        return CUDNN_STATUS_BAD_PARAM;
    if (weight_bytes < weight_elements(desc) * elem_bytes(desc->dtype))
        return CUDNN_STATUS_BAD_PARAM;
    int layer = pseudo / dirs;
    uint64_t base = 0, matrices;
    for (int p = 0; p < pseudo; p++)
        base += pseudo_layer_elements(desc, p / dirs, &matrices);
    pseudo_layer_elements(desc, layer, &matrices);
    bool recurrent = lin >= g;
    uint64_t h = (uint64_t)desc->hidden_size, in = (uint64_t)layer_input(desc, layer);
    uint64_t matrix_at = recurrent ? g * h * in + (uint64_t)(lin - g) * h * h : (uint64_t)lin * h * in;
    uint64_t bias_at = matrices + (recurrent && has_bias(desc, false) ? g * h : 0) + (uint64_t)(lin % g) * h;
    size_t e = elem_bytes(desc->dtype);
    cudnnDataType_t dtype = desc->dtype;
    if (m_addr != NULL) {
        *m_addr = (char *)weights + (base + matrix_at) * e;
        int dims[3] = {1, (int)h, (int)(recurrent ? h : in)}, strides[3] = {dims[1] * dims[2], dims[2], 1};
        if (m_desc != NULL && cudnnSetTensorNdDescriptor(m_desc, dtype, 3, dims, strides) != CUDNN_STATUS_SUCCESS)
            return CUDNN_STATUS_BAD_PARAM;
    }
    if (b_addr != NULL) {
        *b_addr = has_bias(desc, recurrent) ? (char *)weights + (base + bias_at) * e : NULL;
        int dims[3] = {1, (int)h, 1}, strides[3] = {(int)h, 1, 1};
        if (*b_addr != NULL && b_desc != NULL &&
            cudnnSetTensorNdDescriptor(b_desc, dtype, 3, dims, strides) != CUDNN_STATUS_SUCCESS)
            return CUDNN_STATUS_BAD_PARAM;
    }
    return CUDNN_STATUS_SUCCESS;
}

/* Training keeps every step's gate activations for the backward pass. */
TW_EXPORT cudnnStatus_t cudnnGetRNNTempSpaceSizes(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                  cudnnForwardMode_t mode, cudnnRNNDataDescriptor_t x,
                                                  size_t *work_bytes, size_t *reserve_bytes)
{
    cudaStream_t stream;
    if (cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS || !rnn_ok(desc) || !data_ok(x))
        return CUDNN_STATUS_BAD_PARAM;
    uint64_t steps = (uint64_t)x->max_seq * (uint64_t)x->batch;
    uint64_t gate_values = steps * (uint64_t)desc->hidden_size * (uint64_t)gates(desc);
    if (work_bytes != NULL)
        *work_bytes = gate_values * (uint64_t)directions(desc) * elem_bytes(desc->dtype);
    if (reserve_bytes != NULL)
        *reserve_bytes = mode == CUDNN_FWD_MODE_TRAINING
                             ? gate_values * (uint64_t)(desc->layers * directions(desc)) * elem_bytes(desc->dtype)
                             : 0;
    return CUDNN_STATUS_SUCCESS;
}

/* ------------------------------------------------------------------ compute */

static void gemm(tw_stream *s, const struct cudnnRNNStruct *r, const char *name, int64_t m, int64_t n, int64_t k)
{
    size_t e = elem_bytes(r->dtype);
    tw_desc d;
    memset(&d, 0, sizeof d);
    d.kind = TW_OP_GEMM;
    d.device = (uint32_t)tw_stream_device(s);
    d.dtype_a = d.dtype_b = d.dtype_out = tw_dtype_from_cudnn(r->dtype);
    d.dtype_compute = tw_dtype_from_cudnn(r->dtype == CUDNN_DATA_DOUBLE ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT);
    d.dims[0] = m;
    d.dims[1] = n;
    d.dims[2] = k;
    d.dims[3] = 1;
    d.dims[4] = m;
    d.dims[5] = k;
    d.dims[6] = m;
    d.bytes = (uint64_t)(m * k + k * n + m * n) * e;
    d.flops = 2ull * (uint64_t)m * (uint64_t)n * (uint64_t)k;
    d.name_id = tw_name_intern(name);
    tw_submit(s, &d);
}

enum rnn_pass { PASS_FORWARD, PASS_BACKWARD_DATA, PASS_BACKWARD_WEIGHTS };

/* The GEMMs of one pass over every layer and direction. */
static cudnnStatus_t run_pass(cudnnHandle_t handle, const struct cudnnRNNStruct *r,
                              const struct cudnnRNNDataStruct *x, enum rnn_pass pass)
{
    static const char *const names[3][2] = {{"cudnn:rnn_fwd_input", "cudnn:rnn_fwd_recurrent"},
                                            {"cudnn:rnn_bwd_data_input", "cudnn:rnn_bwd_data_recurrent"},
                                            {"cudnn:rnn_bwd_weights_input", "cudnn:rnn_bwd_weights_recurrent"}};
    cudaStream_t stream = NULL;
    if (cudnnGetStream(handle, &stream) != CUDNN_STATUS_SUCCESS || !rnn_ok(r) || !data_ok(x) ||
        x->vector != r->input_size)
        return CUDNN_STATUS_BAD_PARAM;
    tw_stream *s = tw_stream_resolve(stream);
    int64_t gh = (int64_t)gates(r) * r->hidden_size, steps = (int64_t)x->max_seq * x->batch;
    for (int layer = 0; layer < r->layers; layer++) {
        for (int dir = 0; dir < directions(r); dir++) {
            int64_t in = layer_input(r, layer);
            if (pass == PASS_BACKWARD_WEIGHTS) { /* dW = dgates^T x inputs, over all steps */
                gemm(s, r, names[pass][0], gh, in, steps);
                gemm(s, r, names[pass][1], gh, r->hidden_size, steps);
                continue;
            }
            for (int t = 0; t < x->max_seq; t++) /* the recurrence: one GEMM per step */
                gemm(s, r, names[pass][1], pass == PASS_FORWARD ? gh : r->hidden_size, x->batch,
                     pass == PASS_FORWARD ? r->hidden_size : gh);
            if (pass == PASS_FORWARD)
                gemm(s, r, names[pass][0], gh, steps, in);
            else
                gemm(s, r, names[pass][0], in, steps, gh);
        }
    }
    return CUDNN_STATUS_SUCCESS;
}

TW_EXPORT cudnnStatus_t cudnnRNNForward(cudnnHandle_t handle, cudnnRNNDescriptor_t desc, cudnnForwardMode_t mode,
                                        const int32_t seq_lengths[], cudnnRNNDataDescriptor_t x_desc,
                                        const void *x, cudnnRNNDataDescriptor_t y_desc, void *y,
                                        cudnnTensorDescriptor_t h_desc, const void *hx, void *hy,
                                        cudnnTensorDescriptor_t c_desc, const void *cx, void *cy,
                                        size_t weight_bytes, const void *weights, size_t work_bytes, void *work,
                                        size_t reserve_bytes, void *reserve)
{
    if (x == NULL || y == NULL || weights == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    return run_pass(handle, desc, x_desc, PASS_FORWARD);
}

TW_EXPORT cudnnStatus_t cudnnRNNBackwardData_v8(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                const int32_t seq_lengths[], cudnnRNNDataDescriptor_t y_desc,
                                                const void *y, const void *dy, cudnnRNNDataDescriptor_t x_desc,
                                                void *dx, cudnnTensorDescriptor_t h_desc, const void *hx,
                                                const void *dhy, void *dhx, cudnnTensorDescriptor_t c_desc,
                                                const void *cx, const void *dcy, void *dcx, size_t weight_bytes,
                                                const void *weights, size_t work_bytes, void *work,
                                                size_t reserve_bytes, void *reserve)
{
    if (dy == NULL || dx == NULL || weights == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    return run_pass(handle, desc, x_desc, PASS_BACKWARD_DATA);
}

TW_EXPORT cudnnStatus_t cudnnRNNBackwardWeights_v8(cudnnHandle_t handle, cudnnRNNDescriptor_t desc,
                                                   cudnnWgradMode_t add_grad, const int32_t seq_lengths[],
                                                   cudnnRNNDataDescriptor_t x_desc, const void *x,
                                                   cudnnTensorDescriptor_t h_desc, const void *hx,
                                                   cudnnRNNDataDescriptor_t y_desc, const void *y,
                                                   size_t weight_bytes, void *dweights, size_t work_bytes,
                                                   void *work, size_t reserve_bytes, void *reserve)
{
    if (x == NULL || dweights == NULL)
        return CUDNN_STATUS_BAD_PARAM;
    return run_pass(handle, desc, x_desc, PASS_BACKWARD_WEIGHTS);
}
