/* Kernel families whose arguments say what a launch reads, writes and computes
 * (kernel_shapes.c): FlashAttention 2 and 3, torch's memory-efficient attention, softmax,
 * normalisation, reductions, TensorIterator element-wise kernels, cat, gather, the
 * multi-tensor (optimizer) kernels and the all-reduce kernels that work through peers' memory
 * (kernel_shapes_comm.c). Everything else keeps the generic estimate of launch.c. */
#ifndef TW_KERNEL_SHAPES_H
#define TW_KERNEL_SHAPES_H

#include "tw_core.h"

#define TW_TENSOR_LISTS_MAX 5

/* torch's multi_tensor_apply_kernel<Metadata, Functor, ...>: which metadata struct carries the
 * tensor lists and what the functor does with each list, per element (kernel_shapes.c). */
typedef struct tw_tensor_lists {
    uint8_t layout;                   /* enum in kernel_shapes.c: plain, scalar list, fused optimizer */
    uint8_t depth;                    /* lists in the metadata, 1..TW_TENSOR_LISTS_MAX */
    uint8_t scalar_bytes;             /* scalar-list metadata: bytes of one scalar value */
    uint8_t read_mask;                /* bit i: every element of list i is read */
    uint8_t write_mask;               /* bit i: every element of list i is written */
    uint8_t scaled_write_mask;        /* written only when the grad-scale pointer is not null */
    uint8_t block_out_bytes;          /* reductions: the one partial result each block writes */
    uint8_t elem_bytes[TW_TENSOR_LISTS_MAX]; /* element size of each list */
} tw_tensor_lists;

/* What the kernel's name says, parsed once per kernel. */
typedef struct tw_kernel_shape {
    uint16_t family;                  /* enum in kernel_shapes.c; 0 = generic */
    uint16_t rule;                    /* row-rule index for row-wise families */
    uint8_t dtype;                    /* enum tw_dtype of the inputs, when the name says */
    uint8_t causal;                   /* template argument Is_causal (FlashAttention 3) */
    uint8_t local;                    /* template argument Is_local (FlashAttention 3) */
    uint8_t name_elem_bytes;          /* widest scalar type named in the template arguments */
    uint16_t head_dim, head_dim_v;    /* from the tile shape (FlashAttention 3) */
    uint16_t block_m;                 /* queries per CTA (memory-efficient attention) */
    uint16_t batch_slots;             /* cat: inputs per launch */
    uint8_t index_bytes;              /* cat: size of its index type */
    uint8_t operands;                 /* element-wise: pointers in its std::array, else
                                         (strided kernel) its lambda's arity + 1 */
    bool operand_array;               /* element-wise: operands come as std::array<char*, K> */
    uint8_t array_elem_bytes[2];      /* element-wise, 2 operands of other sizes: out, in (float to
                                         half or bfloat16: 2, 4); 0: the kernel's element size */
    bool cast_params;                 /* element-wise: LoadWithCast<1>/StoreWithCast<1> parameters
                                         give the operands' element sizes at launch */
    uint8_t pointer_params;           /* top-level parameters that are pointers */
    uint64_t written_params;          /* bit i: parameter i points to non-const data */
    uint64_t int_params;              /* bit i: parameter i is an integer (a possible count) */
    uint8_t elem_bytes[TW_MAX_PARAMS];   /* pointee size of each pointer parameter, 0 unknown */
    tw_tensor_lists lists;            /* multi-tensor kernels */
    uint8_t comm_ranks;               /* peer all-reduce kernels: the ranks their template names */
    bool pointer_tables;              /* a parameter may be a table of pointers (a T** parameter, or
                                         a peer all-reduce kernel's workspace): launch.c looks one
                                         level into it for peers' memory */
} tw_kernel_shape;

/* The demangled name (malloc'd: the caller frees it), NULL for an extern "C" name. */
char *tw_kernel_demangle(const char *mangled);

/* Parses the (mangled) name: the family, template facts and the parameter types. */
void tw_kernel_shape_init(const char *mangled, tw_kernel_shape *out);

/* Whether launches of this family are described from argument contents that the launch's
 * parameter hash does not see (by-value structs, lengths in device buffers): those launches
 * are described every time instead of being cached by shape. */
bool tw_kernel_shape_by_content(const tw_kernel_shape *shape);

/* Describes one launch from its arguments. On success `desc` carries bytes (and flops; the
 * attention families turn it into TW_OP_ATTENTION with its dims) and true is returned; on
 * false (unknown family, arguments that do not validate) `desc` is left as it was. */
bool tw_kernel_shape_describe(const tw_kernel_shape *shape, const tw_param_layout *layout, void **args,
                              tw_desc *desc);

/* kernel_shapes_comm.c: all-reduce kernels through peers' memory (vLLM custom, FlashInfer
 * TensorRT-LLM fusion). parse: whether the demangled name is one (then shape->rule and
 * comm_ranks say which); describe: the launch as a TW_OP_COLLECTIVE all-reduce (a local kernel of
 * that family, such as the MNNVL two-shot norm, by its bytes). */
bool tw_comm_kernel_parse(const char *text, size_t param_open, tw_kernel_shape *out);
bool tw_comm_kernel_describe(const tw_kernel_shape *shape, const tw_param_layout *l, void **args, tw_desc *desc);

#endif
