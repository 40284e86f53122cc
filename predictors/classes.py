"""The class of an operation: which physics bounds it and which efficiency it reaches.

Classes group operations that are limited by the same resource in the same way, so that an
efficiency measured on some of them (and some GPUs) carries to the others:

    gemm, gemm_skinny (at most 16 rows or columns: reading the weights bounds it), conv,
    attention_prefill, attention_decode (one query per sequence: reading the KV cache bounds
    it), attention_bwd, elementwise, reduce, norm, softmax, copy (memcpy D2D, cat, transpose),
    gather (gather, scatter, index, embedding: rows at data-dependent addresses), optimizer
    (multi-tensor kernels), memset, kernel (anything else),
    and the ones the efficiency model does not cover: host_copy, collective, other.
"""

from __future__ import annotations

import functools
import re

from predictors.descriptors import (
    AttentionDesc,
    CollectiveDesc,
    ConvDesc,
    CopyDesc,
    CopyKind,
    Descriptor,
    GemmDesc,
    KernelDesc,
    MemsetDesc,
    demangle,
)

GEMM_CLASSES = ("gemm", "gemm_skinny", "conv")
ATTENTION_CLASSES = ("attention_prefill", "attention_decode", "attention_bwd")
MEMORY_CLASSES = ("elementwise", "reduce", "norm", "softmax", "copy", "gather", "optimizer", "memset", "kernel")
MODELLED = GEMM_CLASSES + ATTENTION_CLASSES + MEMORY_CLASSES
SKINNY_ROWS = 16

# Kernel names -> class, first match wins. Words from the demangled names of torch, vLLM,
# SGLang and Triton (Inductor: triton_poi_ pointwise, triton_red_/triton_per_ reductions).
_KERNEL_WORDS: tuple[tuple[str, str], ...] = (
    ("softmax", r"softmax"),
    ("norm", r"layer_?norm|rms_?norm|group_?norm|batch_?norm|gammabeta|rowwisemoments|_norm_kernel"),
    ("optimizer", r"multi_tensor_apply|adam|foreach|fused_sgd|lamb"),
    ("reduce", r"reduce_kernel|triton_red_|triton_per_|\breduce|argmax|argmin|cumsum|scan|topk|sort"),
    ("gather", r"gather|scatter|index|embedding|reshape_and_cache"),
    ("copy", r"catarray|\bcat\b|copy|transpose|contiguous|permute|concat"),
    ("elementwise", r"elementwise|triton_poi_|pointwise|fill|activation|act_and_mul|silu|gelu|rotary|"
                    r"dropout|distribution|where|clamp"),
)


@functools.lru_cache(maxsize=65536)
def kernel_name_class(name: str) -> str:
    text = demangle(name).lower()
    for cls, pattern in _KERNEL_WORDS:
        if re.search(pattern, text):
            return cls
    return "kernel"


def op_class(desc: Descriptor) -> str:
    """The class of a descriptor (module docstring)."""
    if isinstance(desc, GemmDesc):
        return "gemm_skinny" if min(desc.m, desc.n) <= SKINNY_ROWS else "gemm"
    if isinstance(desc, ConvDesc):
        return "conv"
    if isinstance(desc, AttentionDesc):
        if desc.backward:
            return "attention_bwd"
        return "attention_decode" if desc.decode else "attention_prefill"
    if isinstance(desc, KernelDesc):
        return kernel_name_class(desc.name)
    if isinstance(desc, CopyDesc):
        return "copy" if desc.copy_kind == CopyKind.D2D else "host_copy"
    if isinstance(desc, MemsetDesc):
        return "memset"
    if isinstance(desc, CollectiveDesc):
        return "collective"
    return "other"
