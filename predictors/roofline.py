"""Roofline predictor: durations from FLOPs and bytes against the spec's peaks. Needs no data.

Every rule is in docs/predictors.md. In short: an op takes max(compute time, memory time) plus
a fixed per-op overhead, and never less than the spec's kernel floor; GEMMs (and convolutions as
implicit GEMMs) count whole output tiles in whole waves over the SMs, and skinny GEMMs stream
their weights; attention counts its masked FLOPs in waves of query tiles; memory time is never
below bytes / HBM bandwidth, so a prediction is never faster than physically possible. The
fractions of the peaks each class reaches were measured on the public data (the comment at each
constant says where); the learned model (predictors/efficiency.py) corrects what is left.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from predictors import Prediction, collectives
from predictors.catalog import GpuSpec
from predictors.classes import kernel_name_class
from predictors.descriptors import (
    DTYPE_BYTES,
    AttentionDesc,
    CollectiveDesc,
    ConvDesc,
    CopyDesc,
    CopyKind,
    Descriptor,
    DType,
    FftDesc,
    GemmDesc,
    KernelDesc,
    LibraryDesc,
    MarkerDesc,
    MemsetDesc,
    SolverDesc,
    peak_class,
)

# Achievable fractions of the datasheet peaks (docs/predictors.md).
HBM_EFFICIENCY = 0.85          # streaming kernels reach ~85-90% of HBM peak
# Fraction of HBM peak each class of memory-bound kernel reaches: medians over NeuSight's fp32
# operator traces (H100, A100 PCIe 40/80 GB, V100; L4 left out, its 48 MB L2 holds the operands)
# of bytes / HBM peak / (measured - 5 us event overhead), operators of at least 40 us;
# `python scripts/train_predictors.py constants` prints them. optimizer, memset and kernel
# (unclassified) have no measurements: HBM_EFFICIENCY.
CLASS_HBM_EFFICIENCY = {
    "elementwise": 0.85, "softmax": 0.78, "norm": 0.52, "reduce": 0.80, "copy": 0.66, "gather": 0.32,
}
SKINNY_HBM_EFFICIENCY = 0.93   # GEMV-like GEMMs stream their weights (DeepGEMM m<=16, inference-sim)
DECODE_HBM_EFFICIENCY = 0.93   # FlashInfer decode: 0.93 of peak fitted over 559 rows (inference-sim)
# Fraction of the dense tensor peak FlashAttention forward reaches, and the fixed work of a CTA
# (loading its queries, the softmax state, writing its output) in key blocks of 128: H100 0.78
# and 1.75 blocks, fitted together on inference-sim's 25 FA3 prefill times (1-32K tokens, 28-64
# heads; median error 4.5%, max 8.5%, with the host-timing overhead public_data.HOST_OVERHEAD_NS).
# Ampere 0.62 and Volta 0.45 are FlashAttention-2's published A100 figures and cuDNN's V100
# attention, assumed.
ATTENTION_EFFICIENCY_BY_ARCH = {7: 0.45, 8: 0.62, 9: 0.78, 10: 0.78}
ATTENTION_CTA_FIXED_BLOCKS = 1.75
ATTENTION_BACKWARD_FACTOR = 0.75  # backward reaches ~3/4 of the forward's rate (FlashAttention-2 paper)
ATTENTION_BLOCK_M = 128        # queries per CTA of FlashAttention 2/3 forward
# FP8 GEMMs reach less of their (doubled) peak than 16-bit ones: DeepGEMM's FP8 kernels on H100
# run at 0.78 of the 16-bit tiles' efficiency (median over inference-sim's GEMMs of at least 4096
# rows: 0.60-0.65 of the FP8 peak).
FP8_GEMM_FACTOR = 0.78
PCIE_EFFICIENCY = 0.80         # pinned DMA over PCIe
LINK_EFFICIENCY = 0.80         # NVLink / PCIe bus bandwidth NCCL reaches
HOST_MEMCPY_BYTES_PER_S = 20e9  # one host thread's memcpy (pageable staging, H2H)
COPY_OVERHEAD_NS = 1000        # DMA setup per copy
CONV_EFFICIENCY = 0.85         # implicit GEMM vs a plain GEMM of the same shape
FFT_EFFICIENCY = 0.6
SOLVER_EFFICIENCY = 0.3

# Output tiles (rows, cols) and the fraction of the peak a full tile reaches, per arch and math
# class. The first entry is the library's default tile for large problems; the others are what it
# falls back to when the default leaves SMs idle.
_TILES_TENSOR_SM90 = ((128, 256, 0.80), (128, 128, 0.72), (64, 128, 0.60), (64, 64, 0.45))
_TILES_TENSOR_SM80 = ((256, 128, 0.80), (128, 128, 0.75), (64, 128, 0.62), (64, 64, 0.48))
_TILES_SIMT = ((128, 128, 0.80), (64, 128, 0.70), (64, 64, 0.60), (32, 32, 0.45))
_SPLIT_K = (1, 2, 4, 8, 16)
_MIN_K_PER_SPLIT = 256
_MMA_ROWS = 16                 # smallest row count a tensor-core MMA computes (m16n8k16)


@dataclass(frozen=True)
class GemmPlan:
    """How the roofline thinks a GEMM runs: for docs, tests and `emulate` explanations."""
    tile_m: int
    tile_n: int
    split_k: int
    tiles: int
    waves: int
    efficiency: float
    compute_ns: float
    memory_ns: float
    duration_ns: int


def _tiles_for(spec: GpuSpec, math_class: str) -> tuple[tuple[int, int, float], ...]:
    if math_class in ("fp32",) or (math_class == "fp64" and spec.cc_major < 8):
        return _TILES_SIMT
    return _TILES_TENSOR_SM90 if spec.cc_major >= 9 else _TILES_TENSOR_SM80


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class RooflinePredictor:
    name = "roofline"
    version = "5"  # bump on any change of a rule or constant: the coordinator caches by version

    def __init__(self, spec: GpuSpec) -> None:
        self.spec = spec
        self.floor_ns = spec.kernel_floor_ns

    # ---------------------------------------------------------------- helpers
    def memory_ns(self, nbytes: float) -> float:
        return nbytes / (self.spec.hbm_bytes_per_s * HBM_EFFICIENCY) * 1e9

    def _finish(self, ns: float) -> Prediction:
        return Prediction(duration_ns=int(math.ceil(max(ns, self.floor_ns))), model="roofline")

    # ---------------------------------------------------------------- GEMM
    def gemm_plan(self, m: int, n: int, k: int, batch: int, math_class: str, nbytes: float,
                  efficiency_scale: float = 1.0) -> GemmPlan:
        spec = self.spec
        m, n, k, batch = max(m, 1), max(n, 1), max(k, 1), max(batch, 1)
        peak_per_sm = spec.peak_flops(math_class) / spec.sm_count
        memory = self.memory_ns(nbytes)
        best: GemmPlan | None = None
        candidates = _tiles_for(spec, math_class)
        default_tiles = _ceil_div(m, candidates[0][0]) * _ceil_div(n, candidates[0][1]) * batch
        # The default tile serves every problem that fills the GPU: wave quantisation stays visible.
        if default_tiles >= spec.sm_count:
            candidates = candidates[:1]
        for tile_m, tile_n, efficiency in candidates:
            for split in _SPLIT_K:
                if split > 1 and (k // split < _MIN_K_PER_SPLIT or default_tiles >= spec.sm_count):
                    continue
                tiles = _ceil_div(m, tile_m) * _ceil_div(n, tile_n) * batch * split
                waves = _ceil_div(tiles, spec.sm_count)
                tile_flops = 2.0 * tile_m * tile_n * _ceil_div(k, split)
                compute = waves * tile_flops / (peak_per_sm * efficiency * efficiency_scale) * 1e9
                # split-K writes and re-reads fp32 partial sums
                extra = (split - 1) * m * n * batch * 4 * 2 if split > 1 else 0
                mem = memory + self.memory_ns(extra)
                total = max(compute, mem) + self.floor_ns
                if best is None or total < best.duration_ns:
                    best = GemmPlan(tile_m, tile_n, split, tiles, waves, efficiency * efficiency_scale,
                                    compute, mem, int(math.ceil(total)))
        assert best is not None
        return best

    def skinny_ns(self, m: int, n: int, k: int, batch: int, math_class: str, nbytes: float) -> float:
        """A GEMM with few rows (or columns) streams the other operand: it runs at the weights'
        read rate, its math padded to the MMA's 16 rows at the small tiles' efficiency."""
        rows = max(min(m, n), 1)
        padded = -(-rows // _MMA_ROWS) * _MMA_ROWS
        compute = 2.0 * padded * max(m, n) * k * max(batch, 1) / (self.spec.peak_flops(math_class) * 0.45) * 1e9
        memory = nbytes / (self.spec.hbm_bytes_per_s * SKINNY_HBM_EFFICIENCY) * 1e9
        return max(compute, memory) + self.floor_ns

    def _gemm(self, desc: GemmDesc) -> Prediction:
        math_class = peak_class(desc.dtype_a, desc.dtype_compute)
        nbytes = desc.byte_count()
        scale = FP8_GEMM_FACTOR if math_class == "fp8" else 1.0
        plan = self.gemm_plan(desc.m, desc.n, desc.k, desc.batch, math_class, nbytes, efficiency_scale=scale)
        ns = float(plan.duration_ns)
        if min(desc.m, desc.n) <= 4 * _MMA_ROWS:
            ns = min(ns, self.skinny_ns(desc.m, desc.n, desc.k, desc.batch, math_class, nbytes))
        return self._finish(ns)

    def _conv(self, desc: ConvDesc) -> Prediction:
        m, n, k = desc.implicit_gemm()
        math_class = peak_class(desc.dtype, desc.dtype_compute)
        plan = self.gemm_plan(m, n, k, 1, math_class, desc.byte_count(), efficiency_scale=CONV_EFFICIENCY)
        flops = desc.flop_count()
        if desc.flops and flops > 2 * m * n * k:  # caller knows better (strides, dilation): scale
            return self._finish(plan.duration_ns * flops / (2 * m * n * k))
        return self._finish(plan.duration_ns)

    # ---------------------------------------------------------------- other kinds
    def attention_waves(self, desc: AttentionDesc) -> tuple[int, int]:
        """(CTAs, waves) of a FlashAttention forward: one CTA per 128 queries of a sequence and
        query head (the sequences' mean length stands for each)."""
        batch = max(desc.batch, 1)
        per_sequence = max(desc.tokens_q // batch, 1)
        ctas = batch * _ceil_div(per_sequence, ATTENTION_BLOCK_M) * max(desc.heads_q, 1)
        return ctas, _ceil_div(ctas, self.spec.sm_count)

    def _attention(self, desc: AttentionDesc) -> Prediction:
        spec = self.spec
        efficiency = ATTENTION_EFFICIENCY_BY_ARCH.get(spec.cc_major, 0.55)
        if desc.backward:
            efficiency *= ATTENTION_BACKWARD_FACTOR
        peak = spec.peak_flops(peak_class(desc.dtype))
        if desc.decode:
            memory = desc.byte_count() / (spec.hbm_bytes_per_s * DECODE_HBM_EFFICIENCY) * 1e9
            compute = desc.flop_count() / (peak * efficiency) * 1e9
            return self._finish(max(compute, memory) + self.floor_ns)
        ctas, waves = self.attention_waves(desc)
        occupancy = ctas / (waves * spec.sm_count)  # the last wave's idle SMs
        # each CTA's fixed work, against the key blocks it computes on average
        pairs = desc.flop_count() / (4.0 * max(desc.heads_q, 1) * max(desc.head_dim, 1))
        if desc.backward:
            pairs /= 2.5
        blocks = max(pairs * max(desc.heads_q, 1) / (ctas * ATTENTION_BLOCK_M * ATTENTION_BLOCK_M), 1.0)
        fixed = (blocks + ATTENTION_CTA_FIXED_BLOCKS) / blocks
        compute = desc.flop_count() / (peak * efficiency * occupancy) * fixed * 1e9
        return self._finish(max(compute, self.memory_ns(desc.byte_count())) + self.floor_ns)

    def _copy(self, desc: CopyDesc) -> Prediction:
        spec = self.spec
        pinned = spec.pcie_bytes_per_s * PCIE_EFFICIENCY
        if desc.copy_kind in (CopyKind.H2D_PINNED, CopyKind.D2H_PINNED):
            rate = pinned
        elif desc.copy_kind in (CopyKind.H2D_PAGEABLE, CopyKind.D2H_PAGEABLE):
            rate = 1.0 / (1.0 / pinned + 1.0 / HOST_MEMCPY_BYTES_PER_S)  # staged through a pinned buffer
        elif desc.copy_kind == CopyKind.D2D:
            return self._finish(self.memory_ns(2 * desc.bytes) + COPY_OVERHEAD_NS)  # read + write
        elif desc.copy_kind == CopyKind.H2H:
            rate = HOST_MEMCPY_BYTES_PER_S
        else:  # PEER
            rate = self.link_bytes_per_s()
        return self._finish(desc.bytes / rate * 1e9 + COPY_OVERHEAD_NS)

    def link_bytes_per_s(self) -> float:
        """GPU-to-GPU bandwidth per direction: NVLink when the part has it, else PCIe."""
        spec = self.spec
        raw = spec.nvlink_bytes_per_s if spec.nvlink_links > 0 and spec.nvlink_bytes_per_s > 0 \
            else spec.pcie_bytes_per_s
        return raw * LINK_EFFICIENCY

    def _memset(self, desc: MemsetDesc) -> Prediction:
        return self._finish(self.floor_ns + self.memory_ns(desc.bytes))

    def _kernel(self, desc: KernelDesc) -> Prediction:
        nbytes = desc.bytes if desc.bytes > 0 else desc.threads * 8  # unknown: one load + one store of 4 B
        efficiency = CLASS_HBM_EFFICIENCY.get(kernel_name_class(desc.name), HBM_EFFICIENCY)
        ns = nbytes / (self.spec.hbm_bytes_per_s * efficiency) * 1e9
        if desc.flops:
            ns = max(ns, desc.flops / (self.spec.peak_fp32_flops * 0.5) * 1e9)
        return self._finish(self.floor_ns + ns)  # the floor: launch ramp-up and drain of any kernel

    def _fft(self, desc: FftDesc) -> Prediction:
        points = desc.points
        element = DTYPE_BYTES.get(desc.dtype, 8)
        flops = 5.0 * points * math.log2(max(points, 2)) * desc.batch
        peak = self.spec.peak_fp64_flops if desc.dtype in (DType.C128, DType.F64) else self.spec.peak_fp32_flops
        compute = flops / (peak * FFT_EFFICIENCY) * 1e9
        passes = max(1, math.ceil(math.log2(max(points, 2)) / 12))  # one pass per ~4096-point radix stage
        memory = self.memory_ns(desc.bytes or 2 * passes * points * desc.batch * element)
        return self._finish(max(compute, memory) + self.floor_ns)

    _SOLVER_FLOPS = (("potrf", 1 / 3), ("getrf", 2 / 3), ("geqrf", 4 / 3), ("syevd", 9.0), ("syev", 9.0),
                     ("gesvd", 22.0), ("getrs", 0.0), ("potrs", 0.0))

    def _solver(self, desc: SolverDesc) -> Prediction:
        n = max(min(desc.m, desc.n), 1)
        lowered = desc.name.lower()
        coef = next((c for key, c in self._SOLVER_FLOPS if key in lowered), 2 / 3)
        flops = desc.flops or (coef * n ** 3 + 2 * n * n * max(desc.nrhs, 0)) * desc.batch
        math_class = "fp64" if desc.dtype in (DType.F64, DType.C128) else "fp32"
        compute = flops / (self.spec.peak_flops(math_class) * SOLVER_EFFICIENCY) * 1e9
        element = DTYPE_BYTES.get(desc.dtype, 4)
        memory = self.memory_ns(desc.m * desc.n * element * 2 * desc.batch)
        # panel factorisations launch ~n/32 dependent kernels
        latency = max(1, n // 32) * self.floor_ns
        return self._finish(max(compute, memory) + latency)

    def _collective(self, desc: CollectiveDesc) -> Prediction:
        return Prediction(duration_ns=collectives.collective_ns(self.spec, desc), model="roofline")  # NCCL's model

    def _library(self, desc: LibraryDesc) -> Prediction:
        ns = self.memory_ns(desc.bytes)
        if desc.flops:
            ns = max(ns, desc.flops / (self.spec.peak_fp32_flops * 0.5) * 1e9)
        return self._finish(self.floor_ns + ns)

    # ---------------------------------------------------------------- entry
    def predict(self, desc: Descriptor) -> Prediction:
        if isinstance(desc, MarkerDesc):
            return Prediction(duration_ns=0, model="roofline")
        handler = {KernelDesc: self._kernel, GemmDesc: self._gemm, CopyDesc: self._copy, MemsetDesc: self._memset,
                   ConvDesc: self._conv, AttentionDesc: self._attention, FftDesc: self._fft,
                   SolverDesc: self._solver, CollectiveDesc: self._collective,
                   LibraryDesc: self._library}.get(type(desc))
        if handler is None:
            raise TypeError(f"roofline has no rule for {type(desc).__name__}")
        return handler(desc)  # type: ignore[operator]


_COLLECTIVE_ALIASES = {
    "allreduce": "all_reduce", "allgather": "all_gather", "reducescatter": "reduce_scatter",
    "alltoall": "all_to_all", "bcast": "broadcast", "broadcast": "broadcast", "reduce": "reduce",
    "send": "send", "recv": "recv", "sendrecv": "send",
}


def _collective_kind(name: str) -> str:
    """ncclAllReduce, all_reduce, allreduce, ... -> all_reduce."""
    text = re.sub(r"^nccl", "", name.strip(), flags=re.I)
    text = re.sub(r"[^a-z]", "", text.lower())
    return _COLLECTIVE_ALIASES.get(text, text)
