/* Element-wise reductions in NCCL's data types, for collectives whose buffers are host-backed
 * (small control tensors, torch.distributed's object collectives, barrier values): the result
 * must be what NCCL would have computed. Floating types are reduced in double and rounded back
 * to their storage format (round to nearest even), integers in 64-bit integer arithmetic with
 * the wrap-around of their width. Types follow nccl.h's ncclDataType_t numbering, operators
 * ncclRedOp_t's (sum, prod, max, min, avg; a pre-multiplied sum arrives as sum with a scale). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "tw_core.h"

enum { DT_I8 = 0, DT_U8, DT_I32, DT_U32, DT_I64, DT_U64, DT_F16, DT_F32, DT_F64, DT_BF16, DT_F8E4M3,
       DT_F8E5M2, DT_COUNT };
enum { OP_SUM = 0, OP_PROD, OP_MAX, OP_MIN, OP_AVG };

size_t tw_nccl_dtype_bytes(int dtype)
{
    static const uint8_t sizes[DT_COUNT] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2, 1, 1};
    return dtype >= 0 && dtype < DT_COUNT ? sizes[dtype] : 0;
}

static bool is_float(int dtype)
{
    return dtype == DT_F16 || dtype == DT_F32 || dtype == DT_F64 || dtype == DT_BF16 || dtype == DT_F8E4M3 ||
           dtype == DT_F8E5M2;
}

/* ---- small floats: IEEE binary16, bfloat16 and the two OCP FP8 formats ---- */

/* A value encoded with `exp_bits` exponent and `man_bits` mantissa bits (bias 2^(e-1)-1). */
static double decode_minifloat(uint32_t bits, int exp_bits, int man_bits, bool has_inf)
{
    uint32_t sign = bits >> (exp_bits + man_bits) & 1u;
    uint32_t exponent = bits >> man_bits & ((1u << exp_bits) - 1u);
    uint32_t mantissa = bits & ((1u << man_bits) - 1u);
    int bias = (1 << (exp_bits - 1)) - 1;
    double value;
    if (exponent == 0)
        value = ldexp((double)mantissa, 1 - bias - man_bits);
    else if (exponent == (1u << exp_bits) - 1u && has_inf)
        value = mantissa ? NAN : INFINITY;
    else if (!has_inf && exponent == (1u << exp_bits) - 1u && mantissa == (1u << man_bits) - 1u)
        value = NAN;   /* e4m3: S.1111.111 is the only NaN, the rest of the top binade is finite */
    else
        value = ldexp((double)(mantissa | 1u << man_bits), (int)exponent - bias - man_bits);
    return sign ? -value : value;
}

static uint32_t encode_minifloat(double value, int exp_bits, int man_bits, bool has_inf)
{
    uint32_t sign = signbit(value) ? 1u << (exp_bits + man_bits) : 0u;
    uint32_t all_exp = (1u << exp_bits) - 1u;
    if (isnan(value))
        return sign | all_exp << man_bits | ((1u << man_bits) - 1u);
    double magnitude = fabs(value);
    int bias = (1 << (exp_bits - 1)) - 1;
    /* the largest finite: e4m3 keeps the top binade except its NaN pattern */
    double max_finite = has_inf ? ldexp(2.0 - ldexp(1.0, -man_bits), (int)all_exp - 1 - bias)
                                : ldexp(2.0 - ldexp(2.0, -man_bits), (int)all_exp - bias);
    if (magnitude > max_finite)   /* NCCL saturates nothing: overflow gives inf (or NaN for e4m3) */
        return has_inf ? sign | all_exp << man_bits : sign | all_exp << man_bits | ((1u << man_bits) - 1u);
    int exponent;
    double fraction = frexp(magnitude, &exponent);   /* magnitude = fraction * 2^exponent, [0.5, 1) */
    int biased = exponent - 1 + bias;
    uint32_t mantissa;
    if (magnitude == 0.0)
        return sign;
    if (biased <= 0) {   /* subnormal: a fixed quantum of 2^(1-bias-man_bits) */
        double quanta = nearbyint(ldexp(magnitude, bias - 1 + man_bits));
        return sign | (uint32_t)quanta;   /* rounding up to the smallest normal carries into the exponent */
    }
    double scaled = nearbyint(ldexp(fraction * 2.0 - 1.0, man_bits));
    mantissa = (uint32_t)scaled;
    if (mantissa == 1u << man_bits) {   /* rounded up to the next binade */
        mantissa = 0;
        biased++;
    }
    if (biased >= (int)all_exp + (has_inf ? 0 : 1))
        return has_inf ? sign | all_exp << man_bits : sign | all_exp << man_bits | ((1u << man_bits) - 1u);
    return sign | (uint32_t)biased << man_bits | mantissa;
}

static double load_float(const uint8_t *p, int dtype)
{
    switch (dtype) {
    case DT_F32: { float f; memcpy(&f, p, 4); return f; }
    case DT_F64: { double d; memcpy(&d, p, 8); return d; }
    case DT_F16: { uint16_t h; memcpy(&h, p, 2); return decode_minifloat(h, 5, 10, true); }
    case DT_BF16: { uint16_t h; memcpy(&h, p, 2); uint32_t w = (uint32_t)h << 16; float f; memcpy(&f, &w, 4); return f; }
    case DT_F8E4M3: return decode_minifloat(*p, 4, 3, false);
    case DT_F8E5M2: return decode_minifloat(*p, 5, 2, true);
    default: return 0.0;
    }
}

static void store_float(uint8_t *p, int dtype, double value)
{
    switch (dtype) {
    case DT_F32: { float f = (float)value; memcpy(p, &f, 4); break; }
    case DT_F64: memcpy(p, &value, 8); break;
    case DT_F16: { uint16_t h = (uint16_t)encode_minifloat(value, 5, 10, true); memcpy(p, &h, 2); break; }
    case DT_BF16: { uint16_t h = (uint16_t)encode_minifloat(value, 8, 7, true); memcpy(p, &h, 2); break; }
    case DT_F8E4M3: *p = (uint8_t)encode_minifloat(value, 4, 3, false); break;
    case DT_F8E5M2: *p = (uint8_t)encode_minifloat(value, 5, 2, true); break;
    default: break;
    }
}

static int64_t load_int(const uint8_t *p, int dtype)
{
    switch (dtype) {
    case DT_I8: return (int8_t)*p;
    case DT_U8: return *p;
    case DT_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case DT_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case DT_I64: case DT_U64: { int64_t v; memcpy(&v, p, 8); return v; }
    default: return 0;
    }
}

static void store_int(uint8_t *p, int dtype, int64_t value)
{
    switch (dtype) {
    case DT_I8: case DT_U8: *p = (uint8_t)value; break;
    case DT_I32: case DT_U32: { uint32_t v = (uint32_t)value; memcpy(p, &v, 4); break; }
    case DT_I64: case DT_U64: memcpy(p, &value, 8); break;
    default: break;
    }
}

static bool is_unsigned(int dtype)
{
    return dtype == DT_U8 || dtype == DT_U32 || dtype == DT_U64;
}

static int64_t combine_int(int64_t a, int64_t b, int op, bool unsigned_type)
{
    switch (op) {
    case OP_PROD: return (int64_t)((uint64_t)a * (uint64_t)b);
    case OP_MAX: return unsigned_type ? ((uint64_t)a > (uint64_t)b ? a : b) : (a > b ? a : b);
    case OP_MIN: return unsigned_type ? ((uint64_t)a < (uint64_t)b ? a : b) : (a < b ? a : b);
    default: return (int64_t)((uint64_t)a + (uint64_t)b);   /* sum, avg */
    }
}

static double combine_float(double a, double b, int op)
{
    switch (op) {
    case OP_PROD: return a * b;
    case OP_MAX: return isnan(a) || isnan(b) ? NAN : (a > b ? a : b);
    case OP_MIN: return isnan(a) || isnan(b) ? NAN : (a < b ? a : b);
    default: return a + b;
    }
}

/* out[i] = op over k of inputs[k][i] (each input `count` elements of dtype); avg divides by
 * the number of inputs; scales (a pre-multiplied sum; NULL = none) multiply each input first. */
void tw_reduce(int dtype, int op, const double *scales, void *out, const void *const *inputs, int input_count,
               uint64_t count)
{
    size_t width = tw_nccl_dtype_bytes(dtype);
    if (width == 0 || input_count <= 0)
        return;
    uint8_t *dst = out;
    for (uint64_t i = 0; i < count; i++) {
        const uint64_t at = i * width;
        if (is_float(dtype)) {
            double acc = load_float((const uint8_t *)inputs[0] + at, dtype) * (scales ? scales[0] : 1.0);
            for (int k = 1; k < input_count; k++)
                acc = combine_float(acc, load_float((const uint8_t *)inputs[k] + at, dtype) * (scales ? scales[k] : 1.0),
                                    op);
            if (op == OP_AVG)
                acc /= input_count;
            store_float(dst + at, dtype, acc);
        } else {
            int64_t acc = load_int((const uint8_t *)inputs[0] + at, dtype);
            if (scales != NULL)
                acc = (int64_t)((double)acc * scales[0]);
            for (int k = 1; k < input_count; k++) {
                int64_t v = load_int((const uint8_t *)inputs[k] + at, dtype);
                if (scales != NULL)
                    v = (int64_t)((double)v * scales[k]);
                acc = combine_int(acc, v, op, is_unsigned(dtype));
            }
            if (op == OP_AVG)
                acc = is_unsigned(dtype) ? (int64_t)((uint64_t)acc / (uint64_t)input_count) : acc / input_count;
            store_int(dst + at, dtype, acc);
        }
    }
}

/* A host scalar of dtype as a double (ncclRedOpCreatePreMulSum's scalar). */
double tw_nccl_scalar(const void *p, int dtype)
{
    return is_float(dtype) ? load_float(p, dtype) : (double)load_int(p, dtype);
}

/* Stores a double as a host scalar of dtype (floats round to nearest even, integers wrap). */
void tw_nccl_store_scalar(void *p, int dtype, double value)
{
    if (is_float(dtype))
        store_float(p, dtype, value);
    else
        store_int(p, dtype, (int64_t)value);
}
