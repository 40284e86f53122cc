/* Host evaluation of simple torch kernels whose buffers are all host-backed.
 *
 * Kernels never run, so a kernel's outputs hold whatever the buffer held. Where a program's
 * control flow reads values computed on the GPU from small tensors — torch.distributed's object
 * collectives size their buffers with torch.cat, torch.zeros, torch.sum(...).item(), `>` and
 * `+=` on size tensors — those values must be right. This file recognises, once per kernel
 * from its demangled name, a fixed set of torch 2.x kernels and computes their outputs on the
 * host at issue, in issue order with the copies and collectives around them (memory.c writes
 * copies at issue too; a collective's pending result a kernel reads or overwrites is written
 * first, collective_data.c):
 *
 *   element-wise, contiguous (vectorized_elementwise_kernel, or unrolled_elementwise_kernel with
 *   trivial offsets and no casts; CUDALoops.cuh): (int N, functor, std::array<char*, K>) with
 *     FillFunctor<T>{T value}                          fill, zero_, zeros, ones, full
 *     CUDAFunctorOnSelf_add<T>{M other, M alpha}       tensor + scalar (sub: alpha negated)
 *     CUDAFunctorOnOther_add<T>{M self, M alpha}       scalar + tensor
 *     CUDAFunctor_add<T>{M alpha}                      tensor + tensor
 *     A/BUnaryFunctor<T, T, R, F>{F f; M scalar}, BinaryFunctor<T, T, R, F>{F f} (Loops.cuh)
 *       with F = MulFunctor<M>, DivFunctor<M> (floating), CompareEqFunctor<M>{EqOpType op}
 *     CompareFunctor<T>{OpType op} and compare_scalar_kernel<T>'s closure {CompareFunctor; T rhs}
 *     direct_copy_kernel_cuda's lambda(T)              same-type copies
 *     float16_copy_kernel_cuda's, bfloat16_copy_kernel_cuda's lambda(float)   float to half, bfloat16
 *   unrolled_elementwise_kernel<direct_copy lambda(T), .., LoadWithCast<1>, StoreWithCast<1>>:
 *     a casting copy (`.to(dtype)`), the input's and output's types read from the loader's and
 *     storer's dtype fields, each value cast to T and then to the output's type
 *   reduce_kernel<.., ReduceOp<T, func_wrapper_t<R, F>, unsigned int, R, ..>> (Reduce.cuh) with F
 *     sum_functor, MaxNanFunctor, MinNanFunctor, or_kernel_cuda / and_kernel_cuda (any, all):
 *     each output over its inputs, both placed by the op's OffsetCalculators;
 *   reduce_kernel<.., ReduceOp<T, ArgMaxOps<A> / ArgMinOps<A>, unsigned int, long, ..>> (argmax,
 *     argmin; torch.multinomial's one-sample draw is an argmax): the first index of the largest
 *     (smallest) value, a NaN winning
 *   flashinfer::sampling::{SamplingFromLogits,SamplingFromProb,TopKSamplingFromProb,
 *     TopPSamplingFromProb,MinPSamplingFromProb,TopKTopPSamplingFromProb}Kernel<.., IdType>:
 *     output[b] for each of the grid's blocks (and valid[b] = true where the kernel has it)
 *   CatArrayBatchedCopy{,_contig,_alignedK_contig,_vectorized}<T, IndexType, Dims, batch, stride_size..>
 *     (Shape.cu)
 *
 * Arithmetic follows the kernel's: integers wrap at their width, floating values are computed
 * in the functor's type (float for half and bfloat16; a + alpha * b fused, as nvcc contracts it)
 * and rounded to the output's type to nearest even. A floating sum is the exactly rounded sum
 * (the GPU's summation order differs: the last bit may too, unless the partial sums are exact).
 * A launch is evaluated only when every buffer it touches is a host-backed device allocation of
 * this process, its arguments validate against the name's layout, and a computing kernel has at
 * most MAX_COMPUTED elements (host time is the program's virtual time; a cast, MAX_CAST);
 * otherwise nothing is written, as before.
 *
 * Indices are the exception. An argmax over more than MAX_COMPUTED elements, and every sampling
 * kernel, writes index 0 into its (host-backed) outputs without reading its inputs: the values
 * it would rank come from kernels that never ran, so no index is more right than another, but
 * what the buffer held before (another tensor's bytes) is usually no index at all, and a server
 * that reads it as a token id stops the request (SGLang ends it as "NaN happened") or fails.
 * Index 0 is in every vocabulary; a tokenizer whose id 0 is a special token streams no text.
 * Not evaluated: launches captured into graphs (and their replays), strided element-wise
 * kernels, and everything else. */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_data.h"
#include "kernel_shapes.h"

#define MAX_COMPUTED 4096u          /* elements a computing kernel may have (fills, copies: any) */
#define MAX_CAST 65536u             /* elements a casting copy may have (a cast per element) */
#define MAX_INDICES (1u << 20)      /* outputs an argmax or sampling kernel writes index 0 into */
#define MAX_DIMS 25                 /* OffsetCalculator's dimensions (OffsetCalculator.cuh) */
#define CAT_DIMS 4                  /* CAT_ARRAY_MAX_INPUT_DIMS (Shape.cu) */
#define CAT_MAX_BATCH 128           /* CAT_ARRAY_BATCH_SIZE: inputs per launch */
#define NCCL_F16 6                  /* ncclFloat16, ncclBfloat16: reduce.c's small-float codecs */
#define NCCL_BF16 9

enum op {
    OP_NONE = 0,
    OP_FILL,        /* out = value */
    OP_ADD_SELF,    /* out = a + alpha * scalar */
    OP_ADD_OTHER,   /* out = scalar + alpha * b */
    OP_ADD,         /* out = a + alpha * b */
    OP_A_UNARY,     /* out = fn(scalar, b) */
    OP_B_UNARY,     /* out = fn(a, scalar) */
    OP_BINARY,      /* out = fn(a, b) */
    OP_COMPARE,     /* out = a <op> b */
    OP_COMPARE_SCALAR, /* out = a <op> rhs */
    OP_COPY,        /* out = a */
    OP_REDUCE,      /* out[o] = fn over i of in[o, i] */
    OP_CAT,
    OP_CAST,        /* out = (out type)(T)a, the types read at launch */
    OP_SAMPLE,      /* out[b] = 0 for each block b */
};

enum fn { FN_NONE = 0, FN_MUL, FN_DIV, FN_EQ_NE, FN_SUM, FN_MAX, FN_MIN, FN_ANY, FN_ALL, FN_ARGMAX, FN_ARGMIN };

enum type { T_NONE = 0, T_BOOL, T_U8, T_I8, T_I16, T_I32, T_I64, T_F16, T_BF16, T_F32, T_F64 };

enum { CMP_GE = 0, CMP_GT, CMP_LE, CMP_LT };   /* OpType (CompareKernels.cu) */
enum { CMP_EQ = 0, CMP_NE };                   /* EqOpType (CompareEQKernel.cu) */

static const struct {
    const char *name;
    uint8_t type;
} TYPE_NAMES[] = {
    {"bool", T_BOOL}, {"unsigned char", T_U8}, {"signed char", T_I8}, {"short", T_I16}, {"int", T_I32},
    {"long", T_I64}, {"long long", T_I64}, {"c10::Half", T_F16}, {"c10::BFloat16", T_BF16}, {"float", T_F32},
    {"double", T_F64},
};

static const uint8_t TYPE_BYTES[] = {0, 1, 1, 1, 2, 4, 8, 2, 2, 4, 8};

static uint32_t type_bytes(uint8_t t)
{
    return t < sizeof TYPE_BYTES ? TYPE_BYTES[t] : 0;
}

static bool is_float(uint8_t t)
{
    return t == T_F16 || t == T_BF16 || t == T_F32 || t == T_F64;
}

/* torch's opmath_type: half and bfloat16 compute in float */
static uint8_t opmath(uint8_t t)
{
    return t == T_F16 || t == T_BF16 ? T_F32 : t;
}

/* ------------------------------------------------------------------ values */

static double load_f(const uint8_t *p, uint8_t t)
{
    switch (t) {
    case T_F16: return tw_nccl_scalar(p, NCCL_F16);
    case T_BF16: return tw_nccl_scalar(p, NCCL_BF16);
    case T_F32: { float f; memcpy(&f, p, 4); return f; }
    case T_F64: { double d; memcpy(&d, p, 8); return d; }
    default: break;
    }
    int64_t i;
    switch (t) {
    case T_BOOL: i = *p != 0; break;
    case T_U8: i = *p; break;
    case T_I8: i = (int8_t)*p; break;
    case T_I16: { int16_t v; memcpy(&v, p, 2); i = v; break; }
    case T_I32: { int32_t v; memcpy(&v, p, 4); i = v; break; }
    default: memcpy(&i, p, 8); break;
    }
    return (double)i;
}

static int64_t load_i(const uint8_t *p, uint8_t t)
{
    switch (t) {
    case T_BOOL: return *p != 0;
    case T_U8: return *p;
    case T_I8: return (int8_t)*p;
    case T_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case T_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case T_I64: { int64_t v; memcpy(&v, p, 8); return v; }
    default: return (int64_t)load_f(p, t);
    }
}

/* v already holds a value of the computing type: float results are exact floats, so the
 * narrowing to half or bfloat16 rounds once, as the kernel's conversion does */
static void store_f(uint8_t *p, uint8_t t, double v)
{
    switch (t) {
    case T_F16: tw_nccl_store_scalar(p, NCCL_F16, v); break;
    case T_BF16: tw_nccl_store_scalar(p, NCCL_BF16, v); break;
    case T_F32: { float f = (float)v; memcpy(p, &f, 4); break; }
    case T_F64: memcpy(p, &v, 8); break;
    default: break;
    }
}

static void store_i(uint8_t *p, uint8_t t, int64_t v)
{
    switch (t) {
    case T_BOOL: *p = v != 0; break;
    case T_U8: case T_I8: *p = (uint8_t)v; break;
    case T_I16: { uint16_t w = (uint16_t)v; memcpy(p, &w, 2); break; }
    case T_I32: { uint32_t w = (uint32_t)v; memcpy(p, &w, 4); break; }
    case T_I64: memcpy(p, &v, 8); break;
    default: break;
    }
}

/* A number in a computing type: floating types as double (holding a float's exact value for
 * T_F32), integer types and bool as int64. */
typedef struct num {
    double f;
    int64_t i;
} num;

static num load(const uint8_t *p, uint8_t t, uint8_t math)
{
    num n = {0, 0};
    if (is_float(math))
        n.f = load_f(p, t);
    else
        n.i = load_i(p, t);
    return n;
}

static void store(uint8_t *p, uint8_t t, uint8_t math, num n)
{
    if (is_float(math))
        store_f(p, t, n.f);
    else
        store_i(p, t, n.i);
}

/* One value from type `from` at src to type `to` at dst, as a C++ static_cast on the GPU: floating
 * to integer truncates toward zero and saturates (NaN gives 0), integers wrap, to bool is != 0. */
static void convert(const uint8_t *src, uint8_t from, uint8_t *dst, uint8_t to)
{
    if (is_float(to)) {
        store_f(dst, to, is_float(from) ? load_f(src, from) : (double)load_i(src, from));
    } else if (to == T_BOOL) {
        *dst = is_float(from) ? load_f(src, from) != 0.0 : load_i(src, from) != 0;
    } else if (is_float(from)) {   /* cvt.rzi saturates at the target's range */
        static const double LO[] = {[T_U8] = 0, [T_I8] = -128, [T_I16] = -32768, [T_I32] = -2147483648.0, [T_I64] = -0x1p63};
        static const double HI[] = {[T_U8] = 255, [T_I8] = 127, [T_I16] = 32767, [T_I32] = 2147483647.0, [T_I64] = 0x1p63};
        double f = trunc(load_f(src, from));
        int64_t i = isnan(f) ? 0 : f <= LO[to] ? (int64_t)LO[to] : f >= HI[to] ? (to == T_I64 ? INT64_MAX : (int64_t)HI[to]) : (int64_t)f;
        store_i(dst, to, i);
    } else {
        store_i(dst, to, load_i(src, from));
    }
}

static int64_t wrap_add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t wrap_mul(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

/* a + alpha * b, as ufunc::add computes it (fused in floating types) */
static num add(uint8_t math, num a, num b, num alpha)
{
    num r = {0, 0};
    if (math == T_F32)
        r.f = fmaf((float)alpha.f, (float)b.f, (float)a.f);
    else if (math == T_F64)
        r.f = fma(alpha.f, b.f, a.f);
    else
        r.i = wrap_add(a.i, wrap_mul(alpha.i, b.i));
    return r;
}

static bool compare(int op, uint8_t math, num a, num b)
{
    if (is_float(math)) {
        switch (op) {
        case CMP_GE: return a.f >= b.f;
        case CMP_GT: return a.f > b.f;
        case CMP_LE: return a.f <= b.f;
        default: return a.f < b.f;
        }
    }
    switch (op) {
    case CMP_GE: return a.i >= b.i;
    case CMP_GT: return a.i > b.i;
    case CMP_LE: return a.i <= b.i;
    default: return a.i < b.i;
    }
}

static bool equal(uint8_t math, num a, num b)
{
    return is_float(math) ? a.f == b.f : a.i == b.i;
}

/* The binary function of a functor wrapper; `op` is its EqOpType field. */
static num apply_fn(int fn, int op, uint8_t math, num a, num b)
{
    num r = {0, 0};
    switch (fn) {
    case FN_MUL:
        if (math == T_F32)
            r.f = (float)a.f * (float)b.f;
        else if (math == T_F64)
            r.f = a.f * b.f;
        else
            r.i = math == T_BOOL ? (a.i && b.i) : wrap_mul(a.i, b.i);
        break;
    case FN_DIV:
        r.f = math == T_F32 ? (double)((float)a.f / (float)b.f) : a.f / b.f;
        break;
    case FN_EQ_NE:
        r.i = equal(math, a, b) == (op == CMP_EQ);
        break;
    default:
        break;
    }
    return r;
}

/* ------------------------------------------------------------------ names */

/* Splits the template arguments after an opening '<' (or a parameter list after '('). */
static uint32_t split_args(const char *text, const char **starts, size_t *lengths, uint32_t max)
{
    uint32_t count = 0;
    int depth = 0;
    const char *start = text;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '<' || *p == '(')
            depth++;
        else if ((*p == '>' || *p == ')') && depth > 0)
            depth--;
        else if ((*p == ',' || *p == '>' || *p == ')') && depth == 0) {
            while (*start == ' ')
                start++;
            size_t n = (size_t)(p - start);
            while (n > 0 && start[n - 1] == ' ')
                n--;
            if (count < max) {
                starts[count] = start;
                lengths[count] = n;
            }
            count++;
            if (*p != ',')
                break;
            start = p + 1;
        }
    }
    return count;
}

static uint8_t type_named(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof TYPE_NAMES / sizeof TYPE_NAMES[0]; i++)
        if (strlen(TYPE_NAMES[i].name) == n && strncmp(TYPE_NAMES[i].name, s, n) == 0)
            return TYPE_NAMES[i].type;
    return T_NONE;
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && strncmp(s, prefix, k) == 0;
}

/* The single template argument of `prefix<T>` spelled by s[0..n), as a type. */
static uint8_t template_type(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    if (!starts_with(s, n, prefix) || n < k + 1 || s[n - 1] != '>')
        return T_NONE;
    return type_named(s + k, n - k - 1);
}

/* The parameter type of the innermost "{lambda(T)#1}" in s[0..n). */
static uint8_t lambda_type(const char *s, size_t n)
{
    const char *at = NULL;
    for (const char *p = s; (p = strstr(p, "{lambda(")) != NULL && p < s + n; p++)
        at = p + 8;
    const char *close = at != NULL ? strchr(at, ')') : NULL;
    return close != NULL && close < s + n ? type_named(at, (size_t)(close - at)) : T_NONE;
}

/* F of a Loops.cuh wrapper: the binary function and the type it computes in. */
static bool parse_inner_fn(const char *s, size_t n, tw_kernel_data *out)
{
    static const struct { const char *prefix; uint8_t fn; } FNS[] = {
        {"at::native::binary_internal::MulFunctor<", FN_MUL},
        {"at::native::binary_internal::DivFunctor<", FN_DIV},
        {"at::native::(anonymous namespace)::CompareEqFunctor<", FN_EQ_NE},
    };
    for (size_t i = 0; i < sizeof FNS / sizeof FNS[0]; i++) {
        uint8_t t = template_type(s, n, FNS[i].prefix);
        if (t != T_NONE) {
            out->fn = FNS[i].fn;
            out->math_type = t;
            /* products and quotients compute in opmath types: never half or bfloat16 */
            return FNS[i].fn == FN_EQ_NE || (t != T_F16 && t != T_BF16 && (FNS[i].fn != FN_DIV || is_float(t)));
        }
    }
    return false;
}

/* The functor of an element-wise kernel. */
static bool parse_functor(const char *s, size_t n, tw_kernel_data *out)
{
    static const struct { const char *prefix; uint8_t op; } SIMPLE[] = {
        {"at::native::FillFunctor<", OP_FILL},
        {"at::native::CUDAFunctorOnSelf_add<", OP_ADD_SELF},
        {"at::native::CUDAFunctorOnOther_add<", OP_ADD_OTHER},
        {"at::native::CUDAFunctor_add<", OP_ADD},
        {"at::native::(anonymous namespace)::CompareFunctor<", OP_COMPARE},
    };
    for (size_t i = 0; i < sizeof SIMPLE / sizeof SIMPLE[0]; i++) {
        uint8_t t = template_type(s, n, SIMPLE[i].prefix);
        if (t == T_NONE)
            continue;
        out->op = SIMPLE[i].op;
        out->in_type = t;
        out->out_type = SIMPLE[i].op == OP_COMPARE ? T_BOOL : t;
        out->math_type = SIMPLE[i].op == OP_COMPARE || SIMPLE[i].op == OP_FILL ? t : opmath(t);
        return true;
    }
    static const struct { const char *prefix; uint8_t op; } WRAPPERS[] = {
        {"at::native::AUnaryFunctor<", OP_A_UNARY},
        {"at::native::BUnaryFunctor<", OP_B_UNARY},
        {"at::native::BinaryFunctor<", OP_BINARY},
    };
    for (size_t i = 0; i < sizeof WRAPPERS / sizeof WRAPPERS[0]; i++) {
        if (!starts_with(s, n, WRAPPERS[i].prefix))
            continue;
        const char *starts[4];
        size_t lengths[4];
        if (split_args(s + strlen(WRAPPERS[i].prefix), starts, lengths, 4) != 4)
            return false;
        uint8_t a = type_named(starts[0], lengths[0]), b = type_named(starts[1], lengths[1]);
        uint8_t r = type_named(starts[2], lengths[2]);
        if (a == T_NONE || a != b || r == T_NONE || !parse_inner_fn(starts[3], lengths[3], out))
            return false;
        bool predicate = out->fn == FN_EQ_NE;
        if ((predicate && r != T_BOOL) || (!predicate && is_float(r) != is_float(out->math_type)))
            return false;
        out->op = WRAPPERS[i].op;
        out->in_type = a;
        out->out_type = r;
        return true;
    }
    if (starts_with(s, n, "at::native::compare_scalar_kernel<")) {
        uint8_t t = lambda_type(s, n);
        out->op = OP_COMPARE_SCALAR;
        out->in_type = out->math_type = t;
        out->out_type = T_BOOL;
        return t != T_NONE;
    }
    if (starts_with(s, n, "at::native::direct_copy_kernel_cuda(")) {
        uint8_t t = lambda_type(s, n);
        out->op = OP_COPY;
        out->in_type = out->out_type = out->math_type = t;
        return t != T_NONE;
    }
    /* float to half and bfloat16 (Copy.cu's no-cast kernels): lambda(float), static_cast */
    bool to_half = starts_with(s, n, "at::native::float16_copy_kernel_cuda(");
    if (to_half || starts_with(s, n, "at::native::bfloat16_copy_kernel_cuda(")) {
        out->op = OP_COPY;
        out->in_type = out->math_type = lambda_type(s, n);
        out->out_type = to_half ? T_F16 : T_BF16;
        return out->in_type == T_F32;
    }
    return false;
}

/* "std::array<char*, 3ul>" */
static uint8_t array_operands(const char *s, size_t n)
{
    const char *prefix = "std::array<char*, ";
    if (!starts_with(s, n, prefix))
        return 0;
    long k = strtol(s + strlen(prefix), NULL, 10);
    return k >= 1 && k <= 3 ? (uint8_t)k : 0;
}

/* Operands each op's kernel has: the output first, then its tensor inputs. */
static uint8_t expected_operands(uint8_t op)
{
    switch (op) {
    case OP_FILL: return 1;
    case OP_ADD: case OP_BINARY: case OP_COMPARE: return 3;
    default: return 2;
    }
}

static void parse_elementwise(const char *text, bool vectorized, tw_kernel_data *out)
{
    const char *starts[7];
    size_t lengths[7];
    uint32_t n = split_args(strchr(text, '<') + 1, starts, lengths, 7);
    tw_kernel_data kd = {0};
    if (vectorized) {
        /* vectorized_elementwise_kernel<vec_size, func, array> (torch 2.14 adds a bool after the
         * array; the parameters are the same) */
        bool flag = n == 4 && ((lengths[3] == 5 && strncmp(starts[3], "false", 5) == 0) ||
                               (lengths[3] == 4 && strncmp(starts[3], "true", 4) == 0));
        if ((n != 3 && !flag) || !parse_functor(starts[1], lengths[1], &kd))
            return;
        kd.operands = array_operands(starts[2], lengths[2]);
    } else {
        /* unrolled_elementwise_kernel<func, array, elems, in calc, out calc, loader, storer> */
        if (n != 7 || !starts_with(starts[3], lengths[3], "TrivialOffsetCalculator<") ||
            !starts_with(starts[4], lengths[4], "TrivialOffsetCalculator<") ||
            !parse_functor(starts[0], lengths[0], &kd))
            return;
        bool plain = starts_with(starts[5], lengths[5], "at::native::memory::LoadWithoutCast") &&
                     starts_with(starts[6], lengths[6], "at::native::memory::StoreWithoutCast");
        bool cast = kd.op == OP_COPY && starts_with(starts[5], lengths[5], "at::native::memory::LoadWithCast<1>") &&
                    starts_with(starts[6], lengths[6], "at::native::memory::StoreWithCast<1>");
        if (!plain && !cast)
            return;
        if (cast)
            kd.op = OP_CAST;   /* in_type and out_type come from the launch; math_type is T */
        kd.operands = array_operands(starts[1], lengths[1]);
    }
    if (kd.operands == expected_operands(kd.op))
        *out = kd;
}

/* ReduceOp<scalar_t, func_wrapper_t<out, F> | ArgMaxOps<acc> | ArgMinOps<acc>, index_t, out_scalar_t, vt0, vec> */
static void parse_reduce(const char *text, tw_kernel_data *out)
{
    const char *op = strstr(text, "at::native::ReduceOp<");
    const char *starts[6];
    size_t lengths[6];
    if (op == NULL || split_args(op + strlen("at::native::ReduceOp<"), starts, lengths, 6) != 6)
        return;
    uint8_t in = type_named(starts[0], lengths[0]), res = type_named(starts[3], lengths[3]);
    const char *ops = starts[1];
    size_t ops_n = lengths[1];
    const char *inner[2];
    size_t inner_n[2];
    tw_kernel_data kd = {.op = OP_REDUCE, .in_type = in, .out_type = res};
    uint8_t arg_acc = template_type(ops, ops_n, "at::native::ArgMaxOps<");
    kd.fn = arg_acc != T_NONE ? FN_ARGMAX : FN_NONE;
    if (arg_acc == T_NONE && (arg_acc = template_type(ops, ops_n, "at::native::ArgMinOps<")) != T_NONE)
        kd.fn = FN_ARGMIN;
    if (kd.fn != FN_NONE) {   /* the index of the extreme value, compared in the accumulator type */
        kd.math_type = arg_acc;
        if (in != T_NONE && res == T_I64 && lengths[2] == 12 && strncmp(starts[2], "unsigned int", 12) == 0)
            *out = kd;
        return;
    }
    if (in == T_NONE || res == T_NONE || lengths[2] != 12 || strncmp(starts[2], "unsigned int", 12) != 0 ||
        !starts_with(ops, ops_n, "at::native::func_wrapper_t<") ||
        split_args(ops + strlen("at::native::func_wrapper_t<"), inner, inner_n, 2) != 2)
        return;
    const char *f = inner[1];
    size_t fn_n = inner_n[1];
    if (starts_with(f, fn_n, "at::native::sum_functor<")) {
        const char *sum[3];
        size_t sum_n[3];
        if (split_args(f + strlen("at::native::sum_functor<"), sum, sum_n, 3) != 3)
            return;
        kd.fn = FN_SUM;
        kd.math_type = type_named(sum[1], sum_n[1]);
    } else if ((kd.math_type = template_type(f, fn_n, "at::native::MaxNanFunctor<")) != T_NONE) {
        kd.fn = FN_MAX;
    } else if ((kd.math_type = template_type(f, fn_n, "at::native::MinNanFunctor<")) != T_NONE) {
        kd.fn = FN_MIN;
    } else if (starts_with(f, fn_n, "at::native::or_kernel_cuda(") || starts_with(f, fn_n, "at::native::and_kernel_cuda(")) {
        kd.fn = f[12] == 'o' ? FN_ANY : FN_ALL;
        kd.math_type = T_BOOL;
    }
    if (kd.fn != FN_NONE && kd.math_type != T_NONE && is_float(kd.math_type) == is_float(res))
        *out = kd;
}

/* CatArrayBatchedCopy[_contig|_alignedK_contig]<T, IndexType, Dims, batch_size, stride_size, ...>,
 * CatArrayBatchedCopy_vectorized<.., alignment, elems_per_vec> (copies alignment-byte units of
 * elems_per_vec elements); T is OpaqueType<bytes> or a scalar type */
static void parse_cat(const char *variant, tw_kernel_data *out)
{
    const char *starts[7];
    size_t lengths[7];
    bool vectorized = strncmp(variant, "_vectorized<", 12) == 0;
    if (split_args(strchr(variant, '<') + 1, starts, lengths, 7) < (vectorized ? 7u : 5u))
        return;
    const char *opaque = "at::native::(anonymous namespace)::OpaqueType<";
    long elem = starts_with(starts[0], lengths[0], opaque) ? strtol(starts[0] + strlen(opaque), NULL, 10)
                                                           : (long)type_bytes(type_named(starts[0], lengths[0]));
    long index = starts_with(starts[1], lengths[1], "unsigned int") && lengths[1] == 12   ? 4
                 : starts_with(starts[1], lengths[1], "unsigned long") && lengths[1] == 13 ? 8
                                                                                           : 0;
    long dims = strtol(starts[2], NULL, 10), batch = strtol(starts[3], NULL, 10), strides = strtol(starts[4], NULL, 10);
    long unit = vectorized ? strtol(starts[5], NULL, 10) : elem, per_unit = vectorized ? strtol(starts[6], NULL, 10) : 0;
    if (elem < 1 || elem > 16 || index == 0 || dims < 1 || dims > CAT_DIMS || batch < 1 || batch > CAT_MAX_BATCH ||
        strides < 1 || strides > batch || (vectorized && (strides != 1 || per_unit < 1 || unit != elem * per_unit)))
        return;
    *out = (tw_kernel_data){.op = OP_CAT, .elem_bytes = (uint8_t)unit, .index_bytes = (uint8_t)index,
                            .dims = (uint8_t)dims, .batch = (uint16_t)batch, .stride_slots = (uint16_t)strides,
                            .contiguous = vectorized || strstr(variant, "_contig<") != NULL,
                            .vec_elems = (uint8_t)per_unit};
}

static bool prefixed(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* flashinfer::sampling::<kernel><BLOCK_THREADS, .., DType, IdType>(params): the sampled ids are
 * output[blockIdx.x], `output` the parameter below (sampling.cuh, FlashInfer 0.2-0.7), checked
 * against the parameter list's type (IdType*). */
static void parse_sampling(const char *kernel, tw_kernel_data *out)
{
    static const struct { const char *name; uint8_t output; } KERNELS[] = {
        {"SamplingFromLogitsKernel<", 1}, {"SamplingFromProbKernel<", 1},
        {"TopKSamplingFromProbKernel<", 1}, {"TopPSamplingFromProbKernel<", 1},
        {"MinPSamplingFromProbKernel<", 2}, {"TopKTopPSamplingFromProbKernel<", 3},
    };
    for (size_t i = 0; i < sizeof KERNELS / sizeof KERNELS[0]; i++) {
        if (!prefixed(kernel, KERNELS[i].name))
            continue;
        const char *targs[8], *params[16];
        size_t targ_n[8], param_n[16];
        uint32_t n = split_args(kernel + strlen(KERNELS[i].name), targs, targ_n, 8);
        if (n < 2 || n > 8)
            return;
        uint8_t id = type_named(targs[n - 1], targ_n[n - 1]);
        const char *list = strchr(targs[n - 1] + targ_n[n - 1], '(');
        uint32_t np = list != NULL ? split_args(list + 1, params, param_n, 16) : 0;
        uint8_t k = KERNELS[i].output;
        const char *pointer = id == T_I32 ? "int*" : "long*";
        if ((id != T_I32 && id != T_I64) || np <= k || np > 16 || param_n[k] != strlen(pointer) ||
            strncmp(params[k], pointer, param_n[k]) != 0)
            return;
        *out = (tw_kernel_data){.op = OP_SAMPLE, .out_type = id, .out_param = k,
                                .out_valid = np > k + 1u && param_n[k + 1] == 5 && strncmp(params[k + 1], "bool*", 5) == 0};
        return;
    }
}

/* Words the mangled names of the kernels above hold: most kernels skip the demangler. */
static bool maybe_evaluated(const char *mangled)
{
    static const char *const WORDS[] = {"elementwise_kernel", "reduce_kernel", "CatArrayBatchedCopy", "SamplingFrom"};
    for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++)
        if (strstr(mangled, WORDS[i]) != NULL)
            return true;
    return false;
}

void tw_kernel_data_init(const char *mangled, tw_kernel_data *out)
{
    memset(out, 0, sizeof *out);
    if (mangled == NULL || !maybe_evaluated(mangled))
        return;
    char *text = tw_kernel_demangle(mangled);
    if (text == NULL)
        return;
    const char *cat = "void at::native::(anonymous namespace)::CatArrayBatchedCopy";
    if (prefixed(text, "void at::native::vectorized_elementwise_kernel<"))
        parse_elementwise(text, true, out);
    else if (prefixed(text, "void at::native::unrolled_elementwise_kernel<"))
        parse_elementwise(text, false, out);
    else if (prefixed(text, "void at::native::reduce_kernel<"))
        parse_reduce(text, out);
    else if (prefixed(text, "void flashinfer::sampling::"))
        parse_sampling(text + strlen("void flashinfer::sampling::"), out);
    else if (prefixed(text, cat) && strchr(text, '<') != NULL) {
        const char *variant = text + strlen(cat);
        if (variant[0] == '<' || strncmp(variant, "_contig<", 8) == 0 || strncmp(variant, "_alignedK_contig<", 17) == 0 ||
            strncmp(variant, "_vectorized<", 12) == 0)
            parse_cat(variant, out);
    }
    free(text);
    if (out->op != OP_NONE)
        TW_DEBUG("kernel data: %s is evaluated on the host when its buffers are host-backed", mangled);
}

/* ------------------------------------------------------------------ buffers */

/* [p, p + bytes) lies in one host-backed device allocation of this process. */
static bool host_range(uint64_t p, uint64_t bytes)
{
    tw_alloc a;
    return p != 0 && tw_mem_lookup((const void *)(uintptr_t)p, &a) && a.backed && a.owner_pid == 0 &&
           (a.kind == TW_MEM_DEVICE || a.kind == TW_MEM_MANAGED || a.kind == TW_MEM_VMM_PHYSICAL) &&
           bytes <= a.base + a.size - p;
}

static uint64_t param_u64(const tw_param_layout *l, void **args, uint32_t param, uint32_t at, uint32_t bytes)
{
    uint64_t v = 0;
    if (param < l->count && args[param] != NULL && at + bytes <= l->size[param] && bytes <= sizeof v)
        memcpy(&v, (const uint8_t *)args[param] + at, bytes);
    return v;
}


static uint32_t align_up(uint32_t v, uint32_t a)
{
    return (v + a - 1) / a * a;
}

/* A collective's pending result in [p, p + bytes) is written before the kernel reads or
 * overwrites it. */
static void settle(const uint8_t *p, uint64_t bytes)
{
    tw_coll_materialize_range(p, bytes);
}

/* ------------------------------------------------------------------ element-wise */

typedef struct elementwise {
    uint32_t n;
    uint8_t *data[3];        /* the output, then the tensor inputs */
    num scalar, alpha;       /* the functor's fields */
    int cmp;                 /* OpType or EqOpType */
} elementwise;

/* The functor's fields (layouts in the file comment), checked against its size. */
static bool functor_fields(const tw_kernel_data *kd, const uint8_t *f, uint32_t size, elementwise *e)
{
    uint8_t m = kd->math_type;
    uint32_t ms = type_bytes(m);
    int32_t op = 0;
    memcpy(&op, f, size < 4 ? size : 4);
    switch (kd->op) {
    case OP_FILL: return size == type_bytes(kd->out_type);
    case OP_COPY: return size == 1;
    case OP_ADD_SELF: case OP_ADD_OTHER:
        e->scalar = load(f, m, m);
        e->alpha = load(f + ms, m, m);
        return size == 2 * ms;
    case OP_ADD:
        e->alpha = load(f, m, m);
        return size == ms;
    case OP_COMPARE:
        e->cmp = op;
        return size == 4 && op >= CMP_GE && op <= CMP_LT;
    case OP_COMPARE_SCALAR: /* {CompareFunctor f; T rhs} (and a word the closure does not use) */
        e->cmp = op;
        if (size < align_up(4, ms) + ms || op < CMP_GE || op > CMP_LT)
            return false;
        e->scalar = load(f + align_up(4, ms), m, m);
        return true;
    default: break;
    }
    /* Loops.cuh wrappers: {F f; M scalar} or {F f}; F is empty, or CompareEqFunctor's op */
    uint32_t fn_bytes = kd->fn == FN_EQ_NE ? 4 : 1, at = align_up(fn_bytes, ms);
    e->cmp = kd->fn == FN_EQ_NE ? op : 0;
    if (kd->fn == FN_EQ_NE && op != CMP_EQ && op != CMP_NE)
        return false;
    if (kd->op == OP_BINARY)
        return size == fn_bytes;
    e->scalar = load(f + at, m, m);
    return size == align_up(at + ms, fn_bytes > ms ? fn_bytes : ms);
}

/* (int N, functor, std::array<char*, K>): N elements of every operand, all host-backed. */
static bool elementwise_args(const tw_kernel_data *kd, const tw_param_layout *l, void **args, elementwise *e)
{
    if (l->count < 3 || l->size[0] != 4 || l->size[2] != 8u * kd->operands || args[0] == NULL || args[1] == NULL ||
        args[2] == NULL)
        return false;
    int32_t n;
    memcpy(&n, args[0], sizeof n);
    bool computed = kd->op != OP_FILL && kd->op != OP_COPY, converted = kd->op == OP_COPY && kd->in_type != kd->out_type;
    if (n <= 0 || (computed && (uint32_t)n > MAX_COMPUTED) || (converted && (uint32_t)n > MAX_CAST) ||
        !functor_fields(kd, args[1], l->size[1], e))
        return false;
    e->n = (uint32_t)n;
    for (uint32_t k = 0; k < kd->operands; k++) {
        uint64_t p;
        memcpy(&p, (const uint8_t *)args[2] + 8 * k, sizeof p);
        if (!host_range(p, (uint64_t)e->n * type_bytes(k == 0 ? kd->out_type : kd->in_type)))
            return false;
        e->data[k] = (uint8_t *)(uintptr_t)p;
    }
    for (uint32_t k = 0; k < kd->operands; k++)
        settle(e->data[k], (uint64_t)e->n * type_bytes(k == 0 ? kd->out_type : kd->in_type));
    return true;
}

/* out = value, doubling the filled prefix */
static void fill(uint8_t *out, const uint8_t *value, uint32_t elem_bytes, uint64_t n)
{
    uint64_t total = n * elem_bytes, done = elem_bytes;
    memcpy(out, value, elem_bytes);
    while (done < total) {
        uint64_t chunk = done < total - done ? done : total - done;
        memcpy(out + done, out, chunk);
        done += chunk;
    }
}

static void run_elementwise(const tw_kernel_data *kd, const tw_param_layout *l, void **args)
{
    elementwise e = {0};
    if (!elementwise_args(kd, l, args, &e))
        return;
    uint32_t in_bytes = type_bytes(kd->in_type), out_bytes = type_bytes(kd->out_type);
    if (kd->op == OP_FILL) {
        fill(e.data[0], args[1], out_bytes, e.n);
        return;
    }
    if (kd->op == OP_COPY && kd->in_type == kd->out_type) {
        memmove(e.data[0], e.data[1], (uint64_t)e.n * out_bytes);
        return;
    }
    if (kd->op == OP_COPY) {
        for (uint64_t i = 0; i < e.n; i++)
            convert(e.data[1] + i * in_bytes, kd->in_type, e.data[0] + i * out_bytes, kd->out_type);
        return;
    }
    uint8_t m = kd->math_type;
    bool predicate = kd->out_type == T_BOOL && (kd->op == OP_COMPARE || kd->op == OP_COMPARE_SCALAR || kd->fn == FN_EQ_NE);
    for (uint32_t i = 0; i < e.n; i++) {
        num a = load(e.data[1] + (uint64_t)i * in_bytes, kd->in_type, m), r = {0, 0};
        num b = kd->operands == 3 ? load(e.data[2] + (uint64_t)i * in_bytes, kd->in_type, m) : e.scalar;
        switch (kd->op) {
        case OP_ADD_SELF: r = add(m, a, e.scalar, e.alpha); break;
        case OP_ADD_OTHER: r = add(m, e.scalar, a, e.alpha); break;
        case OP_ADD: r = add(m, a, b, e.alpha); break;
        case OP_A_UNARY: r = apply_fn(kd->fn, e.cmp, m, e.scalar, a); break;
        case OP_B_UNARY: case OP_BINARY: r = apply_fn(kd->fn, e.cmp, m, a, b); break;
        default: r.i = compare(e.cmp, m, a, b); break;   /* OP_COMPARE, OP_COMPARE_SCALAR */
        }
        store(e.data[0] + (uint64_t)i * out_bytes, kd->out_type, predicate ? T_BOOL : m, r);
    }
}

/* c10::ScalarType's codes (ScalarType.h) of the types above */
static uint8_t scalar_type(uint8_t code)
{
    static const uint8_t TYPES[] = {[0] = T_U8, [1] = T_I8, [2] = T_I16, [3] = T_I32, [4] = T_I64, [5] = T_F16,
                                    [6] = T_F32, [7] = T_F64, [11] = T_BOOL, [15] = T_BF16};
    return code < sizeof TYPES ? TYPES[code] : T_NONE;
}

/* (int N, lambda, std::array<char*, 2> {out, in}, in calc, out calc, LoadWithCast<1>
 * {ScalarType dtypes[1]; uint32_t element_sizes[1]}, StoreWithCast<1> {the same}) */
static void run_cast(const tw_kernel_data *kd, const tw_param_layout *l, void **args)
{
    if (l->count != 7 || l->size[0] != 4 || l->size[2] != 16 || l->size[5] != 8 || l->size[6] != 8 ||
        args[0] == NULL || args[2] == NULL || args[5] == NULL || args[6] == NULL)
        return;
    int32_t n;
    uint32_t in_size, out_size;
    const uint8_t *loader = args[5], *storer = args[6];
    memcpy(&n, args[0], sizeof n);
    memcpy(&in_size, loader + 4, 4);
    memcpy(&out_size, storer + 4, 4);
    uint8_t in = scalar_type(loader[0]), out = scalar_type(storer[0]), via = kd->math_type;
    if (n <= 0 || (uint32_t)n > MAX_CAST || in == T_NONE || out == T_NONE || type_bytes(in) != in_size ||
        type_bytes(out) != out_size)
        return;
    uint64_t dst, src;
    memcpy(&dst, args[2], 8);
    memcpy(&src, (const uint8_t *)args[2] + 8, 8);
    if (!host_range(dst, (uint64_t)n * out_size) || !host_range(src, (uint64_t)n * in_size))
        return;
    settle((const uint8_t *)(uintptr_t)src, (uint64_t)n * in_size);
    settle((const uint8_t *)(uintptr_t)dst, (uint64_t)n * out_size);
    for (uint64_t i = 0; i < (uint64_t)n; i++) {
        uint8_t value[8];
        convert((const uint8_t *)(uintptr_t)src + i * in_size, in, value, via);
        convert(value, via, (uint8_t *)(uintptr_t)dst + i * out_size, out);
    }
}

/* Index 0 in output[b] (and true in valid[b]) for each block of a FlashInfer sampling kernel. */
static void run_sample(const tw_kernel_data *kd, const tw_param_layout *l, void **args, tw_dim3 grid)
{
    uint32_t k = kd->out_param, id_bytes = type_bytes(kd->out_type);
    if (k >= l->count || l->size[k] != 8 || args[k] == NULL || grid.y != 1 || grid.z != 1 || grid.x > MAX_INDICES)
        return;
    uint64_t output, valid = 0;
    memcpy(&output, args[k], 8);
    if (kd->out_valid && k + 1 < l->count && l->size[k + 1] == 8 && args[k + 1] != NULL)
        memcpy(&valid, args[k + 1], 8);
    if (host_range(output, (uint64_t)grid.x * id_bytes)) {
        settle((const uint8_t *)(uintptr_t)output, (uint64_t)grid.x * id_bytes);
        memset((void *)(uintptr_t)output, 0, (uint64_t)grid.x * id_bytes);
    }
    if (host_range(valid, grid.x)) {
        settle((const uint8_t *)(uintptr_t)valid, grid.x);
        memset((void *)(uintptr_t)valid, 1, grid.x);
    }
}

/* ------------------------------------------------------------------ reductions */

/* ReduceOp (Reduce.cuh): {ops; arg_t ident; ReduceConfig (14 ints, bool vectorize_input, int
 * output_vec_size); OffsetCalculator<1> input_calc; OffsetCalculator<2> output_calc; ...tail}.
 * An OffsetCalculator<N, uint32_t> is {int dims; IntDivider sizes[MAX_DIMS] (divisor, magic,
 * shift); uint32_t strides[MAX_DIMS][N] (bytes)}, dimension 0 the fastest. The tail: src,
 * dst[2], acc_buf, cta_buf, semaphores, int64 base_idx, bool accumulate, bool final_output,
 * int noutputs. */
#define CONFIG_BYTES 64
#define CALC_BYTES(nargs) (4u + MAX_DIMS * 12u + MAX_DIMS * 4u * (nargs))
#define REDUCE_TAIL_BYTES 64u

typedef struct calc {
    uint32_t dims;
    uint32_t sizes[MAX_DIMS];
    uint32_t strides[MAX_DIMS][2];
    uint64_t reach[2];       /* the largest offset of each argument */
} calc;

/* Reads an OffsetCalculator; false unless its sizes multiply to `elements`. */
static bool read_calc(const uint8_t *p, uint32_t nargs, uint64_t elements, calc *c)
{
    int32_t dims;
    memcpy(&dims, p, sizeof dims);
    if (dims < 0 || dims > MAX_DIMS)
        return false;
    uint64_t count = 1;
    c->dims = (uint32_t)dims;
    c->reach[0] = c->reach[1] = 0;
    for (uint32_t d = 0; d < c->dims; d++) {
        memcpy(&c->sizes[d], p + 4 + 12 * d, 4);
        count *= c->sizes[d];
        if (c->sizes[d] == 0 || count > elements)
            return false;
        for (uint32_t a = 0; a < nargs; a++) {
            memcpy(&c->strides[d][a], p + 4 + 12 * MAX_DIMS + 4 * (d * nargs + a), 4);
            c->reach[a] += (uint64_t)(c->sizes[d] - 1) * c->strides[d][a];
        }
    }
    return count == elements;
}

static void calc_offsets(const calc *c, uint32_t nargs, uint64_t index, uint64_t *offsets)
{
    offsets[0] = offsets[1] = 0;
    for (uint32_t d = 0; d < c->dims; d++) {
        uint64_t next = index / c->sizes[d], at = index - next * c->sizes[d];
        for (uint32_t a = 0; a < nargs; a++)
            offsets[a] += at * c->strides[d][a];
        index = next;
    }
}

typedef struct reduction {
    uint32_t inputs, outputs;   /* per output; outputs */
    calc in, out;
    const uint8_t *src;         /* NULL: too many inputs to rank here, the outputs get index 0 */
    uint8_t *dst;
} reduction;

/* Finds and checks the fields above; the config sits after ops and ident, and its launch shape
 * must be the launch's. */
static bool reduce_args(const tw_kernel_data *kd, const tw_param_layout *l, void **args, tw_dim3 block, reduction *r)
{
    bool arg = kd->fn == FN_ARGMAX || kd->fn == FN_ARGMIN;
    /* ops (empty), then ident: arg_t, or the argument ops' pair<acc, int64_t> at 8 */
    uint32_t acc = type_bytes(kd->math_type), at = arg ? 8 + 16 : align_up(2 * acc, 4);
    uint32_t size = l->count == 1 ? l->size[0] : 0;
    const uint8_t *p = args[0];
    uint32_t tail = align_up(at + CONFIG_BYTES + CALC_BYTES(1) + CALC_BYTES(2), 8);
    if (p == NULL || size != tail + REDUCE_TAIL_BYTES)
        return false;
    int32_t c[14];
    memcpy(c, p + at, sizeof c);
    uint64_t threads = (uint64_t)block.x * block.y * block.z;
    bool ranked = (uint64_t)c[1] * (uint64_t)c[2] <= MAX_COMPUTED;
    if (c[1] < 1 || c[2] < 1 || c[11] < 1 || c[12] < 1 || c[11] * c[12] != c[13] || (uint64_t)c[13] != threads ||
        (!ranked && (!arg || (uint32_t)c[2] > MAX_INDICES)))
        return false;
    r->inputs = (uint32_t)c[1];
    r->outputs = (uint32_t)c[2];
    uint64_t src, dst;
    int32_t noutputs;
    memcpy(&src, p + tail, 8);
    memcpy(&dst, p + tail + 8, 8);
    memcpy(&noutputs, p + size - 4, 4);
    bool accumulate = p[size - 8] != 0, final_output = p[size - 7] != 0;
    if (accumulate || !final_output || noutputs != 1 || !read_calc(p + at + CONFIG_BYTES, 1, r->inputs, &r->in) ||
        !read_calc(p + at + CONFIG_BYTES + CALC_BYTES(1), 2, r->outputs, &r->out))
        return false;
    uint64_t in_bytes = r->out.reach[1] + r->in.reach[0] + type_bytes(kd->in_type);
    uint64_t out_bytes = r->out.reach[0] + type_bytes(kd->out_type);
    if ((ranked && !host_range(src, in_bytes)) || !host_range(dst, out_bytes))
        return false;
    r->src = ranked ? (const uint8_t *)(uintptr_t)src : NULL;
    r->dst = (uint8_t *)(uintptr_t)dst;
    if (ranked)
        settle(r->src, in_bytes);
    settle(r->dst, out_bytes);
    return true;
}

static num combine(int fn, uint8_t m, num acc, num x)
{
    bool fl = is_float(m);
    switch (fn) {
    case FN_SUM:
        if (fl)
            acc.f += x.f;   /* in double: the exactly rounded sum for the sizes evaluated */
        else
            acc.i = wrap_add(acc.i, x.i);
        break;
    case FN_MAX:   /* MaxNanFunctor: a NaN wins */
        if (fl ? !isnan(acc.f) && (isnan(x.f) || x.f > acc.f) : x.i > acc.i)
            acc = x;
        break;
    case FN_MIN:
        if (fl ? !isnan(acc.f) && (isnan(x.f) || x.f < acc.f) : x.i < acc.i)
            acc = x;
        break;
    case FN_ANY: acc.i = acc.i || x.i; break;
    default: acc.i = acc.i && x.i; break;   /* FN_ALL */
    }
    return acc;
}

static void run_reduce(const tw_kernel_data *kd, const tw_param_layout *l, void **args, tw_dim3 block)
{
    reduction r;
    if (!reduce_args(kd, l, args, block, &r))
        return;
    uint8_t m = kd->math_type;
    bool arg = kd->fn == FN_ARGMAX || kd->fn == FN_ARGMIN;
    for (uint32_t o = 0; o < r.outputs; o++) {
        uint64_t base[2], at[2];
        calc_offsets(&r.out, 2, o, base);
        num acc = {0, 0}, index = {0, 0};
        for (uint32_t i = 0; r.src != NULL && i < r.inputs; i++) {
            calc_offsets(&r.in, 1, i, at);
            num x = load(r.src + base[1] + at[0], kd->in_type, m);
            if (!arg) {
                acc = i == 0 ? x : combine(kd->fn, m, acc, x);
                continue;
            }
            /* GreaterOrNan / LessOrNan: a NaN wins, the first index among equals */
            num best = combine(kd->fn == FN_ARGMAX ? FN_MAX : FN_MIN, m, acc, x);
            if (i == 0 || memcmp(&best, &acc, sizeof best) != 0) {
                acc = x;
                index.i = i;
            }
        }
        if (arg) {
            store(r.dst + base[0], kd->out_type, T_I64, index);
            continue;
        }
        if (m == T_F32)
            acc.f = (float)acc.f;
        store(r.dst + base[0], kd->out_type, m, acc);
    }
}

/* ------------------------------------------------------------------ cat */

/* CatArrInputTensorMetadata<T, IndexType, B, S> (Shape.cu): const T* input[B]; IndexType
 * offset[B], dimSize[B], nElements[B]; bool isContiguous[B]; TensorSizeStride<IndexType, 4>
 * tensorStride[S]. Parameters: (T* output, metadata, TensorSizeStride os, int concatDim,
 * IndexType dimStride); grid.y = the launch's inputs. */
typedef struct cat_layout {
    uint32_t offset_at, dim_at, count_at, contig_at, strides_at, bytes;
} cat_layout;

static cat_layout cat_metadata(const tw_kernel_data *kd)
{
    uint32_t b = kd->batch, s = kd->index_bytes;
    cat_layout c;
    c.offset_at = 8 * b;
    c.dim_at = c.offset_at + s * b;
    c.count_at = c.dim_at + s * b;
    c.contig_at = c.count_at + s * b;
    c.strides_at = align_up(c.contig_at + b, s);
    c.bytes = align_up(c.strides_at + kd->stride_slots * 2 * CAT_DIMS * s, 8);
    return c;
}

typedef struct size_stride {
    uint64_t size[CAT_DIMS], stride[CAT_DIMS];
} size_stride;

static size_stride read_size_stride(const uint8_t *p, uint32_t s)
{
    size_stride t;
    for (uint32_t d = 0; d < CAT_DIMS; d++) {
        t.size[d] = t.stride[d] = 0;
        memcpy(&t.size[d], p + d * s, s);
        memcpy(&t.stride[d], p + (CAT_DIMS + d) * s, s);
    }
    return t;
}

/* CatArrIndexToOffset: element `index` of a tensor of `t`'s sizes (dim_size along the concat
 * dimension) at `t`'s strides, in elements. */
static uint64_t cat_offset(const size_stride *t, uint32_t dims, uint64_t dim_size, uint32_t concat, uint64_t index)
{
    uint64_t offset = 0;
    for (uint32_t d = dims - 1; d >= 1; d--) {
        uint64_t size = d == concat ? dim_size : t->size[d];
        uint64_t next = size ? index / size : 0;
        offset += (index - next * size) * t->stride[d];
        index = next;
    }
    return offset + index * t->stride[0];
}

/* The largest element offset such a tensor reaches. */
static uint64_t cat_reach(const size_stride *t, uint32_t dims, uint64_t dim_size, uint32_t concat)
{
    uint64_t reach = 0;
    for (uint32_t d = 0; d < dims; d++) {
        uint64_t size = d == concat ? dim_size : t->size[d];
        reach += (size ? size - 1 : 0) * t->stride[d];
    }
    return reach;
}

/* One input of the launch, as its metadata slot y gives it. */
typedef struct cat_piece {
    const uint8_t *data;
    uint64_t offset, dim_size, count, reach;   /* reach: the largest element offset it reads */
    bool contiguous;
    size_stride strides;
} cat_piece;

/* Reads slot y and checks it: its elements are its slice of the output (offset and size along
 * the concat dimension within the output's, the count those sizes give), all of them in one
 * host-backed allocation; a piece copied element by element has at most MAX_COMPUTED. The
 * _vectorized variant's slots count elements: its units are `trailing` elements of the concat
 * dimension per index there, vec_elems elements each. */
static bool cat_piece_at(const tw_kernel_data *kd, const uint8_t *meta, const cat_layout *c, uint32_t y,
                         const size_stride *os, uint32_t concat, uint64_t trailing, cat_piece *p)
{
    uint32_t s = kd->index_bytes, dims = kd->dims;
    uint64_t data = 0;
    memcpy(&data, meta + 8 * y, 8);
    p->offset = p->dim_size = p->count = p->reach = 0;
    memcpy(&p->offset, meta + c->offset_at + s * y, s);
    memcpy(&p->dim_size, meta + c->dim_at + s * y, s);
    memcpy(&p->count, meta + c->count_at + s * y, s);
    p->contiguous = kd->contiguous || meta[c->contig_at + y] != 0;
    p->strides = read_size_stride(meta + c->strides_at + (kd->stride_slots > 1 ? y : 0) * 2 * CAT_DIMS * s, s);
    p->data = (const uint8_t *)(uintptr_t)data;
    if (kd->vec_elems != 0) {
        uint64_t v = kd->vec_elems;
        if (p->count % v != 0 || p->offset * trailing % v != 0 || p->dim_size * trailing % v != 0)
            return false;
        p->offset = p->offset * trailing / v;
        p->dim_size = p->dim_size * trailing / v;
        p->count /= v;
    }
    uint64_t elements = p->dim_size;
    for (uint32_t d = 0; d < dims; d++)
        elements *= d == concat ? 1 : os->size[d];
    if (p->count == 0)
        return true;
    p->reach = p->contiguous ? p->count - 1 : cat_reach(&p->strides, dims, p->dim_size, concat);
    bool dense = dims == 1 && os->stride[0] == 1 && p->contiguous;
    return p->offset + p->dim_size <= os->size[concat] && p->count == elements && (dense || p->count <= MAX_COMPUTED) &&
           host_range(data, (p->reach + 1) * kd->elem_bytes);
}

/* Copies a piece into the output: in one piece when both sides are dense (a 1-D cat), else
 * element by element as CatArrIndexToOffset places them. */
static void cat_copy(const tw_kernel_data *kd, const cat_piece *p, uint8_t *out, const size_stride *os,
                     uint32_t concat, uint64_t dim_stride)
{
    uint32_t e = kd->elem_bytes, dims = kd->dims;
    uint8_t *dst = out + p->offset * dim_stride * e;
    settle(p->data, (p->reach + 1) * e);
    if (dims == 1 && os->stride[0] == 1 && p->contiguous) {
        memmove(dst, p->data, p->count * e);
        return;
    }
    for (uint64_t i = 0; i < p->count; i++)
        memmove(dst + cat_offset(os, dims, p->dim_size, concat, i) * e,
                p->data + (p->contiguous ? i : cat_offset(&p->strides, dims, p->dim_size, concat, i)) * e, e);
}

static void run_cat(const tw_kernel_data *kd, const tw_param_layout *l, void **args, tw_dim3 grid)
{
    cat_layout c = cat_metadata(kd);
    uint32_t s = kd->index_bytes;
    if (l->count != 5 || l->size[0] != 8 || l->size[1] != c.bytes || l->size[2] != 2 * CAT_DIMS * s ||
        l->size[3] != 4 || l->size[4] != s || grid.y < 1 || grid.y > kd->batch || args[1] == NULL || args[2] == NULL)
        return;
    /* the last parameter: dimStride, or the _vectorized variant's trailingSize (its units lie at
     * stride 1 along the concat dimension) */
    uint64_t out = param_u64(l, args, 0, 0, 8), last = param_u64(l, args, 4, 0, s);
    uint64_t dim_stride = kd->vec_elems != 0 ? 1 : last, trailing = kd->vec_elems != 0 ? last : 1;
    uint32_t concat = (uint32_t)param_u64(l, args, 3, 0, 4);
    size_stride os = read_size_stride(args[2], s);
    if (concat >= kd->dims)
        return;
    uint64_t out_bytes = (cat_reach(&os, kd->dims, os.size[concat], concat) + 1) * kd->elem_bytes;
    cat_piece pieces[CAT_MAX_BATCH];
    if (!host_range(out, out_bytes))
        return;
    for (uint32_t y = 0; y < grid.y; y++)
        if (!cat_piece_at(kd, args[1], &c, y, &os, concat, trailing, &pieces[y]))
            return;
    settle((const uint8_t *)(uintptr_t)out, out_bytes);
    for (uint32_t y = 0; y < grid.y; y++)
        if (pieces[y].count > 0)
            cat_copy(kd, &pieces[y], (uint8_t *)(uintptr_t)out, &os, concat, dim_stride);
}

/* ------------------------------------------------------------------ entry */

void tw_kernel_data_run(const tw_kernel_data *kd, const tw_param_layout *l, void **args, tw_dim3 grid, tw_dim3 block)
{
    if (l == NULL || args == NULL)
        return;
    switch (kd->op) {
    case OP_NONE: break;
    case OP_REDUCE: run_reduce(kd, l, args, block); break;
    case OP_CAT: run_cat(kd, l, args, grid); break;
    case OP_CAST: run_cast(kd, l, args); break;
    case OP_SAMPLE: run_sample(kd, l, args, grid); break;
    default: run_elementwise(kd, l, args); break;
    }
}
