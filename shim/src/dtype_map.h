/* Vendor element-type enums -> enum tw_dtype (records.h). One place for every library's
 * numbering, so descriptors that predictors see never carry a vendor enum. */
#ifndef TW_DTYPE_MAP_H
#define TW_DTYPE_MAP_H

#include <stdint.h>

/* cudaDataType_t (library_types.h): cuBLAS, cuBLASLt, cuFFT Xt, cuSOLVER X API. */
uint32_t tw_dtype_from_cuda(int cuda_data_type);
/* cublasComputeType_t; values below 64 are taken as a legacy cudaDataType_t. */
uint32_t tw_dtype_from_cublas_compute(int compute_type);
/* cudnnDataType_t (cudnn_graph.h). */
uint32_t tw_dtype_from_cudnn(int cudnn_data_type);
/* Bytes per element of a tw_dtype (F4 rounds up to 1); 0 when unknown. */
uint32_t tw_dtype_bytes(uint32_t dtype);

#endif
