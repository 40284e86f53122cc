/* All-reduce kernels that work through peers' memory instead of NCCL: what one launch moves.
 *
 * vLLM's custom all-reduce (csrc/custom_all_reduce.cuh) and FlashInfer's TensorRT-LLM all-reduce
 * fusion (include/flashinfer/comm/trtllm_allreduce_fusion.cuh) write their input into the peers'
 * buffers and reduce what the peers wrote into theirs. launch.c meets such a launch with the
 * peers' launches (kernel_sync.c); this file describes it as the collective it is, so its
 * duration comes from the all-reduce model (predictors/collectives.py ipc_allreduce_plan) rather
 * than from the bytes its pointers happen to reach:
 *
 *   cross_device_reduce_1stage<T, ngpus>(RankData*, RankSignals, Signal*, T*, int rank, int size)
 *   cross_device_reduce_2stage<T, ngpus>(same)          size: 16-byte packs of T per rank
 *   allreduce_fusion_kernel_oneshot_lamport<Pattern, T, NRanks, Fp32Acc, Trigger>(AllReduceFusionParams<T>)
 *   allreduce_fusion_kernel_twoshot_sync<Pattern, T, NRanks, Fp32Acc>(AllReduceFusionParams<T>, ...)
 *   oneshotAllreduceFusionKernel<(uint8_t)WorldSize, T, ...>(AllReduceKernelParams<T>)   (MNNVL)
 *   twoshotAllreduceKernel<(uint8_t)WorldSize, T, ...>(AllReduceKernelParams<T>)
 *   rmsNormLamport<T, ...>(AllReduceKernelParams<T>): the two-shot path's residual add and
 *       RMSNorm of what the peers wrote; a local kernel, described by its bytes
 *   torch symmetric memory (CUDASymmetricMemoryOps.cu), size_t counts in elements:
 *   multimem_all_reduce_kernel<T, align>(T* mc, numel, uint32_t** pads, rank, world_size)
 *   one_shot_all_reduce_kernel<T, align, W>(T** in, T* out, T* in, offset, numel, pads, rank, world)
 *   two_shot_all_reduce_kernel<T, align, W, ...>(T** in, T* out, offset, numel, pads, rank, world, last_dim)
 *   two_shot_all_reduce_kernel_inplace<T, align, W>(T** in, offset, numel, pads, rank, world)
 *
 * AllReduceFusionParams<T> begins {int nranks; int rank; int size (elements); int hidden_dim; ...};
 * the MNNVL AllReduceKernelParams<T> has 8 pointers, then {int nRanks; int rank; int numTokens;
 * int tokenDim; ...}. */
#include <stdlib.h>
#include <string.h>

#include "kernel_shapes.h"

#define NO_RANKS 0xff

enum comm_kind { COMM_NONE = 0, COMM_PLAIN, COMM_TRTLLM_FUSION, COMM_MNNVL, COMM_MNNVL_NORM };

typedef struct comm_rule {
    const char *name;           /* function name with its template's '<' */
    uint8_t kind;               /* enum comm_kind */
    uint8_t algorithm;          /* enum tw_coll_algorithm */
    uint8_t ranks_arg;          /* template argument holding the rank count; NO_RANKS: none */
    /* COMM_PLAIN: the parameters holding the count, this rank and the rank count (COMM_NO_PARAM: the
     * template's), their total, and the bytes one counted unit holds (0: one element) */
    uint8_t count_param, rank_param, ranks_param, params, unit_bytes;
} comm_rule;

#define COMM_NO_PARAM 0xff
#define PACK_BYTES 16           /* vLLM's packed_t<T>: 16 bytes of T */

static const comm_rule RULES[] = {
    {"cross_device_reduce_1stage<", COMM_PLAIN, TW_COLL_ALGO_IPC_ONESHOT, 1, 5, 4, COMM_NO_PARAM, 6, PACK_BYTES},
    {"cross_device_reduce_2stage<", COMM_PLAIN, TW_COLL_ALGO_IPC_TWOSHOT, 1, 5, 4, COMM_NO_PARAM, 6, PACK_BYTES},
    {"allreduce_fusion_kernel_oneshot_lamport<", COMM_TRTLLM_FUSION, TW_COLL_ALGO_IPC_ONESHOT, 2, 0, 0, 0, 0, 0},
    {"allreduce_fusion_kernel_twoshot_sync<", COMM_TRTLLM_FUSION, TW_COLL_ALGO_IPC_TWOSHOT, 2, 0, 0, 0, 0, 0},
    {"oneshotAllreduceFusionKernel<", COMM_MNNVL, TW_COLL_ALGO_IPC_ONESHOT, 0, 0, 0, 0, 0, 0},
    {"twoshotAllreduceKernel<", COMM_MNNVL, TW_COLL_ALGO_IPC_TWOSHOT, 0, 0, 0, 0, 0, 0},
    {"rmsNormLamport<", COMM_MNNVL_NORM, TW_COLL_ALGO_NCCL, NO_RANKS, 0, 0, 0, 0, 0},
    {"multimem_all_reduce_kernel<", COMM_PLAIN, TW_COLL_ALGO_IPC_MULTIMEM, NO_RANKS, 1, 3, 4, 5, 0},
    {"one_shot_all_reduce_kernel<", COMM_PLAIN, TW_COLL_ALGO_IPC_ONESHOT, 2, 4, 6, 7, 8, 0},
    {"two_shot_all_reduce_kernel<", COMM_PLAIN, TW_COLL_ALGO_IPC_TWOSHOT, 2, 3, 5, 6, 8, 0},
    {"two_shot_all_reduce_kernel_inplace<", COMM_PLAIN, TW_COLL_ALGO_IPC_TWOSHOT, 2, 2, 4, 5, 6, 0},
};

#define MNNVL_RANKS_AT 64       /* AllReduceKernelParams<T>: after its 8 pointers */

#define MAX_RANKS 64

/* The element types these kernels are instantiated for. */
static uint64_t elem_bytes(uint8_t dtype)
{
    return dtype == TW_DT_F32 ? 4 : dtype == TW_DT_F16 || dtype == TW_DT_BF16 ? 2 : 0;
}

/* The index-th template argument after `open` (just past '<') as a number, -1 if it is none. */
static long template_number(const char *open, unsigned index)
{
    int depth = 0;
    unsigned at = 0;
    const char *start = open;
    for (const char *p = open; *p; p++) {
        if (*p == '<' || *p == '(')
            depth++;
        else if ((*p == '>' || *p == ')') && depth > 0)
            depth--;
        else if ((*p == ',' || *p == '>') && depth == 0) {
            if (at == index) {
                while (*start == ' ')
                    start++;
                if (*start == '(')   /* a cast: (unsigned char)2 */
                    start = strchr(start, ')') + 1;
                char *end;
                long v = strtol(start, &end, 10);
                return end > start && (end == p || *end == ' ') ? v : -1;
            }
            at++;
            start = p + 1;
        }
        if (*p == '>' && depth == 0)
            break;
    }
    return -1;
}

bool tw_comm_kernel_parse(const char *text, size_t param_open, tw_kernel_shape *out)
{
    for (size_t r = 0; r < sizeof RULES / sizeof RULES[0]; r++) {
        const char *found = strstr(text, RULES[r].name);
        if (found == NULL || (size_t)(found - text) >= param_open)
            continue;
        if (elem_bytes(out->dtype) == 0)
            return false;
        if (RULES[r].ranks_arg == NO_RANKS) {   /* a local kernel, or ranks in the parameters */
            out->rule = (uint16_t)r;
            out->pointer_tables = RULES[r].algorithm != TW_COLL_ALGO_NCCL;
            return true;
        }
        long ranks = template_number(found + strlen(RULES[r].name), RULES[r].ranks_arg);
        if (ranks < 2 || ranks > MAX_RANKS)
            return false;
        out->rule = (uint16_t)r;
        out->comm_ranks = (uint8_t)ranks;
        out->pointer_tables = true;
        return true;
    }
    return false;
}

static bool param_i32(const tw_param_layout *l, void **args, uint32_t param, uint32_t offset, int32_t *out)
{
    if (param >= l->count || args[param] == NULL || l->size[param] < offset + sizeof *out)
        return false;
    memcpy(out, (const char *)args[param] + offset, sizeof *out);
    return true;
}

/* An integer parameter of 4 or 8 bytes, as a non-negative count (-1: none or out of range). */
static int64_t param_count(const tw_param_layout *l, void **args, uint32_t param)
{
    if (param >= l->count || args[param] == NULL || (l->size[param] != 4 && l->size[param] != 8))
        return -1;
    int64_t v = 0;
    if (l->size[param] == 4) {
        int32_t v32;
        memcpy(&v32, args[param], sizeof v32);
        v = v32;
    } else {
        memcpy(&v, args[param], sizeof v);
    }
    return v >= 0 && v < (1LL << 40) ? v : -1;
}

bool tw_comm_kernel_describe(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    const comm_rule *rule = &RULES[shape->rule];
    uint64_t elem = elem_bytes(shape->dtype);
    int32_t ranks = shape->comm_ranks, size = 0, rank = 0;
    uint64_t count;
    if (rule->kind == COMM_PLAIN) {
        int64_t n = param_count(l, args, rule->count_param), r = param_count(l, args, rule->rank_param);
        int64_t w = rule->ranks_param == COMM_NO_PARAM ? ranks : param_count(l, args, rule->ranks_param);
        if (l->count != rule->params || n <= 0 || r < 0 || w < 2 || w > MAX_RANKS ||
            (rule->ranks_param != COMM_NO_PARAM && shape->comm_ranks != 0 && w != shape->comm_ranks))
            return false;
        ranks = (int32_t)w, rank = (int32_t)r;
        count = rule->unit_bytes ? (uint64_t)n * rule->unit_bytes / elem : (uint64_t)n;
    } else if (rule->kind == COMM_TRTLLM_FUSION) {
        if (!param_i32(l, args, 0, 0, &ranks) || !param_i32(l, args, 0, 4, &rank) || !param_i32(l, args, 0, 8, &size))
            return false;
        count = size > 0 ? (uint64_t)size : 0;
    } else {   /* MNNVL: the collectives and the norm after the two-shot one */
        int32_t tokens = 0, dim = 0;
        if (!param_i32(l, args, 0, MNNVL_RANKS_AT, &ranks) || !param_i32(l, args, 0, MNNVL_RANKS_AT + 4, &rank) ||
            !param_i32(l, args, 0, MNNVL_RANKS_AT + 8, &tokens) || !param_i32(l, args, 0, MNNVL_RANKS_AT + 12, &dim) ||
            tokens <= 0 || dim <= 0)
            return false;
        count = (uint64_t)tokens * (uint64_t)dim;
        if (rule->kind == COMM_MNNVL_NORM) {
            /* reads the reduced values, the residual and gamma; writes the sum and the norm */
            desc->bytes = (4 * count + (uint64_t)dim) * elem;
            return rank >= 0 && rank < ranks;
        }
    }
    if ((shape->comm_ranks != 0 && ranks != shape->comm_ranks) || ranks < 2 || rank < 0 || rank >= ranks ||
        count == 0 || elem == 0)
        return false;
    desc->kind = TW_OP_COLLECTIVE;
    desc->dtype_a = desc->dtype_out = shape->dtype;
    desc->bytes = count * elem;
    memset(desc->dims, 0, sizeof desc->dims);
    desc->dims[0] = ranks;
    desc->dims[1] = (int64_t)count;
    desc->dims[4] = rule->algorithm;
    desc->dims[5] = (int64_t)desc->grid[0] * desc->grid[1] * desc->grid[2];
    return true;
}
