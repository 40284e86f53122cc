/* Host evaluation of a few simple torch kernels whose buffers are all host-backed
 * (kernel_data.c): fills, copies and casts, additions, products, comparisons, concatenations
 * and small reductions, so values a program reads back (`.item()`, sizes that
 * torch.distributed's object collectives compute on the GPU) are right; and a valid index (0)
 * from the argmax/argmin and sampling kernels whose inputs are too large to rank here, so a
 * sampled token id is always in the vocabulary. Every other kernel's outputs keep what they held. */
#ifndef TW_KERNEL_DATA_H
#define TW_KERNEL_DATA_H

#include "tw_core.h"

/* What the kernel's name says, parsed once per kernel; op 0 = never evaluated. */
typedef struct tw_kernel_data {
    uint8_t op;            /* enum in kernel_data.c */
    uint8_t fn;            /* the binary function inside a functor wrapper (enum in kernel_data.c) */
    uint8_t in_type;       /* element types (enum in kernel_data.c): the inputs */
    uint8_t out_type;      /* the output */
    uint8_t math_type;     /* the functor's scalars and arithmetic (torch's opmath / accumulator) */
    uint8_t operands;      /* pointers in the element-wise std::array<char*, K> */
    uint8_t elem_bytes;    /* cat: bytes per element copied (the _vectorized variant: per unit) */
    uint8_t index_bytes;   /* cat: bytes of its index type */
    uint8_t dims;          /* cat: tensor dimensions */
    uint8_t contiguous;    /* cat: the variant reads every input as contiguous */
    uint8_t vec_elems;     /* cat, _vectorized variant: elements per 16-byte unit it copies (else 0) */
    uint16_t batch;        /* cat: inputs per launch (metadata slots) */
    uint16_t stride_slots; /* cat: size/stride records in the metadata */
    uint8_t out_param;     /* sampling: the parameter holding the output pointer */
    uint8_t out_valid;     /* sampling: a `bool* valid` parameter follows it */
} tw_kernel_data;

/* Parses the (mangled) name; leaves op 0 for anything not evaluated. */
void tw_kernel_data_init(const char *mangled, tw_kernel_data *out);

/* Writes the outputs of one launch of a recognised kernel into host-backed memory, when every
 * buffer it touches is host-backed and its arguments validate; otherwise does nothing. Called
 * at issue, outside the timeline lock: a collective's pending result it reads or overwrites is
 * written first (that may wait for the peers' data). */
void tw_kernel_data_run(const tw_kernel_data *kd, const tw_param_layout *layout, void **args, tw_dim3 grid,
                        tw_dim3 block);

#endif
