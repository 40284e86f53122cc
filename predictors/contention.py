"""What a prediction tells the timeline about sharing its GPU (docs/collectives.md, "Communication
beside computation").

The prediction reply's `contention` word (records.h `tw_prediction`):
- a collective: the share of the GPU's SMs its CTAs hold (per mille, bits 0-15) and the share of
  HBM bandwidth its copies and reductions take (per mille, bits 16-30);
- any other op: bit 31 when it is bound by memory bandwidth rather than by math, which decides
  which of the two shares slows it down when it runs beside a collective.
"""

from __future__ import annotations

from predictors import collectives
from predictors.catalog import GpuSpec
from predictors.descriptors import (
    AttentionDesc,
    CollectiveDesc,
    ConvDesc,
    Descriptor,
    GemmDesc,
    KernelDesc,
    peak_class,
)

MEMORY_BOUND = 1 << 31
_SHARE_MASK = 0xFFFF
# Generic kernels do their math on the CUDA cores at about half the fp32 peak (the roofline's rule).
_GENERIC_MATH_EFFICIENCY = 0.5


def memory_bound(spec: GpuSpec, desc: Descriptor) -> bool:
    """Whether the op's bytes over HBM bandwidth take longer than its math at the catalog peak."""
    if isinstance(desc, GemmDesc):
        flops, nbytes, peak = desc.flop_count(), desc.byte_count(), spec.peak_flops(peak_class(desc.dtype_a, desc.dtype_compute))
    elif isinstance(desc, ConvDesc):
        flops, nbytes, peak = desc.flop_count(), desc.byte_count(), spec.peak_flops(peak_class(desc.dtype, desc.dtype_compute))
    elif isinstance(desc, AttentionDesc):
        flops, nbytes, peak = desc.flop_count(), desc.byte_count(), spec.peak_flops(peak_class(desc.dtype))
    elif isinstance(desc, KernelDesc):
        flops, nbytes, peak = desc.flops, desc.bytes, spec.peak_fp32_flops * _GENERIC_MATH_EFFICIENCY
    else:
        return True   # copies, memsets, library calls without math: bandwidth
    return nbytes / spec.hbm_bytes_per_s >= flops / peak


def contention_word(spec: GpuSpec, desc: Descriptor) -> int:
    if isinstance(desc, CollectiveDesc):
        share = collectives.contention(spec, collectives.plan_for(spec, desc))
        sm = min(round(share.sm_fraction * 1000), 1000)
        hbm = min(round(share.hbm_fraction * 1000), 1000)
        return (sm & _SHARE_MASK) | ((hbm & _SHARE_MASK) << 16)
    return MEMORY_BOUND if memory_bound(spec, desc) else 0
