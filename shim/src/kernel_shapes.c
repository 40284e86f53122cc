/* Kernel families whose arguments say what a launch reads, writes and computes.
 *
 * A family is recognised once per kernel from its demangled name; each launch is then
 * described from the argument values (and, for attention, from the sequence-length buffers
 * the arguments point to: small host-backed device allocations, memory.c). Where a family
 * passes a struct by value, the field offsets below were read off the public source of the
 * kernel (the file named at each table) and checked against launches of the shipped binaries
 * with known shapes (vLLM 0.32's vllm_flash_attn, torch 2.13's libtorch_cuda). Every decoded
 * field is validated (ranges, the launch grid, array contents); a launch that does not
 * validate keeps launch.c's generic estimate, so a layout change degrades to "estimated" (and
 * the run reports the launch: summary.json underdescribed), never to a wrong exact answer. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_shapes.h"

enum family {
    FAM_GENERIC = 0,
    FAM_FA2_FWD,          /* flash::flash_fwd_kernel / flash_fwd_splitkv_kernel (Flash_fwd_params) */
    FAM_FA2_BWD,          /* flash_bwd_dq_dk_dv_loop[_seqk_parallel]_kernel (Flash_bwd_params) */
    FAM_FA2_COMBINE,      /* flash_fwd_splitkv_combine_kernel */
    FAM_FA2_BWD_DOT,      /* flash_bwd_dot_do_o_kernel: reads dO and O */
    FAM_FA2_BWD_CONVERT,  /* flash_bwd_convert_dq_kernel / convert_dkv: fp32 accumulators out */
    FAM_FA3_FWD,          /* cutlass::device_kernel<flash::FlashAttnFwdSm90<...>> */
    FAM_FA3_COMBINE,      /* cutlass::device_kernel<flash::FlashAttnFwdCombine<...>> */
    FAM_MEMEFF_FWD,       /* fmha_cutlassF_* (AttentionKernel::Params) */
    FAM_MEMEFF_BWD,       /* fmha_cutlassB_* (AttentionBackwardKernel::Params) */
    FAM_ROWS,             /* row-wise kernels with plain signatures: softmax, norms (rows[]) */
    FAM_ELEMENTWISE,      /* TensorIterator kernels: (int N, functor, data...) */
    FAM_REDUCE,           /* at::native::reduce_kernel<..., ReduceOp<...>> */
    FAM_CAT,              /* CatArrayBatchedCopy* */
    FAM_GATHER,           /* vectorized_gather_kernel */
    FAM_MULTI_TENSOR,     /* multi_tensor_apply_kernel<TensorListMetadata<depth>, ...> */
    FAM_ROTARY,           /* vLLM's rotary_embedding_kernel: query and key heads of each token */
    FAM_PEER_ALLREDUCE,   /* all-reduce kernels through peers' memory (kernel_shapes_comm.c) */
};

#define BIG_PARAM 16u               /* params at least this large are by-value structs */
#define MAX_BATCH 65536u            /* sequences per attention launch we read lengths for */
#define MAX_TOKENS (1u << 24)       /* a sequence length beyond this is garbage */

/* ------------------------------------------------------------------ bounded reads */

static bool arg_bytes(const tw_param_layout *l, void **args, uint32_t param, uint32_t off, uint32_t n,
                      void *out)
{
    if (param >= l->count || args[param] == NULL || off > l->size[param] || n > l->size[param] - off)
        return false;
    memcpy(out, (const char *)args[param] + off, n);
    return true;
}

static int64_t arg_i32(const tw_param_layout *l, void **args, uint32_t param, uint32_t off, bool *ok)
{
    int32_t v = 0;
    if (!arg_bytes(l, args, param, off, sizeof v, &v))
        *ok = false;
    return v;
}

static int64_t arg_i64(const tw_param_layout *l, void **args, uint32_t param, uint32_t off, bool *ok)
{
    int64_t v = 0;
    if (!arg_bytes(l, args, param, off, sizeof v, &v))
        *ok = false;
    return v;
}

static uint64_t arg_u64(const tw_param_layout *l, void **args, uint32_t param, uint32_t off)
{
    uint64_t v = 0;
    (void)arg_bytes(l, args, param, off, sizeof v, &v);
    return v;
}

/* An integer parameter of any width (a plain-signature count). */
static int64_t param_int(const tw_param_layout *l, void **args, uint32_t param, bool *ok)
{
    if (param >= l->count)
        return *ok = false, 0;
    return l->size[param] == 8 ? arg_i64(l, args, param, 0, ok) : arg_i32(l, args, param, 0, ok);
}

static bool device_pointer(uint64_t p, tw_alloc *a)
{
    return p != 0 && tw_mem_lookup((const void *)(uintptr_t)p, a) && a->kind != TW_MEM_HOST_PINNED &&
           a->kind != TW_MEM_HOST_REGISTERED;
}

/* Bytes from p to the end of its device allocation (0: not device memory). */
static uint64_t reach(uint64_t p)
{
    tw_alloc a;
    return device_pointer(p, &a) ? a.base + a.size - p : 0;
}

/* n int32 values of a host-backed device buffer (sequence lengths, cu_seqlens). */
static bool read_device_i32(uint64_t p, uint32_t n, int32_t *out)
{
    tw_alloc a;
    if (!device_pointer(p, &a) || !a.backed || (uint64_t)n * 4 > a.base + a.size - p)
        return false;
    memcpy(out, (const void *)(uintptr_t)p, (size_t)n * 4);
    return true;
}

/* ------------------------------------------------------------------ names */

typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

/* libstdc++'s demangler. Python loads extension modules (and the libstdc++ they need) with
 * RTLD_LOCAL, where RTLD_DEFAULT does not look: the library is asked for by name. */
static demangle_fn find_demangler(void)
{
    void *lib = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
    void *fn = lib != NULL ? dlsym(lib, "__cxa_demangle") : NULL;
    return (demangle_fn)(fn != NULL ? fn : dlsym(RTLD_DEFAULT, "__cxa_demangle"));
}

char *tw_kernel_demangle(const char *mangled)
{
    static demangle_fn demangle;
    if (demangle == NULL)
        demangle = find_demangler();
    if (demangle == NULL || mangled == NULL || strncmp(mangled, "_Z", 2) != 0)
        return NULL;
    int status = 0;
    char *text = demangle(mangled, NULL, NULL, &status);
    if (status != 0) {
        free(text);
        return NULL;
    }
    return text;
}

typedef struct type_size {
    const char *name;
    uint8_t bytes;
    uint8_t dtype;
} type_size;

/* Scalar types as they appear in demangled torch, CUTLASS and CUDA names. */
static const type_size TYPES[] = {
    {"double", 8, TW_DT_F64}, {"float", 4, TW_DT_F32}, {"c10::Half", 2, TW_DT_F16},
    {"c10::BFloat16", 2, TW_DT_BF16}, {"__half", 2, TW_DT_F16}, {"__nv_bfloat16", 2, TW_DT_BF16},
    {"cutlass::half_t", 2, TW_DT_F16}, {"cutlass::bfloat16_t", 2, TW_DT_BF16},
    {"cutlass::float_e4m3_t", 1, TW_DT_F8E4M3}, {"cutlass::float_e5m2_t", 1, TW_DT_F8E5M2},
    {"c10::Float8_e4m3fn", 1, TW_DT_F8E4M3}, {"c10::Float8_e5m2", 1, TW_DT_F8E5M2},
    {"c10::Float8_e4m3fnuz", 1, TW_DT_F8E4M3}, {"c10::Float8_e5m2fnuz", 1, TW_DT_F8E5M2},
    {"__nv_fp8_e4m3", 1, TW_DT_F8E4M3}, {"__nv_fp8_e5m2", 1, TW_DT_F8E5M2},
    {"c10::complex<float>", 8, TW_DT_C64}, {"c10::complex<double>", 16, TW_DT_C128},
    {"long long", 8, TW_DT_I64}, {"unsigned long long", 8, TW_DT_I64}, {"unsigned long", 8, TW_DT_I64},
    {"long", 8, TW_DT_I64}, {"unsigned int", 4, TW_DT_I32}, {"int", 4, TW_DT_I32},
    {"unsigned short", 2, TW_DT_UNKNOWN}, {"short", 2, TW_DT_UNKNOWN}, {"bool", 1, TW_DT_UNKNOWN},
    {"signed char", 1, TW_DT_I8}, {"unsigned char", 1, TW_DT_UNKNOWN}, {"char", 1, TW_DT_I8},
};

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == ':';
}

/* The scalar type spelled exactly by text[0..n) (spaces and "const" trimmed), or NULL. */
static const type_size *exact_type(const char *text, size_t n)
{
    while (n > 0 && text[n - 1] == ' ')
        n--;
    while (n > 0 && *text == ' ')
        text++, n--;
    if (n > 6 && strncmp(text + n - 6, " const", 6) == 0)
        n -= 6;
    if (n > 6 && strncmp(text, "const ", 6) == 0)
        text += 6, n -= 6;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strlen(TYPES[i].name) == n && strncmp(TYPES[i].name, text, n) == 0)
            return &TYPES[i];
    return NULL;
}

/* The widest scalar type named anywhere in text[0..n) as a whole word, and the first
 * floating type named (the kernel's data type, for names like softmax<float, ...>). */
static void scan_types(const char *text, size_t n, uint8_t *widest, uint8_t *first_float)
{
    *widest = 0;
    *first_float = TW_DT_UNKNOWN;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && ident_char(text[i - 1]))
            continue;
        for (size_t t = 0; t < sizeof TYPES / sizeof TYPES[0]; t++) {
            size_t len = strlen(TYPES[t].name);
            if (i + len > n || strncmp(text + i, TYPES[t].name, len) != 0 ||
                (i + len < n && ident_char(text[i + len])))
                continue;
            if (TYPES[t].bytes > *widest)
                *widest = TYPES[t].bytes;
            uint8_t dt = TYPES[t].dtype;
            if (*first_float == TW_DT_UNKNOWN &&
                (dt == TW_DT_F32 || dt == TW_DT_F16 || dt == TW_DT_BF16 || dt == TW_DT_F64 || dt == TW_DT_F8E4M3 ||
                 dt == TW_DT_F8E5M2))
                *first_float = dt;
            break;
        }
    }
}

/* Offset of the last top-level '(' (the parameter list) of a demangled function name. */
static size_t param_list_open(const char *text)
{
    size_t length = strlen(text);
    int depth = 0;
    for (size_t i = length; i-- > 0;) {
        if (text[i] == ')' || text[i] == '>')
            depth++;
        else if ((text[i] == '(' || text[i] == '<') && --depth == 0 && text[i] == '(')
            return i;
    }
    return length;
}

/* Per parameter: pointer or not, const or not, pointee size. */
static void parse_params(const char *text, tw_kernel_shape *out)
{
    size_t open = param_list_open(text), length = strlen(text), start = open + 1;
    if (open >= length)
        return;
    int depth = 0;
    uint32_t index = 0;
    for (size_t i = open + 1; i < length && index < TW_MAX_PARAMS; i++) {
        char c = text[i];
        if (c == '<' || c == '(' || c == '[')
            depth++;
        else if ((c == '>' || c == ']' || c == ')') && depth > 0)
            depth--;
        else if ((c == ',' || c == ')') && depth == 0) {
            size_t end = i;
            while (end > start && text[end - 1] == ' ')
                end--;
            if (end > start && text[end - 1] == '*') {
                bool constant = end - start >= 6 && strncmp(text + end - 6, "const*", 6) == 0;
                const type_size *t = exact_type(text + start, end - 1 - start);
                out->elem_bytes[index] = t ? t->bytes : 0;
                out->pointer_params++;
                if (!constant && index < 64)
                    out->written_params |= 1ull << index;
            } else {
                const type_size *t = exact_type(text + start, end - start);
                if (t != NULL && t->dtype != TW_DT_F32 && t->dtype != TW_DT_F64 && t->bytes >= 4 && index < 64)
                    out->int_params |= 1ull << index;
            }
            index++;
            start = i + 1;
            if (c == ')')
                break;
        }
    }
}

/* Top-level template arguments of the template starting at text (just after its '<'):
 * their starts and lengths, at most max of them. */
static uint32_t template_args(const char *text, const char **starts, size_t *lengths, uint32_t max)
{
    uint32_t count = 0;
    int depth = 0;
    const char *start = text;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '<' || *p == '(')
            depth++;
        else if ((*p == '>' || *p == ')') && depth > 0)
            depth--;
        else if ((*p == ',' || *p == '>') && depth == 0) {
            if (count < max) {
                while (*start == ' ')
                    start++;
                starts[count] = start;
                lengths[count] = (size_t)(p - start);
                count++;
            }
            if (*p == '>')
                break;
            start = p + 1;
        }
    }
    return count;
}

static bool arg_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncmp(s, word, n) == 0;
}

static long arg_long(const char *s, size_t n)
{
    char buffer[32];
    if (n == 0 || n >= sizeof buffer)
        return -1;
    memcpy(buffer, s, n);
    buffer[n] = '\0';
    char *end = NULL;
    long v = strtol(buffer, &end, 10);
    return end != buffer ? v : -1;
}

/* FlashAttention 3: CollectiveMainloopFwdSm90<Stages, ClusterShape, TileShape_MNK, kHeadDimV,
 * Element, ElementAccum, ArchTag, Is_causal, Is_local, Has_softcap, Varlen, ...>
 * (hopper/mainloop_fwd_sm90_tma_gmma_ws.hpp); TileShape_MNK = cute::tuple<C<M>, C<N>, C<headdim>>. */
static void parse_fa3_name(const char *text, tw_kernel_shape *out)
{
    const char *mainloop = strstr(text, "CollectiveMainloopFwdSm90<");
    if (mainloop == NULL)
        return;
    const char *starts[12];
    size_t lengths[12];
    uint32_t n = template_args(mainloop + strlen("CollectiveMainloopFwdSm90<"), starts, lengths, 12);
    if (n < 9)
        return;
    const char *tile = starts[2], *tile_end = starts[2] + lengths[2];
    const char *last = NULL;
    for (const char *p = tile; p < tile_end && (p = strstr(p, "C<")) != NULL && p < tile_end; p += 2)
        last = p;
    if (last != NULL)
        out->head_dim = (uint16_t)arg_long(last + 2, strcspn(last + 2, ">"));
    long dv = arg_long(starts[3], lengths[3]);
    out->head_dim_v = dv > 0 ? (uint16_t)dv : out->head_dim;
    const type_size *element = exact_type(starts[4], lengths[4]);
    if (element != NULL)
        out->dtype = element->dtype;
    out->causal = arg_is(starts[7], lengths[7], "true");
    out->local = arg_is(starts[8], lengths[8], "true");
}

/* torch's memory-efficient kernels: fmha_cutlassF_<dtype>_<aligned>_<Q>x<K>_... */
static void parse_memeff_name(const char *text, tw_kernel_shape *out)
{
    out->dtype = strstr(text, "_bf16_") ? TW_DT_BF16 : strstr(text, "_f16_") ? TW_DT_F16 : TW_DT_F32;
    for (const char *p = strstr(text, "fmha_cutlass"); p != NULL && *p != '\0' && *p != '('; p++) {
        char *end = NULL;
        if (p[0] == '_' && p[1] >= '0' && p[1] <= '9') {
            long q = strtol(p + 1, &end, 10);
            if (end != NULL && *end == 'x') {
                out->block_m = (uint16_t)q;
                return;
            }
        }
    }
}

/* TensorIterator kernels: operands from std::array<char*, K>, or the element-wise lambda's
 * arity ("{lambda(float, float)#1}": two inputs, one output) for the strided kernel. */
static void parse_elementwise_name(const char *text, size_t open, tw_kernel_shape *out)
{
    const char *array = strstr(text, "std::array<char*, ");
    if (array != NULL && (size_t)(array - text) < open) {
        long k = arg_long(array + 18, strcspn(array + 18, "u>"));
        out->operands = k > 0 && k <= 16 ? (uint8_t)k : 0;
        out->operand_array = out->operands > 0;
        /* casting copies: float to half/bfloat16 (Copy.cu's no-cast kernels, lambda(float)), and
         * `.to(dtype)` through a loader and storer that carry both types */
        const char *head = text + strlen("void at::native::");
        if (out->operands == 2 && (strstr(head, "float16_copy_kernel_cuda(") != NULL ||
                                   strstr(head, "bfloat16_copy_kernel_cuda(") != NULL)) {
            out->array_elem_bytes[0] = 2;
            out->array_elem_bytes[1] = 4;
        }
        const char *load = strstr(text, "LoadWithCast<1>"), *store = strstr(text, "StoreWithCast<1>");
        out->cast_params = out->operands == 2 && load != NULL && store != NULL && (size_t)(store - text) < open;
        return;
    }
    const char *lambda = NULL;
    for (const char *p = text; (p = strstr(p, "{lambda(")) != NULL && (size_t)(p - text) < open; p++)
        if (p[8] != ')')
            lambda = p + 8; /* the innermost lambda with parameters is the element-wise one */
    uint8_t arity = 1;
    int depth = 0;
    for (const char *p = lambda; p != NULL && *p != '\0' && !(*p == ')' && depth == 0); p++) {
        if (*p == '<' || *p == '(')
            depth++;
        else if (*p == '>' || *p == ')')
            depth--;
        else if (*p == ',' && depth == 0)
            arity++;
    }
    out->operands = (uint8_t)(arity + 1); /* distinct operands to count in the closure */
}

/* ---- row-wise kernels with plain signatures ----------------------------------------------
 * rows: a parameter index, or ROWS_FROM_GRID (gridDim.x: one row per block, or per token).
 * cols: a parameter index, times a second one when cols2 is not NO_PARAM.
 * touch: per parameter, 'F' = rows x cols elements, 'W' = twice that (read and written, or two
 * halves read), 'R' = rows, 'C' = cols, '.' = nothing; each of its pointer's element type.
 * Signatures: aten/src/ATen/native/cuda/PersistentSoftmax.cuh, SoftMax.cu, layer_norm_kernel.cu;
 * vLLM's csrc/layernorm_kernels.cu, activation_kernels.cu, cache_kernels.cu (as vLLM 0.32
 * builds them: the rule's parameter count must match, else the generic estimate stands). */
#define ROWS_FROM_GRID 100
#define NO_PARAM 255
typedef struct row_rule {
    const char *name;     /* the function's name, followed by '<' */
    uint8_t params;       /* parameter count the signature has */
    uint8_t rows, cols, cols2;
    const char *touch;
} row_rule;

static const row_rule ROW_RULES[] = {
    /* (dst, src, batch_size, stride, element_count, mask, head_chunk_size, is_transformer_mask) */
    {"softmax_warp_forward<", 8, 2, 4, NO_PARAM, "FF..."},
    /* (gradInput, grad, output, batch_size, stride, element_count, mask) */
    {"softmax_warp_backward<", 7, 3, 5, NO_PARAM, "FFF..."},
    /* (output, input, classes): one block per row */
    {"cunn_SoftMaxForward<", 3, ROWS_FROM_GRID, 2, NO_PARAM, "FF."},
    {"cunn_SoftMaxForwardSmem<", 3, ROWS_FROM_GRID, 2, NO_PARAM, "FF."},
    {"cunn_SoftMaxForwardGmem<", 3, ROWS_FROM_GRID, 2, NO_PARAM, "FF."},
    /* (gradInput, output, gradOutput, classes) */
    {"cunn_SoftMaxBackward<", 4, ROWS_FROM_GRID, 3, NO_PARAM, "FFF."},
    {"cunn_SoftMaxBackwardSmem<", 4, ROWS_FROM_GRID, 3, NO_PARAM, "FFF."},
    /* (N, eps, X, gamma, beta, mean, rstd, Y): one block per row */
    {"vectorized_layer_norm_kernel<", 8, ROWS_FROM_GRID, 0, NO_PARAM, "..FCCRRF"},
    /* (dY, X, mean, rstd, gamma, dX, N) */
    {"layer_norm_grad_input_kernel_vectorized<", 7, ROWS_FROM_GRID, 6, NO_PARAM, "FFRRCF."},
    {"layer_norm_grad_input_kernel<", 7, ROWS_FROM_GRID, 6, NO_PARAM, "FFRRCF."},
    /* (M, N, dY, X, mean, rstd, dgamma, dbeta) */
    {"GammaBetaBackwardCUDAKernelTemplate<", 8, 0, 1, NO_PARAM, "..FFRRCC"},
    {"GammaBetaBackwardCUDAKernel<", 8, 0, 1, NO_PARAM, "..FFRRCC"},
    {"GammaBetaBackwardSimpleCUDAKernel<", 8, 0, 1, NO_PARAM, "..FFRRCC"},
    /* (N, eps, X, mean, rstd) */
    {"RowwiseMomentsCUDAKernel<", 5, ROWS_FROM_GRID, 0, NO_PARAM, "..FRR"},
    /* (N, X, mean, rstd, gamma, beta, Y) */
    {"LayerNormForwardCUDAKernel<", 7, ROWS_FROM_GRID, 0, NO_PARAM, ".FRRCCF"},
    /* vLLM, one block per token: (out, input, 5 strides, weight, stride, epsilon, num_tokens, hidden_size) */
    {"rms_norm_kernel<", 12, ROWS_FROM_GRID, 11, NO_PARAM, "FF.....C...."},
    /* (input, input_stride, residual, weight, epsilon, num_tokens, hidden_size, residual_stride):
     * input and residual both read and written */
    {"fused_add_rms_norm_kernel<", 8, ROWS_FROM_GRID, 6, NO_PARAM, "W.WC...."},
    /* (out, input, d, 3 floats): the input holds the gate and the up halves, 2d per token */
    {"act_and_mul_kernel<", 6, ROWS_FROM_GRID, 2, NO_PARAM, "FW...."},
    /* (key, value, key_cache, value_cache, slot_mapping, 5 strides, num_heads, head_size,
     * block_size, k_scale, v_scale, ...): each token's key and value read and written once */
    {"reshape_and_cache_flash_kernel<", 16, ROWS_FROM_GRID, 10, 11, "FFFFR..........."},
};

/* ---- torch's multi-tensor kernels ----------------------------------------------------------
 * multi_tensor_apply_kernel<Metadata, Functor, Args...> (aten/src/ATen/native/cuda/
 * MultiTensorApply.cuh), the metadata TensorListMetadata<depth>, TensorListScalarListMetadata<
 * scalar_t, depth> or FusedOptimizerTensorListMetadata<depth>. What each functor reads and writes,
 * per element of each list, is read off its source: ForeachFunctors.cuh, ForeachReduceOp.cu,
 * ForeachBinaryOpList.cu (CopyFunctor), FusedSgdKernel.cu, fused_adam_utils.cuh,
 * fused_adagrad_utils.cuh. */
enum { LISTS_UNKNOWN = 0, LISTS_PLAIN, LISTS_SCALARS, LISTS_FUSED };

/* Functors <T, depth, r_args_depth, res_arg_index> that read lists 0..r_args_depth-1 and write
 * list res_arg_index (the binary-scalar ones have r_args_depth 1: list 0 alone). */
static const char *const R_ARGS_FUNCTORS[] = {
    "UnaryOpFunctor", "BinaryOpScalarFunctor", "BinaryOpScalarListFunctor", "BinaryOpScalarTensorFunctor",
    "BinaryOpListAlphaFunctor", "PointwiseOpScalarFunctor", "PointwiseOpScalarListFunctor",
    "TernaryOpListFunctor", "TernaryOpScalarFunctor", "TernaryOpScalarListFunctor",
};

/* The unqualified name of the template whose argument list opens at open (text <= open). */
static size_t template_name(const char *text, const char *open, const char **name)
{
    const char *p = open;
    while (p > text && ident_char(p[-1]) && p[-1] != ':')
        p--;
    *name = p;
    return (size_t)(open - p);
}

static long int_arg(const char *const *starts, const size_t *lengths, uint32_t count, uint32_t i)
{
    return i < count ? arg_long(starts[i], lengths[i]) : -1;
}

/* <T, depth, r_args_depth, res_arg_index> from template argument `at` on: the lists read and
 * the one written. */
static bool r_args_access(const char *const *a, const size_t *al, uint32_t count, uint32_t at, tw_tensor_lists *m)
{
    long depth = int_arg(a, al, count, at), r = int_arg(a, al, count, at + 1), res = int_arg(a, al, count, at + 2);
    if (depth != m->depth || r < 1 || r > depth || res < 0 || res >= depth)
        return false;
    m->read_mask = (uint8_t)((1u << r) - 1);
    m->write_mask = (uint8_t)(1u << res);
    return true;
}

/* Fused optimizers: every list read, the lists `written` stored back, the gradients (list 1)
 * too when a grad scale unscaled them. */
static bool optimizer_access(long depth, uint8_t written, tw_tensor_lists *m)
{
    if (depth != m->depth)
        return false;
    m->read_mask = (uint8_t)((1u << depth) - 1);
    m->write_mask = written;
    m->scaled_write_mask = 1u << 1;
    return true;
}

/* The fused optimizers' functors, in FusedOptimizerTensorListMetadata (SGD's in the plain one). */
static bool optimizer_functor(const char *name, size_t name_len, const char *const *a, const size_t *al,
                              uint32_t count, tw_tensor_lists *m)
{
    uint8_t all = (uint8_t)((1u << m->depth) - 1);
    bool fused = m->layout == LISTS_FUSED;
    if (arg_is(name, name_len, "FusedAdamMathFunctorMP")) {
        /* <opmath_t, param_t, grad_t, exp_avg_t, exp_avg_sq_t, max_exp_avg_sq_t, depth, mode, amsgrad> */
        for (uint32_t i = 0; i < m->depth; i++) {
            const type_size *e = 1 + i < count ? exact_type(a[1 + i], al[1 + i]) : NULL;
            if (e == NULL)
                return false;
            m->elem_bytes[i] = e->bytes;
        }
        return fused && optimizer_access(int_arg(a, al, count, 6), all & ~2u, m);
    }
    if (arg_is(name, name_len, "FusedAdamMathFunctor")) /* <T, depth, mode, amsgrad> */
        return fused && optimizer_access(int_arg(a, al, count, 1), all & ~2u, m);
    if (arg_is(name, name_len, "FusedAdagradMathFunctor")) /* <T>: param, grad, state_sum */
        return fused && optimizer_access(3, 1u | 4u, m);
    if (arg_is(name, name_len, "FusedSgdMathFunctor")) /* <T, depth>: param, grad[, momentum_buffer] */
        return !fused && optimizer_access(int_arg(a, al, count, 1), m->depth == 3 ? 1u | 4u : 1u, m);
    return false;
}

/* The foreach ops' functors (ForeachFunctors.cuh and the files that use it). */
static bool foreach_functor(const char *name, size_t name_len, const char *const *a, const size_t *al,
                            uint32_t count, const tw_kernel_shape *shape, tw_tensor_lists *m)
{
    if (m->layout == LISTS_FUSED)
        return false;
    if (arg_is(name, name_len, "CopyFunctor")) { /* <dst_t, src_t, 2, 1, 1>: list 0 is the source */
        const type_size *src = count > 1 ? exact_type(a[1], al[1]) : NULL;
        if (src == NULL || !r_args_access(a, al, count, 2, m) || m->depth != 2)
            return false;
        m->elem_bytes[0] = src->bytes;
        return m->read_mask == 1 && m->write_mask == 2;
    }
    if (arg_is(name, name_len, "LpNormFunctor") || arg_is(name, name_len, "LpMaxFunctor")) {
        /* <T, NormType, out_t, 1, 1, 0> / <T, 1, 1, 0>, (output_per_tensor, max_chunks): one
         * partial per block into the output (the signature's pointer type) */
        bool norm = arg_is(name, name_len, "LpNormFunctor");
        if (!r_args_access(a, al, count, norm ? 3 : 1, m) || shape->elem_bytes[2] == 0)
            return false;
        m->write_mask = 0;
        m->block_out_bytes = shape->elem_bytes[2];
        return true;
    }
    if (arg_is(name, name_len, "ZeroFunctor")) { /* writes zeros: reads nothing */
        if (!r_args_access(a, al, count, 1, m))
            return false;
        m->read_mask = 0;
        return true;
    }
    if (arg_is(name, name_len, "PointwiseOpScalar0dTensorFunctor")) {
        /* list 1 holds 0-d tensors, read once per block as a scalar: lists 0 and 2 per element */
        if (!r_args_access(a, al, count, 1, m) || m->read_mask != 3)
            return false;
        m->read_mask = 1u | 4u;
        return true;
    }
    for (size_t i = 0; i < sizeof R_ARGS_FUNCTORS / sizeof R_ARGS_FUNCTORS[0]; i++)
        if (arg_is(name, name_len, R_ARGS_FUNCTORS[i]))
            return r_args_access(a, al, count, 1, m);
    return false;
}

/* The functor (the kernel's second template argument): what it does with each list. Its first
 * template argument is the lists' element type. */
static bool parse_functor(const char *text, size_t n, const tw_kernel_shape *shape, tw_tensor_lists *m)
{
    const char *open = memchr(text, '<', n), *name = NULL, *a[10];
    size_t al[10];
    if (open == NULL)
        return false;
    size_t name_len = template_name(text, open, &name);
    uint32_t count = template_args(open + 1, a, al, 10);
    const type_size *t = count > 0 ? exact_type(a[0], al[0]) : NULL;
    if (t == NULL)
        return false;
    memset(m->elem_bytes, t->bytes, m->depth);
    if (strncmp(name, "Fused", 5) == 0)
        return optimizer_functor(name, name_len, a, al, count, m);
    return foreach_functor(name, name_len, a, al, count, shape, m);
}

/* The metadata (first template argument) and the functor (second); leaves lists' layout
 * LISTS_UNKNOWN when either is not one this file knows. */
static void parse_multi_tensor_name(const char *args, tw_kernel_shape *out)
{
    const char *a[2], *t[2], *name = NULL;
    size_t al[2], tl[2];
    tw_tensor_lists m;
    memset(&m, 0, sizeof m);
    const char *open = template_args(args, a, al, 2) == 2 ? memchr(a[0], '<', al[0]) : NULL;
    if (open == NULL)
        return;
    size_t name_len = template_name(a[0], open, &name);
    uint32_t n = template_args(open + 1, t, tl, 2);
    long depth = -1;
    if (arg_is(name, name_len, "TensorListMetadata") || arg_is(name, name_len, "FusedOptimizerTensorListMetadata")) {
        m.layout = name_len == strlen("TensorListMetadata") ? LISTS_PLAIN : LISTS_FUSED;
        depth = n == 1 ? arg_long(t[0], tl[0]) : -1;
    } else if (arg_is(name, name_len, "TensorListScalarListMetadata") && n == 2) {
        const type_size *scalar = exact_type(t[0], tl[0]);
        m.layout = LISTS_SCALARS;
        m.scalar_bytes = scalar != NULL ? scalar->bytes : 0;
        depth = scalar != NULL ? arg_long(t[1], tl[1]) : -1;
    }
    if (depth < 1 || depth > TW_TENSOR_LISTS_MAX)
        return;
    m.depth = (uint8_t)depth;
    if (parse_functor(a[1], al[1], out, &m))
        out->lists = m;
}

/* The function's own name (before its parameter list, after its return type). */
static bool function_is(const char *text, const char *name)
{
    size_t open = param_list_open(text);
    const char *found = strstr(text, name);
    return found != NULL && (size_t)(found - text) < open && (found == text || !ident_char(found[-1]) ||
                                                              found[-1] == ':');
}

/* Whether a parameter list has a pointer to pointers (T**, T* const*, T* __restrict__*). */
static bool pointer_to_pointer(const char *params)
{
    for (const char *p = strchr(params, '*'); p != NULL; p = strchr(p + 1, '*')) {
        const char *q = p + 1;
        for (;;) {
            while (*q == ' ')
                q++;
            if (strncmp(q, "const", 5) == 0 && !ident_char(q[5]))
                q += 5;
            else if (strncmp(q, "volatile", 8) == 0 && !ident_char(q[8]))
                q += 8;
            else if (strncmp(q, "__restrict__", 12) == 0 && !ident_char(q[12]))
                q += 12;
            else
                break;
        }
        if (*q == '*')
            return true;
    }
    return false;
}

void tw_kernel_shape_init(const char *mangled, tw_kernel_shape *out)
{
    memset(out, 0, sizeof *out);
    char *text = tw_kernel_demangle(mangled);
    if (text == NULL)
        return; /* extern "C" (Triton, cuDNN engines): generic */
    parse_params(text, out);
    size_t open = param_list_open(text);
    uint8_t first_float = TW_DT_UNKNOWN;
    scan_types(text, open, &out->name_elem_bytes, &first_float);
    out->dtype = first_float;
    out->pointer_tables = pointer_to_pointer(text + open);
    if (function_is(text, "device_kernel<") && strstr(text, "FlashAttnFwdSm90<")) {
        out->family = FAM_FA3_FWD;
        parse_fa3_name(text, out);
    } else if (function_is(text, "device_kernel<") && strstr(text, "FlashAttnFwdCombine<")) {
        out->family = FAM_FA3_COMBINE;
    } else if (function_is(text, "flash_fwd_splitkv_combine_kernel<")) {
        out->family = FAM_FA2_COMBINE;
    } else if ((function_is(text, "flash_fwd_kernel<") || function_is(text, "flash_fwd_splitkv_kernel<")) &&
               strstr(text, "Flash_fwd_kernel_traits<")) {
        out->family = FAM_FA2_FWD;
    } else if (function_is(text, "flash_bwd_dq_dk_dv_loop")) {
        out->family = FAM_FA2_BWD;
    } else if (function_is(text, "flash_bwd_dot_do_o_kernel<")) {
        out->family = FAM_FA2_BWD_DOT;
    } else if (function_is(text, "flash_bwd_convert_dq_kernel<") || function_is(text, "flash_bwd_convert_dkv_kernel<")) {
        out->family = FAM_FA2_BWD_CONVERT;
    } else if (strncmp(text, "fmha_cutlassF", 13) == 0) {
        out->family = FAM_MEMEFF_FWD;
        parse_memeff_name(text, out);
    } else if (strncmp(text, "fmha_cutlassB", 13) == 0) {
        out->family = FAM_MEMEFF_BWD;
        parse_memeff_name(text, out);
    } else if (function_is(text, "vectorized_elementwise_kernel<") || function_is(text, "unrolled_elementwise_kernel<") ||
               function_is(text, "elementwise_kernel<")) {
        out->family = FAM_ELEMENTWISE;
        parse_elementwise_name(text, open, out);
    } else if (function_is(text, "reduce_kernel<") && strstr(text, "ReduceOp<")) {
        out->family = FAM_REDUCE;
    } else if (function_is(text, "CatArrayBatchedCopy")) {
        /* CatArrayBatchedCopy*<T, IndexType, Dims, batch_size, stride_size, ...> (Shape.cu);
         * T is OpaqueType<bytes> or a scalar */
        const char *args = strchr(strstr(text, "CatArrayBatchedCopy"), '<');
        const char *starts[4];
        size_t lengths[4];
        if (args != NULL && template_args(args + 1, starts, lengths, 4) == 4) {
            const char *opaque = strstr(starts[0], "OpaqueType<");
            const type_size *t = exact_type(starts[0], lengths[0]);
            long elem = opaque != NULL && opaque < starts[0] + lengths[0] ? arg_long(opaque + 11, strcspn(opaque + 11, "u>"))
                                                                         : (t ? t->bytes : -1);
            const type_size *index = exact_type(starts[1], lengths[1]);
            long batch = arg_long(starts[3], lengths[3]);
            if (elem > 0 && index != NULL && batch > 0 && batch <= 1024) {
                out->family = FAM_CAT;
                out->name_elem_bytes = (uint8_t)elem;
                out->index_bytes = index->bytes;
                out->batch_slots = (uint16_t)batch;
            }
        }
    } else if (function_is(text, "rotary_embedding_kernel<") && strstr(text, "vllm::")) {
        out->family = FAM_ROTARY;
    } else if (function_is(text, "vectorized_gather_kernel<")) {
        out->family = FAM_GATHER;
    } else if (function_is(text, "multi_tensor_apply_kernel<")) {
        /* recognised even when its metadata or functor is not: such launches are rejected,
         * and reported, rather than estimated silently */
        out->family = FAM_MULTI_TENSOR;
        parse_multi_tensor_name(strstr(text, "multi_tensor_apply_kernel<") + strlen("multi_tensor_apply_kernel<"), out);
    } else if (tw_comm_kernel_parse(text, open, out)) {
        out->family = FAM_PEER_ALLREDUCE;
    } else {
        for (uint16_t r = 0; r < sizeof ROW_RULES / sizeof ROW_RULES[0]; r++)
            if (function_is(text, ROW_RULES[r].name)) {
                out->family = FAM_ROWS;
                out->rule = r;
                break;
            }
    }
    free(text);
}

bool tw_kernel_shape_by_content(const tw_kernel_shape *shape)
{
    switch (shape->family) {
    case FAM_FA2_FWD: case FAM_FA2_BWD: case FAM_FA2_COMBINE: case FAM_FA2_BWD_DOT: case FAM_FA2_BWD_CONVERT:
    case FAM_FA3_FWD: case FAM_FA3_COMBINE: case FAM_MEMEFF_FWD: case FAM_MEMEFF_BWD: case FAM_REDUCE:
    case FAM_CAT: case FAM_MULTI_TENSOR: case FAM_PEER_ALLREDUCE:
        return true;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------ attention */

/* Σ_{i=0}^{n-1} clamp(i + c, 0, lk) */
static uint64_t clamped_sum(int64_t c, int64_t n, int64_t lk)
{
    if (n <= 0)
        return 0;
    int64_t lo = c, hi = c + n - 1;
    uint64_t total = 0;
    int64_t a = lo > 0 ? lo : 0, b = hi < lk ? hi : lk; /* x in [a, b]: x itself */
    if (b >= a)
        total += (uint64_t)((a + b) * (b - a + 1) / 2);
    int64_t over = hi - (lk > lo - 1 ? lk : lo - 1); /* x in (lk, hi]: lk each */
    if (over > 0)
        total += (uint64_t)over * (uint64_t)lk;
    return total;
}

#define WINDOW_NONE (-1)

/* Query-key pairs one sequence computes: query i sees keys [i + off - left, i + off + right]
 * within [0, lk), off = lk - lq (masks aligned to the bottom right, as FlashAttention does);
 * a negative window side is unbounded. top_left: causal aligned to the top left instead. */
static uint64_t attention_pairs(int64_t lq, int64_t lk, int64_t left, int64_t right, bool top_left)
{
    if (lq <= 0 || lk <= 0)
        return 0;
    int64_t off = top_left ? 0 : lk - lq;
    int64_t lo = left < 0 ? -(lq + lk) : off - left;
    int64_t hi = right < 0 ? lq + lk : off + right;
    return clamped_sum(hi + 1, lq, lk) - clamped_sum(lo, lq, lk);
}

typedef struct attention {
    uint32_t batch, heads_q, heads_kv, head_dim, head_dim_v;
    int64_t window_left, window_right;   /* WINDOW_NONE: unbounded */
    bool top_left, backward, paged;
    uint8_t dtype, elem;                 /* input type and its bytes */
    uint32_t splits;                     /* split-KV partial outputs written in fp32 */
    /* accumulated over the batch */
    uint64_t pairs, total_q, total_k;
    uint32_t max_q, max_k;
} attention;

static void attention_add(attention *a, int64_t lq, int64_t lk)
{
    if (lq < 0)
        lq = 0;
    if (lk < 0)
        lk = 0;
    a->pairs += attention_pairs(lq, lk, a->window_left, a->window_right, a->top_left);
    a->total_q += (uint64_t)lq;
    a->total_k += (uint64_t)lk;
    if ((uint32_t)lq > a->max_q)
        a->max_q = (uint32_t)lq;
    if ((uint32_t)lk > a->max_k)
        a->max_k = (uint32_t)lk;
}

static void attention_finish(const attention *a, tw_desc *desc)
{
    uint64_t hq = a->heads_q, hk = a->heads_kv, d = a->head_dim, dv = a->head_dim_v ? a->head_dim_v : d;
    uint64_t fwd_flops = 2 * a->pairs * hq * (d + dv);       /* S = QK^T and O = PV */
    uint64_t io = a->elem * (a->total_q * hq * (d + dv) + a->total_k * hk * (d + dv)) + 4 * a->total_q * hq;
    desc->kind = TW_OP_ATTENTION;
    desc->dtype_a = desc->dtype_b = desc->dtype_out = a->dtype;
    desc->dtype_compute = TW_DT_F32;
    desc->flags = (desc->flags & TW_FLAG_COOPERATIVE) | (a->backward ? TW_FLAG_BACKWARD : 0) |
                  (a->paged ? TW_FLAG_PAGED_KV : 0) |
                  (a->window_right == 0 || a->top_left ? TW_FLAG_CAUSAL : 0);
    memset(desc->dims, 0, sizeof desc->dims);
    desc->dims[0] = a->batch;
    desc->dims[1] = (int64_t)hq;
    desc->dims[2] = (int64_t)hk;
    desc->dims[3] = a->max_q;
    desc->dims[4] = a->max_k;
    desc->dims[5] = (int64_t)d;
    desc->dims[6] = (int64_t)a->total_q;
    desc->dims[7] = (int64_t)a->total_k;
    if (a->backward) {
        /* recompute S, then dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q: 2.5x the forward;
         * reads q, k, v, o, dO, writes dq (fp32 accumulator), dk, dv */
        desc->flops = fwd_flops * 5 / 2;
        desc->bytes = 2 * io + 4 * a->total_q * hq * d;
    } else {
        desc->flops = fwd_flops;
        desc->bytes = io + (a->splits > 1 ? (uint64_t)a->splits * a->total_q * hq * (dv + 1) * 4 : 0);
    }
}

static bool plausible_heads(int64_t hq, int64_t hk, int64_t d)
{
    return hq >= 1 && hq <= 4096 && hk >= 1 && hk <= hq && hq % hk == 0 && d >= 8 && d <= 1024;
}

/* Per-sequence lengths: from cumulative offsets, plain lengths, or one fixed length. */
typedef struct lengths {
    const int32_t *cumulative;   /* b + 1 entries, or NULL */
    const int32_t *plain;        /* b entries, or NULL */
    int64_t fixed;
} lengths;

static int64_t length_at(const lengths *l, uint32_t i)
{
    if (l->plain != NULL)
        return l->plain[i];
    if (l->cumulative != NULL)
        return l->cumulative[i + 1] - l->cumulative[i];
    return l->fixed;
}

/* Reads b+1 cumulative offsets (0, nondecreasing, at most `total` when total > 0). */
static bool read_cumulative(uint64_t p, uint32_t b, int64_t total, int32_t *out)
{
    if (!read_device_i32(p, b + 1, out) || out[0] != 0)
        return false;
    for (uint32_t i = 0; i < b; i++)
        if (out[i + 1] < out[i] || out[i + 1] > (int32_t)MAX_TOKENS)
            return false;
    return total <= 0 || (out[b] > 0 && out[b] <= total);
}

static bool read_plain(uint64_t p, uint32_t b, int32_t *out)
{
    if (!read_device_i32(p, b, out))
        return false;
    for (uint32_t i = 0; i < b; i++)
        if (out[i] < 0 || out[i] > (int32_t)MAX_TOKENS)
            return false;
    return true;
}

/* Where one side's per-sequence lengths come from, read into buf (b + 1 entries). */
static bool side_lengths(lengths *out, int32_t *buf, uint32_t b, uint64_t cumulative, uint64_t plain,
                         int64_t total, bool cumulative_is_plain)
{
    if (cumulative != 0 && cumulative_is_plain) {
        plain = cumulative;
        cumulative = 0;
    }
    if (plain != 0) {
        out->plain = buf;
        return read_plain(plain, b, buf);
    }
    if (cumulative != 0 && read_cumulative(cumulative, b, total, buf)) {
        out->cumulative = buf;
        return true;
    }
    if (cumulative != 0 && total == (int64_t)b) {
        out->fixed = 1; /* offsets a kernel computed (never run here): one token per sequence */
        return true;
    }
    return cumulative == 0;
}

#define STACK_BATCH 1024

/* Sums the batch into a: queries from cumulative offsets cu_q, else lengths used_q, else
 * fixed_q each; keys from lengths used_k, else offsets (or lengths) cu_k, else fixed_k each.
 * Fails on unreadable or inconsistent buffers, and on a batch with queries but no work (its
 * lengths were never written: a kernel that did not run computed them). */
static bool attention_batch(attention *a, uint64_t cu_q, uint64_t used_q, int64_t fixed_q, int64_t total_q,
                            uint64_t cu_k, bool k_cumulative, uint64_t used_k, int64_t fixed_k)
{
    uint32_t b = a->batch;
    if (b == 0 || b > MAX_BATCH)
        return false;
    int32_t stack[2 * (STACK_BATCH + 1)];
    int32_t *buffer = b <= STACK_BATCH ? stack : malloc(((size_t)b + 1) * 4 * 2);
    if (buffer == NULL)
        return false;
    lengths q = {NULL, NULL, fixed_q}, k = {NULL, NULL, fixed_k};
    bool ok = side_lengths(&q, buffer, b, cu_q, cu_q != 0 ? 0 : used_q, total_q, false) &&
              side_lengths(&k, buffer + b + 1, b, used_k != 0 ? 0 : cu_k, used_k, 0, !k_cumulative);
    if (ok)
        for (uint32_t i = 0; i < b; i++)
            attention_add(a, length_at(&q, i), length_at(&k, i));
    if (buffer != stack)
        free(buffer);
    return ok && !(a->pairs == 0 && a->total_q > 0);
}

/* FlashAttention 2, Flash_fwd_params (csrc/flash_attn/src/flash.h in Dao-AILab/flash-attention
 * and vllm-project/flash-attention; torch's copy in aten/src/ATen/native/transformers/cuda/
 * flash_attn/flash.h): Qkv_params {q,k,v ptrs; 9 int64 strides; int h @96, h_k @100, ...},
 * then o_ptr @112 .. b @176, seqlen_q @180, seqlen_k @184, d @192, total_q @212,
 * cu_seqlens_q @224, cu_seqlens_k @232, leftpad_k @240, seqused_k @248, block_table @352,
 * window_size_left @388, window_size_right @392, is_bf16 @440, is_causal @441,
 * is_seqlens_k_cumulative @442, num_splits @444. Flash_bwd_params extends it (same prefix). */
static bool describe_fa2(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc,
                         bool backward)
{
    bool ok = l->count == 1 && l->size[0] >= 448;
    int64_t h = arg_i32(l, args, 0, 96, &ok), hk = arg_i32(l, args, 0, 100, &ok);
    int64_t b = arg_i32(l, args, 0, 176, &ok), sq = arg_i32(l, args, 0, 180, &ok);
    int64_t sk = arg_i32(l, args, 0, 184, &ok), d = arg_i32(l, args, 0, 192, &ok);
    int64_t total_q = arg_i32(l, args, 0, 212, &ok);
    int64_t wl = arg_i32(l, args, 0, 388, &ok), wr = arg_i32(l, args, 0, 392, &ok);
    uint8_t flags[4] = {0};
    ok = ok && arg_bytes(l, args, 0, 440, 4, flags);
    int64_t splits = arg_i32(l, args, 0, 444, &ok);
    if (!ok || !plausible_heads(h, hk, d) || b < 1 || sq < 1 || sk < 0 || flags[0] > 1 || flags[1] > 1)
        return false;
    attention a = {.batch = (uint32_t)b, .heads_q = (uint32_t)h, .heads_kv = (uint32_t)hk,
                   .head_dim = (uint32_t)d, .head_dim_v = (uint32_t)d, .backward = backward,
                   .window_left = wl < 0 ? WINDOW_NONE : wl, .window_right = flags[1] ? 0 : (wr < 0 ? WINDOW_NONE : wr),
                   .dtype = flags[0] ? TW_DT_BF16 : TW_DT_F16, /* FlashAttention 2: fp16 or bf16 */
                   .elem = 2, .splits = splits > 1 && splits <= 256 ? (uint32_t)splits : 1,
                   .paged = arg_u64(l, args, 0, 352) != 0};
    if (flags[1] && a.window_left == WINDOW_NONE)
        a.window_right = 0;
    if (!attention_batch(&a, arg_u64(l, args, 0, 224), 0, sq, total_q > 0 ? total_q : 0, arg_u64(l, args, 0, 232),
                         flags[2] != 0, arg_u64(l, args, 0, 248), sk))
        return false;
    attention_finish(&a, desc);
    return true;
}

/* The split-KV combine and the backward helpers: element-wise passes over the outputs. */
static bool describe_fa2_aux(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    /* flash_bwd_convert_dq_kernel(params, int nsplits): the dQ accumulators it adds up */
    bool split_dq = shape->family == FAM_FA2_BWD_CONVERT && l->count == 2 && l->size[1] == 4;
    bool ok = (l->count == 1 || split_dq) && l->size[0] >= 448;
    int64_t dq_splits = split_dq ? arg_i32(l, args, 1, 0, &ok) : 1;
    int64_t h = arg_i32(l, args, 0, 96, &ok), b = arg_i32(l, args, 0, 176, &ok);
    int64_t sq = arg_i32(l, args, 0, 180, &ok), d = arg_i32(l, args, 0, 192, &ok);
    int64_t total_q = arg_i32(l, args, 0, 212, &ok), splits = arg_i32(l, args, 0, 444, &ok);
    if (!ok || h < 1 || h > 4096 || b < 1 || sq < 1 || d < 8 || d > 1024 || dq_splits < 1 || dq_splits > 1024)
        return false;
    uint64_t rows = (uint64_t)h * (uint64_t)(arg_u64(l, args, 0, 224) != 0 && total_q > 0 ? total_q : b * sq);
    uint64_t elem = 2;
    switch (shape->family) {
    case FAM_FA2_COMBINE: /* reads every split's fp32 partial output and LSE, writes o */
        desc->bytes = rows * ((uint64_t)(splits > 1 ? splits : 1) * ((uint64_t)d + 1) * 4 + (uint64_t)d * elem);
        break;
    case FAM_FA2_BWD_DOT: /* reads dO and O, writes the fp32 row sums */
        desc->bytes = rows * ((uint64_t)d * 2 * elem + 4);
        break;
    default: /* reads the fp32 dQ accumulators, writes dQ */
        desc->bytes = rows * (uint64_t)d * (4 * (uint64_t)dq_splits + elem);
        break;
    }
    desc->flops = 0;
    return true;
}

/* FlashAttention 3 forward, FlashAttnFwdSm90::Params = {MainloopParams, EpilogueParams, ...}
 * (hopper/flash_fwd_kernel_sm90.h). MainloopParams (hopper/mainloop_fwd_sm90_tma_gmma_ws.hpp)
 * opens with ptr_Q @0 and shape_Q = (seqlen_q or total_q, d, h, b) @8, then strides and the
 * packed-GQA shape, then ptr_K and shape_K = (seqlen_k or page size, d, h_k, b_k or pages) at
 * P = 96..112 (the packed shape's size varies), ... shape_K_new = (.., d, h_k, b) ending at
 * P + 112, the page table at P + 304; after the TMA descriptors, window_size_left/right and
 * num_splits, then the pointers kv_batch_idx, cu_seqlens_q (X), cu_seqlens_k (X+8),
 * cu_seqlens_k_new, seqused_q (X+24), seqused_k (X+32), leftpad_k, seqlens_rotary, ptr_S_aux,
 * then int cp_world_size (X+64), cp_rank (X+68). X = 1904 in vLLM 0.32's build; a layout
 * where that does not validate is searched for the same pattern. */
#define FA3_POINTERS_AT 1904

static bool fa3_pointer_block(const tw_param_layout *l, void **args, uint32_t x)
{
    bool ok = true;
    int64_t world = arg_i32(l, args, 0, x + 64, &ok), rank = arg_i32(l, args, 0, x + 68, &ok);
    int64_t splits = arg_i32(l, args, 0, x - 12, &ok);
    uint64_t cu_q = arg_u64(l, args, 0, x);
    tw_alloc a;
    return ok && world >= 1 && world <= 1024 && rank >= 0 && rank < world && splits >= 0 && splits <= 1024 &&
           (cu_q == 0 || device_pointer(cu_q, &a));
}

static bool describe_fa3(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    bool ok = l->count == 1 && l->size[0] >= 1024;
    int64_t sq = arg_i32(l, args, 0, 8, &ok), d = arg_i32(l, args, 0, 12, &ok);
    int64_t hq = arg_i32(l, args, 0, 16, &ok), bq = arg_i32(l, args, 0, 20, &ok);
    if (!ok || sq < 0 || bq < 1 || hq < 1 || d != shape->head_dim)
        return false;
    uint32_t p = 0;
    tw_alloc a;
    for (uint32_t at = 88; at <= 120 && p == 0; at += 8) {
        bool k_ok = true;
        int64_t dk = arg_i32(l, args, 0, at + 12, &k_ok), hk = arg_i32(l, args, 0, at + 16, &k_ok);
        if (k_ok && dk == d && plausible_heads(hq, hk, d) && device_pointer(arg_u64(l, args, 0, at), &a))
            p = at;
    }
    if (p == 0)
        return false;
    int64_t sk = arg_i32(l, args, 0, p + 8, &ok), hk = arg_i32(l, args, 0, p + 16, &ok);
    int64_t b = arg_i32(l, args, 0, p + 108, &ok);
    uint32_t x = FA3_POINTERS_AT;
    if (!fa3_pointer_block(l, args, x))
        for (x = 1024; x + 72 <= l->size[0] && !fa3_pointer_block(l, args, x); x += 8)
            ;
    if (!ok || x + 72 > l->size[0] || b < 1)
        return false;
    int64_t wl = arg_i32(l, args, 0, x - 20, &ok), wr = arg_i32(l, args, 0, x - 16, &ok);
    int64_t splits = arg_i32(l, args, 0, x - 12, &ok);
    uint64_t cu_q = arg_u64(l, args, 0, x), cu_k = arg_u64(l, args, 0, x + 8);
    uint64_t used_q = arg_u64(l, args, 0, x + 24), used_k = arg_u64(l, args, 0, x + 32);
    bool paged = arg_u64(l, args, 0, p + 304) != 0 && device_pointer(arg_u64(l, args, 0, p + 304), &a);
    if (paged && used_k == 0 && cu_k == 0)
        return false; /* a page pool's size says nothing about the sequences */
    attention at = {.batch = (uint32_t)b, .heads_q = (uint32_t)hq, .heads_kv = (uint32_t)hk,
                    .head_dim = (uint32_t)d, .head_dim_v = shape->head_dim_v ? shape->head_dim_v : (uint32_t)d,
                    .window_left = shape->local && wl >= 0 ? wl : WINDOW_NONE,
                    .window_right = shape->causal ? 0 : (shape->local && wr >= 0 ? wr : WINDOW_NONE),
                    .dtype = shape->dtype, .elem = shape->dtype == TW_DT_F8E4M3 || shape->dtype == TW_DT_F8E5M2 ? 1 : 2,
                    .splits = ok && splits > 1 && splits <= 1024 ? (uint32_t)splits : 1, .paged = paged};
    if (cu_q == 0 && used_q == 0 && b != bq)
        return false;
    if (!attention_batch(&at, cu_q, used_q, sq, cu_q != 0 ? sq : 0, cu_k, true, used_k, sk))
        return false;
    attention_finish(&at, desc);
    return true;
}

/* FlashAttnFwdCombine::Params (hopper/flash_fwd_combine_kernel.h): ptr_O_partial @8,
 * shape_O_partial = (seqlen, d, num_splits, h, b) @16. */
static bool describe_fa3_combine(const tw_param_layout *l, void **args, tw_desc *desc)
{
    bool ok = l->count == 1 && l->size[0] >= 40;
    int64_t seqlen = arg_i32(l, args, 0, 16, &ok), d = arg_i32(l, args, 0, 20, &ok);
    int64_t splits = arg_i32(l, args, 0, 24, &ok), h = arg_i32(l, args, 0, 28, &ok);
    int64_t b = arg_i32(l, args, 0, 32, &ok);
    tw_alloc a;
    if (!ok || seqlen < 1 || d < 8 || d > 1024 || splits < 1 || splits > 1024 || h < 1 || h > 4096 || b < 1 ||
        !device_pointer(arg_u64(l, args, 0, 8), &a))
        return false;
    uint64_t rows = (uint64_t)seqlen * (uint64_t)h * (uint64_t)b;
    desc->bytes = rows * ((uint64_t)splits * ((uint64_t)d + 1) * 4 + (uint64_t)d * 2);
    desc->flops = 0;
    return true;
}

/* torch's memory-efficient attention (aten/src/ATen/native/transformers/cuda/mem_eff_attention/
 * kernel_forward.h, AttentionKernel::Params; kernel_backward.h, AttentionBackwardKernel::Params).
 * Forward, as laid out in torch 2.13: q,k,v,bias @0..24, seqstart_q @32, seqstart_k @40,
 * head_dim @96, head_dim_value @100, num_queries @104, num_keys @108, custom_mask_type @116,
 * num_batches @192, num_heads @196; grid = (ceil(num_queries / block_m), heads, batches).
 * Backward: q, k, v, bias, logsumexp, output, grad_output, delta @0..56, cu_seqlens_q @64,
 * cu_seqlens_k @72, ..., head_dim @144, head_dim_value @148, num_queries @152, num_keys @156,
 * num_heads @160, custom_mask_type @164, num_batches @376; grid = (key blocks, heads, batches). */
static bool describe_memeff(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc,
                            bool backward)
{
    bool ok = l->count == 1;
    uint32_t base = backward ? 144 : 96;
    int64_t d = arg_i32(l, args, 0, base, &ok), dv = arg_i32(l, args, 0, base + 4, &ok);
    int64_t nq = arg_i32(l, args, 0, base + 8, &ok), nk = arg_i32(l, args, 0, base + 12, &ok);
    uint8_t mask = 0;
    ok = ok && arg_bytes(l, args, 0, backward ? 164 : 116, 1, &mask);
    int64_t batches = arg_i32(l, args, 0, backward ? 376 : 192, &ok);
    int64_t heads = arg_i32(l, args, 0, backward ? 160 : 196, &ok);
    if (!ok || d < 8 || d > 1024 || dv < 8 || dv > 1024 || nq < 1 || nk < 1 || heads < 1 || batches < 1 || mask > 2)
        return false;
    if (desc->grid[1] != heads || desc->grid[2] != batches ||
        (!backward && (shape->block_m == 0 || desc->grid[0] != (nq + shape->block_m - 1) / shape->block_m)))
        return false;
    attention a = {.batch = (uint32_t)batches, .heads_q = (uint32_t)heads, .heads_kv = (uint32_t)heads,
                   .head_dim = (uint32_t)d, .head_dim_v = (uint32_t)dv, .backward = backward,
                   .window_left = WINDOW_NONE, .window_right = mask ? 0 : WINDOW_NONE, .top_left = mask == 1,
                   .dtype = shape->dtype, .elem = shape->dtype == TW_DT_F32 ? 4 : 2, .splits = 1};
    uint64_t seq_q = arg_u64(l, args, 0, backward ? 64 : 32), seq_k = arg_u64(l, args, 0, backward ? 72 : 40);
    if (!attention_batch(&a, seq_q, 0, nq, 0, seq_k, true, 0, nk))
        return false;
    attention_finish(&a, desc);
    return true;
}

/* ------------------------------------------------------------------ memory-bound families */

/* Bytes of a floating data type (the kernel's own, from its name); 0 when not known. */
static uint64_t dtype_bytes(uint8_t dtype)
{
    switch (dtype) {
    case TW_DT_F64: return 8;
    case TW_DT_F32: return 4;
    case TW_DT_F16: case TW_DT_BF16: return 2;
    case TW_DT_F8E4M3: case TW_DT_F8E5M2: return 1;
    default: return 0;
    }
}

/* Bytes pointer parameter i touches: `elements` of its type, never past its allocation. */
static uint64_t touched(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, uint32_t i,
                        uint64_t elements)
{
    uint64_t p = 0;
    if (i >= l->count || l->size[i] != 8 || !arg_bytes(l, args, i, 0, 8, &p) || p == 0)
        return 0;
    uint64_t elem = shape->elem_bytes[i] ? shape->elem_bytes[i] : (shape->name_elem_bytes ? shape->name_elem_bytes : 4);
    uint64_t limit = reach(p);
    uint64_t bytes = elements * elem;
    return limit != 0 && bytes > limit ? limit : bytes;
}

static bool describe_rows(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    const row_rule *rule = &ROW_RULES[shape->rule];
    if (l->count != rule->params)
        return false;
    bool ok = true;
    int64_t rows = rule->rows == ROWS_FROM_GRID ? (int64_t)desc->grid[0] : param_int(l, args, rule->rows, &ok);
    int64_t cols = param_int(l, args, rule->cols, &ok);
    if (rule->cols2 != NO_PARAM)
        cols *= param_int(l, args, rule->cols2, &ok);
    if (!ok || rows < 1 || cols < 1 || rows > (1ll << 40) || cols > (1ll << 40))
        return false;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < rule->params && rule->touch[i] != '\0'; i++) {
        char t = rule->touch[i];
        uint64_t full = (uint64_t)rows * (uint64_t)cols;
        uint64_t n = t == 'F' ? full : t == 'W' ? 2 * full : t == 'R' ? (uint64_t)rows : t == 'C' ? (uint64_t)cols : 0;
        if (n > 0)
            bytes += touched(shape, l, args, i, n);
    }
    desc->bytes = bytes;
    return bytes > 0;
}

/* (int N, functor, data...) (aten/src/ATen/native/cuda/CUDALoops.cuh, Loops.cuh): N elements
 * through every operand. The vectorized and unrolled kernels take their operands as one
 * std::array<char*, K> parameter: each of the K counts (an in-place operand twice: read and
 * written). The strided kernel captures them in a closure among offset calculators whose
 * unused slots hold stale stack words: there the distinct device pointers count, at most
 * arity + 1 of them. Each operand is charged N elements of the kernel's data type, never
 * past its allocation (a broadcast operand is smaller). */
static bool describe_elementwise(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    bool ok = l->count >= 2 && l->size[0] == 4;
    int64_t n = arg_i32(l, args, 0, 0, &ok);
    if (!ok || n < 0)
        return false;
    uint64_t elem = dtype_bytes(shape->dtype), bytes = 0;
    if (elem == 0)
        elem = shape->name_elem_bytes ? shape->name_elem_bytes : 8;
    uint32_t operands = shape->operands;
    tw_alloc a;
    if (shape->operand_array) { /* the std::array<char*, K> parameter */
        uint64_t sizes[2] = {shape->array_elem_bytes[0], shape->array_elem_bytes[1]};
        if (shape->cast_params && l->count == 7 && l->size[5] == 8 && l->size[6] == 8) {
            /* (N, f, data, in calc, out calc, LoadWithCast {dtype, element size}, StoreWithCast) */
            sizes[0] = arg_u64(l, args, 6, 0) >> 32;
            sizes[1] = arg_u64(l, args, 5, 0) >> 32;
        }
        for (uint32_t i = 1; i < l->count; i++) {
            if (l->size[i] != 8 * operands)
                continue;
            for (uint32_t k = 0; k < operands; k++) {
                uint64_t size = k < 2 && sizes[k] >= 1 && sizes[k] <= 16 ? sizes[k] : elem;
                uint64_t p = arg_u64(l, args, i, 8 * k), want = (uint64_t)n * size;
                if (device_pointer(p, &a))
                    bytes += want < a.base + a.size - p ? want : a.base + a.size - p;
            }
            desc->bytes = bytes;
            return true;
        }
        return false;
    }
    uint64_t seen[8];
    uint32_t seen_count = 0, limit = operands ? operands : 3;
    for (uint32_t i = 1; i < l->count; i++)
        for (uint32_t at = 0; at + 8 <= l->size[i] && at < 2048 && seen_count < limit; at += 8) {
            uint64_t p = arg_u64(l, args, i, at);
            if (!device_pointer(p, &a))
                continue;
            bool dup = false;
            for (uint32_t s = 0; s < seen_count; s++)
                dup |= seen[s] == p;
            if (dup)
                continue;
            seen[seen_count++] = p;
            uint64_t want = (uint64_t)n * elem, room = a.base + a.size - p;
            bytes += want < room ? want : room;
        }
    desc->bytes = bytes;
    return seen_count > 0;
}

/* ReduceOp<scalar_t, ops_t, index_t, out_scalar_t, ...> {ops_t ops; arg_t ident; ReduceConfig
 * config; ...; const void* src; ...} (aten/src/ATen/native/cuda/Reduce.cuh). ReduceConfig:
 * element_size_bytes, num_inputs (per output), num_outputs, step_input, step_output,
 * ctas_per_output, input_mult[3], output_mult[2], block_width, block_height, num_threads:
 * found as that pattern (its offset depends on ops_t and arg_t), with block_width x
 * block_height = num_threads = the launch's block. */
static bool describe_reduce(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    if (l->count != 1)
        return false;
    uint64_t threads = (uint64_t)desc->block[0] * desc->block[1] * desc->block[2];
    for (uint32_t at = 0; at + 56 <= l->size[0] && at <= 128; at += 4) {
        bool ok = true;
        int64_t elem = arg_i32(l, args, 0, at, &ok), inputs = arg_i32(l, args, 0, at + 4, &ok);
        int64_t outputs = arg_i32(l, args, 0, at + 8, &ok), ctas = arg_i32(l, args, 0, at + 20, &ok);
        int64_t bw = arg_i32(l, args, 0, at + 44, &ok), bh = arg_i32(l, args, 0, at + 48, &ok);
        int64_t nt = arg_i32(l, args, 0, at + 52, &ok);
        if (!ok || (elem != 1 && elem != 2 && elem != 4 && elem != 8 && elem != 16) || inputs < 1 || outputs < 1 ||
            ctas < 1 || bw < 1 || bh < 1 || bw * bh != nt || (uint64_t)nt != threads)
            continue;
        /* the input's own type is the ReduceOp's first template argument (the name's first
         * floating type); element_size_bytes may be the accumulator's */
        uint64_t in = dtype_bytes(shape->dtype) ? dtype_bytes(shape->dtype) : (uint64_t)elem;
        desc->bytes = (uint64_t)inputs * (uint64_t)outputs * in + (uint64_t)outputs * in;
        return true;
    }
    return false;
}

/* CatArrInputTensorMetadata<T, IndexType, batch_size, stride_size> (Shape.cu): T* input[B];
 * IndexType offset[B], dimSize[B], nElements[B]; ... grid.y = inputs in this launch. */
static bool describe_cat(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    uint32_t b = shape->batch_slots, s = shape->index_bytes;
    if (l->count < 2 || desc->grid[1] < 1 || desc->grid[1] > b || l->size[1] < (8 + 3 * s) * b)
        return false;
    uint64_t elements = 0;
    for (uint32_t i = 0; i < desc->grid[1]; i++) {
        uint64_t n = 0;
        if (!arg_bytes(l, args, 1, (8 + 2 * s) * b + i * s, s, &n))
            return false;
        elements += n;
    }
    desc->bytes = 2 * elements * shape->name_elem_bytes; /* read each input, write the output */
    return desc->bytes > 0;
}

/* vectorized_gather_kernel<Alignment, index_t>(char* out, char* inp, index_t* idx, int num_ind,
 * int64 slice_size (bytes), ind_dim_size, inp_stride, out_stride, bool allow_neg) (IndexKernel.cu) */
static bool describe_gather(const tw_param_layout *l, void **args, tw_desc *desc)
{
    bool ok = l->count == 9;
    int64_t num = param_int(l, args, 3, &ok), slice = param_int(l, args, 4, &ok);
    if (!ok || num < 0 || slice < 0)
        return false;
    desc->bytes = (uint64_t)num * ((uint64_t)slice * 2 + 8);
    return true;
}

/* The metadata structs (MultiTensorApply.cuh), by value in parameter 0:
 *   TensorListMetadata<n>:  const void* addresses[n][T]; int64 numel_for_tensor[T];
 *                           index_t block_to_tensor[B]; int block_to_chunk[B]; int start_tensor_this_launch
 *   TensorListScalarListMetadata<scalar_t, n>: the same with scalar_t scalar_vals[T] after the
 *                           element counts, and no start_tensor_this_launch
 *   FusedOptimizerTensorListMetadata<n>: the same as the first with const void*
 *                           state_steps_addresses[T] after the element counts
 * in two configurations: torch built for CUDA 13 (as its cu13 wheels are) passes them in the
 * 32 KB kernel-argument space, older builds in 4 KB; the parameter's size says which. T by
 * depth 1..5: 4 KB {110, 64, 48, 36, 30}, scalar lists {96, 64, 48, 36, 30}, complex<double>
 * scalar lists of depth 1 and 2 {72, 60}; 32 KB {770, 448, 336, 252, 210}, scalar lists
 * {672, 448, 336, 252, 210}, complex<double> {504, 420}. B = 320 (index_t unsigned char) or
 * 2240 (index_t uint16_t). */
typedef struct tensor_list_layout {
    uint32_t numel_at, tensor_at, chunk_at, tensors, blocks, index_bytes, bytes;
} tensor_list_layout;

static uint32_t round_up(uint32_t v, uint32_t to)
{
    return (v + to - 1) / to * to;
}

static tensor_list_layout tensor_list(const tw_tensor_lists *m, bool large)
{
    static const uint16_t plain_t[2][5] = {{110, 64, 48, 36, 30}, {770, 448, 336, 252, 210}};
    static const uint16_t scalar_t[2][5] = {{96, 64, 48, 36, 30}, {672, 448, 336, 252, 210}};
    static const uint16_t complex_double_t[2][2] = {{72, 60}, {504, 420}};
    uint32_t d = m->depth - 1u, s = m->scalar_bytes, align = s == 16 ? 16 : 8;
    tensor_list_layout t;
    t.tensors = m->layout != LISTS_SCALARS ? plain_t[large][d] : s == 16 && d < 2 ? complex_double_t[large][d]
                                                                                   : scalar_t[large][d];
    t.blocks = large ? 2240 : 320;
    t.index_bytes = large ? 2 : 1;
    t.numel_at = m->depth * t.tensors * 8;
    uint32_t after = t.numel_at + t.tensors * 8;
    if (m->layout == LISTS_SCALARS)
        after = round_up(after, s < align ? (s ? s : 1) : align) + t.tensors * s;
    if (m->layout == LISTS_FUSED)
        after += t.tensors * 8;
    t.tensor_at = round_up(after, t.index_bytes);
    t.chunk_at = round_up(t.tensor_at + t.blocks * t.index_bytes, 4);
    t.bytes = round_up(t.chunk_at + t.blocks * 4 + (m->layout == LISTS_SCALARS ? 0 : 4), align);
    return t;
}

/* Elements of the chunk (65536 elements, kChunkSize) each block works on. */
static bool chunk_elements(const tensor_list_layout *t, const tw_param_layout *l, void **args, uint32_t blocks,
                           uint64_t *elements)
{
    const int64_t chunk = 65536;
    *elements = 0;
    for (uint32_t blk = 0; blk < blocks; blk++) {
        uint16_t tensor = 0;
        int32_t which = 0;
        int64_t numel = 0;
        if (!arg_bytes(l, args, 0, t->tensor_at + blk * t->index_bytes, t->index_bytes, &tensor) ||
            tensor >= t->tensors || !arg_bytes(l, args, 0, t->chunk_at + blk * 4, 4, &which) ||
            !arg_bytes(l, args, 0, t->numel_at + tensor * 8u, 8, &numel) || which < 0)
            return false;
        int64_t left = numel - (int64_t)which * chunk;
        if (left <= 0) /* multi_tensor_apply never launches a block past its tensor's end */
            return false;
        *elements += (uint64_t)(left < chunk ? left : chunk);
    }
    return true;
}

/* Every element of the launch's chunks, through each list the functor reads and each it
 * writes (at the list's element size), and the partials a reduction writes, one per block. */
static bool describe_multi_tensor(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    const tw_tensor_lists *m = &shape->lists;
    if (m->layout == LISTS_UNKNOWN || l->count < 2)
        return false;
    tensor_list_layout t = tensor_list(m, false);
    if (l->size[0] != t.bytes)
        t = tensor_list(m, true);
    uint64_t elements = 0;
    if (l->size[0] != t.bytes || desc->grid[0] < 1 || desc->grid[0] > t.blocks || desc->grid[1] != 1 ||
        desc->grid[2] != 1 || !chunk_elements(&t, l, args, desc->grid[0], &elements))
        return false;
    uint8_t written = m->write_mask;
    if (m->scaled_write_mask != 0) { /* the grad-scale pointer: the second-to-last parameter */
        if (l->size[l->count - 2] != 8)
            return false;
        written |= arg_u64(l, args, l->count - 2, 0) != 0 ? m->scaled_write_mask : 0;
    }
    uint64_t per_element = 0;
    for (uint32_t i = 0; i < m->depth; i++)
        per_element += (uint64_t)m->elem_bytes[i] * ((m->read_mask >> i & 1u) + (written >> i & 1u));
    desc->bytes = elements * per_element + (uint64_t)desc->grid[0] * m->block_out_bytes;
    return true;
}

/* vLLM's rotary_embedding_kernel(positions, query, key, cos_sin_cache, rot_dim, query_stride,
 * key_stride, head_stride, num_heads, num_kv_heads, head_size, ...) (csrc/pos_encoding_kernels.cu),
 * one block per token: each query and key head read and written, the cache's row read. */
static bool describe_rotary(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    bool ok = l->count == 13;
    int64_t rot = param_int(l, args, 4, &ok), heads = param_int(l, args, 8, &ok);
    int64_t kv_heads = param_int(l, args, 9, &ok), head_size = param_int(l, args, 10, &ok);
    uint64_t tokens = desc->grid[0];
    if (!ok || rot < 1 || heads < 1 || kv_heads < 0 || head_size < rot || head_size > 1024)
        return false;
    uint64_t elem = shape->elem_bytes[1] ? shape->elem_bytes[1] : 2;
    desc->bytes = tokens * (2 * elem * (uint64_t)(heads + kv_heads) * (uint64_t)head_size + (uint64_t)rot * elem + 8);
    return true;
}

bool tw_kernel_shape_describe(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc)
{
    if (shape->family == FAM_GENERIC || l == NULL || args == NULL)
        return false;
    tw_desc out = *desc;
    bool ok = false;
    switch (shape->family) {
    case FAM_FA2_FWD: ok = describe_fa2(shape, l, args, &out, false); break;
    case FAM_FA2_BWD: ok = describe_fa2(shape, l, args, &out, true); break;
    case FAM_FA2_COMBINE: case FAM_FA2_BWD_DOT: case FAM_FA2_BWD_CONVERT:
        ok = describe_fa2_aux(shape, l, args, &out);
        break;
    case FAM_FA3_FWD: ok = describe_fa3(shape, l, args, &out); break;
    case FAM_FA3_COMBINE: ok = describe_fa3_combine(l, args, &out); break;
    case FAM_MEMEFF_FWD: ok = describe_memeff(shape, l, args, &out, false); break;
    case FAM_MEMEFF_BWD: ok = describe_memeff(shape, l, args, &out, true); break;
    case FAM_ROWS: ok = describe_rows(shape, l, args, &out); break;
    case FAM_ELEMENTWISE: ok = describe_elementwise(shape, l, args, &out); break;
    case FAM_REDUCE: ok = describe_reduce(shape, l, args, &out); break;
    case FAM_CAT: ok = describe_cat(shape, l, args, &out); break;
    case FAM_GATHER: ok = describe_gather(l, args, &out); break;
    case FAM_MULTI_TENSOR: ok = describe_multi_tensor(shape, l, args, &out); break;
    case FAM_ROTARY: ok = describe_rotary(shape, l, args, &out); break;
    case FAM_PEER_ALLREDUCE: ok = tw_comm_kernel_describe(shape, l, args, &out); break;
    default: break;
    }
    if (!ok)
        return false;
    if (out.kind == TW_OP_KERNEL)
        out.dims[1] = TW_DESCRIBED_FAMILY;
    *desc = out;
    return true;
}
