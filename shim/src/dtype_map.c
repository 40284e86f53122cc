/* Vendor element-type enums -> enum tw_dtype. */
#include "dtype_map.h"

#include <cublas_api.h>
#include <cudnn_graph.h>
#include <library_types.h>

#include "timewarp/records.h"

uint32_t tw_dtype_from_cuda(int cuda_data_type)
{
    switch ((cudaDataType)cuda_data_type) {
    case CUDA_R_64F: return TW_DT_F64;
    case CUDA_R_32F: return TW_DT_F32;
    case CUDA_R_16F: return TW_DT_F16;
    case CUDA_R_16BF: return TW_DT_BF16;
    case CUDA_R_8F_E4M3: return TW_DT_F8E4M3;
    case CUDA_R_8F_E5M2: return TW_DT_F8E5M2;
    case CUDA_R_8I: case CUDA_R_8U: return TW_DT_I8;
    case CUDA_R_32I: case CUDA_R_32U: return TW_DT_I32;
    case CUDA_R_64I: case CUDA_R_64U: return TW_DT_I64;
    case CUDA_C_32F: return TW_DT_C64;
    case CUDA_C_64F: return TW_DT_C128;
    case CUDA_R_4F_E2M1: return TW_DT_F4;
    default: return TW_DT_UNKNOWN;
    }
}

uint32_t tw_dtype_from_cublas_compute(int compute_type)
{
    if (compute_type < CUBLAS_COMPUTE_16F)
        return tw_dtype_from_cuda(compute_type);
    switch ((cublasComputeType_t)compute_type) {
    case CUBLAS_COMPUTE_16F: case CUBLAS_COMPUTE_16F_PEDANTIC: return TW_DT_F16;
    case CUBLAS_COMPUTE_32F: case CUBLAS_COMPUTE_32F_PEDANTIC: return TW_DT_F32;
    case CUBLAS_COMPUTE_32F_EMULATED_16BFX9: return TW_DT_F32;
    /* the FAST modes let the tensor cores run at the narrower type: that sets the speed */
    case CUBLAS_COMPUTE_32F_FAST_16F: return TW_DT_F16;
    case CUBLAS_COMPUTE_32F_FAST_16BF: return TW_DT_BF16;
    case CUBLAS_COMPUTE_32F_FAST_TF32: return TW_DT_TF32;
    case CUBLAS_COMPUTE_64F: case CUBLAS_COMPUTE_64F_PEDANTIC:
    case CUBLAS_COMPUTE_64F_EMULATED_FIXEDPOINT: return TW_DT_F64;
    case CUBLAS_COMPUTE_32I: case CUBLAS_COMPUTE_32I_PEDANTIC: return TW_DT_I32;
    default: return TW_DT_UNKNOWN;
    }
}

uint32_t tw_dtype_from_cudnn(int cudnn_data_type)
{
    switch ((cudnnDataType_t)cudnn_data_type) {
    case CUDNN_DATA_FLOAT: return TW_DT_F32;
    case CUDNN_DATA_DOUBLE: return TW_DT_F64;
    case CUDNN_DATA_HALF: return TW_DT_F16;
    case CUDNN_DATA_BFLOAT16: return TW_DT_BF16;
    case CUDNN_DATA_INT8: case CUDNN_DATA_UINT8: case CUDNN_DATA_BOOLEAN: return TW_DT_I8;
    case CUDNN_DATA_INT32: case CUDNN_DATA_UINT32: return TW_DT_I32;
    case CUDNN_DATA_INT64: return TW_DT_I64;
    case CUDNN_DATA_FP8_E4M3: return TW_DT_F8E4M3;
    case CUDNN_DATA_FP8_E5M2: return TW_DT_F8E5M2;
    case CUDNN_DATA_FAST_FLOAT_FOR_FP8: return TW_DT_F32;
    case CUDNN_DATA_FP4_E2M1: return TW_DT_F4;
    case CUDNN_DATA_COMPLEX_FP32: return TW_DT_C64;
    case CUDNN_DATA_COMPLEX_FP64: return TW_DT_C128;
    default: return TW_DT_UNKNOWN;
    }
}

uint32_t tw_dtype_bytes(uint32_t dtype)
{
    switch (dtype) {
    case TW_DT_F64: case TW_DT_I64: case TW_DT_C64: return 8;
    case TW_DT_C128: return 16;
    case TW_DT_F32: case TW_DT_TF32: case TW_DT_I32: return 4;
    case TW_DT_F16: case TW_DT_BF16: return 2;
    case TW_DT_F8E4M3: case TW_DT_F8E5M2: case TW_DT_I8: case TW_DT_F4: return 1;
    default: return 0;
    }
}
