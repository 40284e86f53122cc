/* Tensor maps (TMA descriptors, cuTensorMapEncode*): Hopper kernels (FlashAttention-3,
 * CUTLASS, Triton's TMA path) take a 128-byte CUtensorMap by value. No GPU reads it here, but
 * the program builds it on the host, may print or copy it, and passes it as a kernel
 * parameter, so it must be well-formed host data. The arguments are validated as the driver
 * documents them (cuda.h) and the descriptor is written in timewarp's own layout (the real
 * one is undocumented). The global address sits at opaque[1], 8-byte aligned, so the launch
 * path's scan of by-value parameters counts the tensor's bytes like any pointer. */
#include <stdint.h>
#include <string.h>

#include <cuda.h>

#include "tw_core.h"

#define TMAP_MAGIC 0x50414d5454574d54ull /* "TMWTTMAP" */

enum { TMAP_TILED = 1, TMAP_IM2COL = 2, TMAP_IM2COL_WIDE = 3 };

/* timewarp's layout of CUtensorMap.opaque (16 qwords): */
typedef struct tmap_layout {
    uint64_t magic;
    uint64_t global_address;       /* opaque[1]: found by the launch path's pointer scan */
    uint32_t global_dim_minus1[5]; /* globalDim <= 2^32 */
    uint32_t global_stride_16[4];  /* strides are multiples of 16 and < 2^40 */
    uint8_t box_minus1[5];         /* tiled: boxDim <= 256 */
    uint8_t element_stride_minus1[5];
    uint8_t kind, rank, dtype, interleave, swizzle, l2, oob, wide_mode;
    int8_t lower[3], upper[3];     /* im2col pixel box corners (wide: [0] only, clamped) */
    uint16_t channels_minus1;      /* im2col: channelsPerPixel <= 256 */
    uint16_t pixels_minus1;        /* im2col: pixelsPerColumn <= 1024 */
} tmap_layout;

_Static_assert(sizeof(tmap_layout) <= sizeof(CUtensorMap), "tensor map layout fits 128 bytes");

/* Bytes per element; packed types count their 16-value groups' storage per value (U4 as 1/2,
 * U6 as 1 byte with its gaps): returned in eighths of a byte to stay integral. */
static int elem_bits(CUtensorMapDataType t)
{
    switch (t) {
    case CU_TENSOR_MAP_DATA_TYPE_UINT8: return 8;
    case CU_TENSOR_MAP_DATA_TYPE_UINT16:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT16:
    case CU_TENSOR_MAP_DATA_TYPE_BFLOAT16: return 16;
    case CU_TENSOR_MAP_DATA_TYPE_UINT32:
    case CU_TENSOR_MAP_DATA_TYPE_INT32:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ:
    case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32:
    case CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ: return 32;
    case CU_TENSOR_MAP_DATA_TYPE_UINT64:
    case CU_TENSOR_MAP_DATA_TYPE_INT64:
    case CU_TENSOR_MAP_DATA_TYPE_FLOAT64: return 64;
    case CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN8B: return 4;
    case CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B:
    case CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B: return 8;
    default: return 0;
    }
}

static bool is_packed16(CUtensorMapDataType t)
{
    return t == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN16B || t == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B;
}

static bool is_float(CUtensorMapDataType t)
{
    return t == CU_TENSOR_MAP_DATA_TYPE_FLOAT16 || t == CU_TENSOR_MAP_DATA_TYPE_FLOAT32 ||
           t == CU_TENSOR_MAP_DATA_TYPE_FLOAT64 || t == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 ||
           t == CU_TENSOR_MAP_DATA_TYPE_FLOAT32_FTZ || t == CU_TENSOR_MAP_DATA_TYPE_TFLOAT32 ||
           t == CU_TENSOR_MAP_DATA_TYPE_TFLOAT32_FTZ;
}

static uint32_t swizzle_span(CUtensorMapSwizzle s)
{
    switch (s) {
    case CU_TENSOR_MAP_SWIZZLE_NONE: return 0;
    case CU_TENSOR_MAP_SWIZZLE_32B: return 32;
    case CU_TENSOR_MAP_SWIZZLE_64B: return 64;
    case CU_TENSOR_MAP_SWIZZLE_128B:
    case CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B:
    case CU_TENSOR_MAP_SWIZZLE_128B_ATOM_32B_FLIP_8B:
    case CU_TENSOR_MAP_SWIZZLE_128B_ATOM_64B: return 128;
    default: return UINT32_MAX;
    }
}

/* The checks shared by every encode: map alignment, type, rank, address, dims, strides,
 * element strides and the enum ranges. Logs the first violation (debug) and says which. */
static CUresult check_common(const char *api, const CUtensorMap *map, CUtensorMapDataType dtype,
                             cuuint32_t rank, uint32_t min_rank, const void *addr,
                             const cuuint64_t *dims, const cuuint64_t *strides,
                             const cuuint32_t *elem_strides, CUtensorMapInterleave interleave,
                             CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2,
                             CUtensorMapFloatOOBfill oob)
{
    const char *why = NULL;
    uint64_t a = (uint64_t)(uintptr_t)addr;
    bool align32 = interleave == CU_TENSOR_MAP_INTERLEAVE_32B || is_packed16(dtype);
    if (!map || ((uintptr_t)map & 63))
        why = "tensorMap must be 64-byte aligned";
    else if (elem_bits(dtype) == 0)
        why = "unknown tensorDataType";
    else if ((unsigned)interleave > CU_TENSOR_MAP_INTERLEAVE_32B)
        why = "unknown interleave";
    else if (rank == 0 || rank > 5 || rank < min_rank ||
             (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE && rank < 3))
        why = "tensorRank out of range";
    else if (!addr || (a & 15) || (align32 && (a & 31)))
        why = "globalAddress misaligned";
    else if (!dims || !elem_strides || (rank > 1 && !strides))
        why = "NULL array";
    else if (swizzle_span(swizzle) == UINT32_MAX)
        why = "unknown swizzle";
    else if ((unsigned)l2 > CU_TENSOR_MAP_L2_PROMOTION_L2_256B)
        why = "unknown l2Promotion";
    else if ((unsigned)oob > CU_TENSOR_MAP_FLOAT_OOB_FILL_NAN_REQUEST_ZERO_FMA ||
             (oob != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE && !is_float(dtype)))
        why = "oobFill invalid for this type";
    else if (interleave == CU_TENSOR_MAP_INTERLEAVE_32B && swizzle != CU_TENSOR_MAP_SWIZZLE_32B)
        why = "32B interleave requires 32B swizzle";
    else if (dtype == CU_TENSOR_MAP_DATA_TYPE_16U6_ALIGN16B &&
             interleave != CU_TENSOR_MAP_INTERLEAVE_NONE)
        why = "16U6 requires no interleave";
    for (uint32_t i = 0; !why && i < rank; i++) {
        if (dims[i] == 0 || dims[i] > (1ull << 32))
            why = "globalDim out of range";
        /* elementStrides[0] is ignored without interleave (cuda.h) */
        else if ((i > 0 || interleave != CU_TENSOR_MAP_INTERLEAVE_NONE) &&
                 (elem_strides[i] == 0 || elem_strides[i] > 8))
            why = "elementStrides out of range";
    }
    if (!why && is_packed16(dtype) && dims[0] % 128)
        why = "packed 16B types need globalDim[0] % 128 == 0";
    if (!why && dtype == CU_TENSOR_MAP_DATA_TYPE_16U4_ALIGN8B && dims[0] % 2)
        why = "16U4_ALIGN8B needs an even globalDim[0]";
    for (uint32_t i = 0; !why && i + 1 < rank; i++) {
        if ((strides[i] & 15) || strides[i] >= (1ull << 40) || (align32 && (strides[i] & 31)))
            why = "globalStrides must be multiples of 16 (32) below 2^40";
    }
    if (why) {
        TW_DEBUG("%s: CUDA_ERROR_INVALID_VALUE: %s", api, why);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

static void fill_common(tmap_layout *m, int kind, CUtensorMapDataType dtype, cuuint32_t rank,
                        const void *addr, const cuuint64_t *dims, const cuuint64_t *strides,
                        const cuuint32_t *elem_strides, CUtensorMapInterleave interleave,
                        CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2,
                        CUtensorMapFloatOOBfill oob)
{
    memset(m, 0, sizeof(*m));
    m->magic = TMAP_MAGIC;
    m->global_address = (uint64_t)(uintptr_t)addr;
    m->kind = (uint8_t)kind;
    m->rank = (uint8_t)rank;
    m->dtype = (uint8_t)dtype;
    m->interleave = (uint8_t)interleave;
    m->swizzle = (uint8_t)swizzle;
    m->l2 = (uint8_t)l2;
    m->oob = (uint8_t)oob;
    for (uint32_t i = 0; i < rank; i++) {
        m->global_dim_minus1[i] = (uint32_t)(dims[i] - 1);
        m->element_stride_minus1[i] = (uint8_t)(elem_strides[i] ? (elem_strides[i] - 1) & 7 : 0);
    }
    for (uint32_t i = 0; i + 1 < rank; i++)
        m->global_stride_16[i] = (uint32_t)(strides[i] >> 4);
}

static void store(CUtensorMap *map, const tmap_layout *m)
{
    memset(map, 0, sizeof(*map));
    memcpy(map, m, sizeof(*m));
}

/* Inner-dimension bytes of a box against the interleave and swizzle rules. */
static const char *check_inner(CUtensorMapDataType dtype, uint64_t inner_elems,
                               CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle)
{
    uint64_t inner_bytes = inner_elems * (uint64_t)elem_bits(dtype) / 8;
    if (interleave == CU_TENSOR_MAP_INTERLEAVE_NONE) {
        if ((inner_elems * (uint64_t)elem_bits(dtype)) % 128)
            return "box inner dimension must be a multiple of 16 bytes";
        uint32_t span = swizzle_span(swizzle);
        if (span && inner_bytes > span)
            return "box inner dimension exceeds the swizzle span";
    }
    return NULL;
}

TW_EXPORT CUresult cuTensorMapEncodeTiled(CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType,
                                          cuuint32_t tensorRank, void *globalAddress,
                                          const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
                                          const cuuint32_t *boxDim, const cuuint32_t *elementStrides,
                                          CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                                          CUtensorMapL2promotion l2Promotion,
                                          CUtensorMapFloatOOBfill oobFill)
{
    CUresult r = check_common("cuTensorMapEncodeTiled", tensorMap, tensorDataType, tensorRank, 1,
                              globalAddress, globalDim, globalStrides, elementStrides, interleave,
                              swizzle, l2Promotion, oobFill);
    if (r != CUDA_SUCCESS)
        return r;
    const char *why = NULL;
    if (!boxDim)
        why = "NULL boxDim";
    for (uint32_t i = 0; !why && i < tensorRank; i++)
        if (boxDim[i] == 0 || boxDim[i] > 256)
            why = "boxDim out of range";
    if (!why && is_packed16(tensorDataType) && boxDim[0] != 128)
        why = "packed 16B types need boxDim[0] == 128";
    if (!why)
        why = check_inner(tensorDataType, boxDim[0], interleave, swizzle);
    if (why) {
        TW_DEBUG("cuTensorMapEncodeTiled: CUDA_ERROR_INVALID_VALUE: %s", why);
        return CUDA_ERROR_INVALID_VALUE;
    }
    tmap_layout m;
    fill_common(&m, TMAP_TILED, tensorDataType, tensorRank, globalAddress, globalDim, globalStrides,
                elementStrides, interleave, swizzle, l2Promotion, oobFill);
    for (uint32_t i = 0; i < tensorRank; i++)
        m.box_minus1[i] = (uint8_t)(boxDim[i] - 1);
    store(tensorMap, &m);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuTensorMapEncodeIm2col(CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType,
                                           cuuint32_t tensorRank, void *globalAddress,
                                           const cuuint64_t *globalDim, const cuuint64_t *globalStrides,
                                           const int *pixelBoxLowerCorner, const int *pixelBoxUpperCorner,
                                           cuuint32_t channelsPerPixel, cuuint32_t pixelsPerColumn,
                                           const cuuint32_t *elementStrides,
                                           CUtensorMapInterleave interleave, CUtensorMapSwizzle swizzle,
                                           CUtensorMapL2promotion l2Promotion,
                                           CUtensorMapFloatOOBfill oobFill)
{
    CUresult r = check_common("cuTensorMapEncodeIm2col", tensorMap, tensorDataType, tensorRank, 3,
                              globalAddress, globalDim, globalStrides, elementStrides, interleave,
                              swizzle, l2Promotion, oobFill);
    if (r != CUDA_SUCCESS)
        return r;
    /* Corner ranges shrink with the rank: 16, 8 and 5 bits for 3, 4 and 5 dimensions. */
    int bits = tensorRank == 3 ? 16 : tensorRank == 4 ? 8 : 5;
    int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
    const char *why = NULL;
    if (!pixelBoxLowerCorner || !pixelBoxUpperCorner)
        why = "NULL pixel box corner";
    for (uint32_t i = 0; !why && i + 2 < tensorRank; i++)
        if (pixelBoxLowerCorner[i] < lo || pixelBoxLowerCorner[i] > hi ||
            pixelBoxUpperCorner[i] < lo || pixelBoxUpperCorner[i] > hi)
            why = "pixel box corner out of range";
    if (!why && (channelsPerPixel == 0 || channelsPerPixel > 256))
        why = "channelsPerPixel out of range";
    if (!why && (pixelsPerColumn == 0 || pixelsPerColumn > 1024))
        why = "pixelsPerColumn out of range";
    if (!why)
        why = check_inner(tensorDataType, channelsPerPixel, interleave, swizzle);
    if (why) {
        TW_DEBUG("cuTensorMapEncodeIm2col: CUDA_ERROR_INVALID_VALUE: %s", why);
        return CUDA_ERROR_INVALID_VALUE;
    }
    tmap_layout m;
    fill_common(&m, TMAP_IM2COL, tensorDataType, tensorRank, globalAddress, globalDim, globalStrides,
                elementStrides, interleave, swizzle, l2Promotion, oobFill);
    for (uint32_t i = 0; i + 2 < tensorRank; i++) {
        /* int8 keeps the 5- and 8-bit ranges exactly; 3-D corners are clamped (host data only) */
        int l = pixelBoxLowerCorner[i], u = pixelBoxUpperCorner[i];
        m.lower[i] = (int8_t)(l < -128 ? -128 : l > 127 ? 127 : l);
        m.upper[i] = (int8_t)(u < -128 ? -128 : u > 127 ? 127 : u);
    }
    m.channels_minus1 = (uint16_t)(channelsPerPixel - 1);
    m.pixels_minus1 = (uint16_t)(pixelsPerColumn - 1);
    store(tensorMap, &m);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuTensorMapEncodeIm2colWide(CUtensorMap *tensorMap, CUtensorMapDataType tensorDataType,
                                               cuuint32_t tensorRank, void *globalAddress,
                                               const cuuint64_t *globalDim,
                                               const cuuint64_t *globalStrides,
                                               int pixelBoxLowerCornerWidth, int pixelBoxUpperCornerWidth,
                                               cuuint32_t channelsPerPixel, cuuint32_t pixelsPerColumn,
                                               const cuuint32_t *elementStrides,
                                               CUtensorMapInterleave interleave,
                                               CUtensorMapIm2ColWideMode mode, CUtensorMapSwizzle swizzle,
                                               CUtensorMapL2promotion l2Promotion,
                                               CUtensorMapFloatOOBfill oobFill)
{
    CUresult r = check_common("cuTensorMapEncodeIm2colWide", tensorMap, tensorDataType, tensorRank, 3,
                              globalAddress, globalDim, globalStrides, elementStrides, interleave,
                              swizzle, l2Promotion, oobFill);
    if (r != CUDA_SUCCESS)
        return r;
    const char *why = NULL;
    if ((unsigned)mode > CU_TENSOR_MAP_IM2COL_WIDE_MODE_W128)
        why = "unknown wide mode";
    else if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE)
        why = "wide im2col requires no interleave";
    else if (pixelBoxLowerCornerWidth < -32768 || pixelBoxLowerCornerWidth > 32767 ||
             pixelBoxUpperCornerWidth < -32768 || pixelBoxUpperCornerWidth > 32767)
        why = "pixel box width corner out of range";
    else if (channelsPerPixel == 0 || channelsPerPixel > 256)
        why = "channelsPerPixel out of range";
    else if (pixelsPerColumn == 0 || pixelsPerColumn > 1024)
        why = "pixelsPerColumn out of range";
    else
        why = check_inner(tensorDataType, channelsPerPixel, interleave, swizzle);
    if (why) {
        TW_DEBUG("cuTensorMapEncodeIm2colWide: CUDA_ERROR_INVALID_VALUE: %s", why);
        return CUDA_ERROR_INVALID_VALUE;
    }
    tmap_layout m;
    fill_common(&m, TMAP_IM2COL_WIDE, tensorDataType, tensorRank, globalAddress, globalDim,
                globalStrides, elementStrides, interleave, swizzle, l2Promotion, oobFill);
    int l = pixelBoxLowerCornerWidth, u = pixelBoxUpperCornerWidth;
    m.lower[0] = (int8_t)(l < -128 ? -128 : l > 127 ? 127 : l);
    m.upper[0] = (int8_t)(u < -128 ? -128 : u > 127 ? 127 : u);
    m.wide_mode = (uint8_t)mode;
    m.channels_minus1 = (uint16_t)(channelsPerPixel - 1);
    m.pixels_minus1 = (uint16_t)(pixelsPerColumn - 1);
    store(tensorMap, &m);
    return CUDA_SUCCESS;
}

TW_EXPORT CUresult cuTensorMapReplaceAddress(CUtensorMap *tensorMap, void *globalAddress)
{
    if (!tensorMap || ((uintptr_t)tensorMap & 63))
        return CUDA_ERROR_INVALID_VALUE;
    tmap_layout m;
    memcpy(&m, tensorMap, sizeof(m));
    uint64_t a = (uint64_t)(uintptr_t)globalAddress;
    bool align32 = m.interleave == CU_TENSOR_MAP_INTERLEAVE_32B ||
                   is_packed16((CUtensorMapDataType)m.dtype);
    /* only maps this shim encoded can be edited; the address keeps the encode's alignment rule */
    if (m.magic != TMAP_MAGIC || !globalAddress || (a & 15) || (align32 && (a & 31)))
        return CUDA_ERROR_INVALID_VALUE;
    m.global_address = a;
    memcpy(tensorMap, &m, sizeof(m));
    return CUDA_SUCCESS;
}
