"""Features of a descriptor for the learned predictor: kernel family from the demangled name,
template parameters, launch shape and occupancy, bytes and FLOPs, dtype, and the roofline's own
estimate (so the trees learn how reality departs from the roofline)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from predictors.catalog import GpuSpec
from predictors.descriptors import (
    AttentionDesc,
    CollectiveDesc,
    ConvDesc,
    CopyDesc,
    Descriptor,
    FftDesc,
    GemmDesc,
    KernelDesc,
    LibraryDesc,
    MemsetDesc,
    SolverDesc,
    demangle,
    kind_of,
)
from predictors.roofline import RooflinePredictor, _collective_kind

FEATURES = (
    "kind", "family", "functor", "tparam0", "tparam1", "tile_m", "tile_n",
    "kw_gemm", "kw_elementwise", "kw_reduce", "kw_norm", "kw_softmax", "kw_attention", "kw_copy", "kw_index",
    "grid_x", "grid_y", "grid_z", "blocks", "threads_per_block", "log2_threads", "smem", "waves",
    "log2_bytes", "log2_flops", "m", "n", "k", "batch", "log2_mnk", "dtype", "flags", "copy_kind", "ranks",
    "log2_roofline_ns",
)
CATEGORICAL = ("family", "functor")

_KEYWORDS = {
    "kw_gemm": ("gemm", "xmma", "cutlass", "matmul", "wgmma", "hmma", "mma"),
    "kw_elementwise": ("elementwise", "unrolled", "vectorized", "pointwise", "fill"),
    "kw_reduce": ("reduce", "reduction", "sum", "mean", "argmax", "norm_kernel"),
    "kw_norm": ("layer_norm", "layernorm", "rms", "batch_norm", "group_norm"),
    "kw_softmax": ("softmax",),
    "kw_attention": ("flash", "fmha", "attention", "attn", "sdpa"),
    "kw_copy": ("copy", "memcpy", "cat", "transpose", "contiguous"),
    "kw_index": ("index", "gather", "scatter", "embedding", "take"),
}


def _strip_templates(text: str) -> str:
    out, depth = [], 0
    for ch in text:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth = max(depth - 1, 0)
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _top_level_template_args(text: str) -> list[str]:
    start = text.find("<")
    if start < 0:
        return []
    args, depth, current = [], 0, []
    for ch in text[start:]:
        if ch == "<":
            depth += 1
            if depth == 1:
                continue
        elif ch == ">":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                break
        elif ch == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    return args


@dataclass(frozen=True)
class KernelName:
    family: str          # base function name, digits folded: "vectorized_elementwise_kernel"
    functor: str         # first class-like template argument's base name: "FillFunctor"
    tparams: tuple[int, ...]
    tile: tuple[int, int]


def parse_kernel_name(name: str) -> KernelName:
    text = demangle(name)
    # drop the parameter list: the last top-level '(' ... ')'
    depth, cut = 0, len(text)
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        elif ch == "(" and depth == 0:
            cut = i
            break
    head = text[:cut]
    args = _top_level_template_args(head)
    base = _strip_templates(head).strip()
    base = base.split()[-1] if base.split() else base  # drop a return type ("void ")
    base = base.split("::")[-1]
    family = re.sub(r"\d+", "#", base)[:64] or "?"
    functor = ""
    ints: list[int] = []
    for arg in args:
        if re.fullmatch(r"-?\d+[uUlL]*", arg):
            ints.append(int(re.sub(r"[uUlL]", "", arg)))
        elif not functor and re.search(r"[A-Za-z_]", arg) and arg not in ("float", "double", "int", "bool"):
            functor = _strip_templates(arg).split("::")[-1].strip()[:48]
    tile_match = re.search(r"(\d+)x(\d+)", text)
    tile = (int(tile_match.group(1)), int(tile_match.group(2))) if tile_match else (0, 0)
    return KernelName(family, functor, tuple(ints[:2]), tile)


def _log2(value: float) -> float:
    return math.log2(value) if value > 0 else -1.0


def blocks_per_sm(spec: GpuSpec, threads_per_block: int, smem_bytes: int) -> int:
    limit = spec.max_blocks_per_sm
    if threads_per_block > 0:
        limit = min(limit, spec.max_threads_per_sm // max(threads_per_block, 1))
    if smem_bytes > 0:
        limit = min(limit, spec.smem_per_sm_bytes // smem_bytes)
    return max(limit, 1)


def raw_features(desc: Descriptor, spec: GpuSpec, roofline: RooflinePredictor) -> dict[str, object]:
    """Feature values; categorical ones as strings (the model's vocabulary turns them to codes)."""
    feats: dict[str, object] = {name: math.nan for name in FEATURES}
    feats["kind"] = int(kind_of(desc))
    feats["family"] = type(desc).__name__
    feats["functor"] = ""
    nbytes = 0.0
    flops = 0.0
    if isinstance(desc, KernelDesc):
        parsed = parse_kernel_name(desc.name)
        feats.update(family=parsed.family, functor=parsed.functor,
                     tparam0=parsed.tparams[0] if parsed.tparams else math.nan,
                     tparam1=parsed.tparams[1] if len(parsed.tparams) > 1 else math.nan,
                     tile_m=parsed.tile[0], tile_n=parsed.tile[1],
                     grid_x=desc.grid[0], grid_y=desc.grid[1], grid_z=desc.grid[2], blocks=desc.blocks,
                     threads_per_block=desc.threads_per_block, log2_threads=_log2(desc.threads),
                     smem=desc.smem_bytes, flags=desc.flags)
        resident = blocks_per_sm(spec, desc.threads_per_block, desc.smem_bytes) * spec.sm_count
        feats["waves"] = desc.blocks / resident
        lowered = demangle(desc.name).lower()
        for key, words in _KEYWORDS.items():
            feats[key] = float(any(word in lowered for word in words))
        nbytes, flops = desc.bytes, desc.flops
    elif isinstance(desc, GemmDesc):
        feats.update(m=desc.m, n=desc.n, k=desc.k, batch=desc.batch, log2_mnk=_log2(desc.m * desc.n * desc.k),
                     dtype=int(desc.dtype_a), flags=desc.flags, kw_gemm=1.0)
        nbytes, flops = desc.byte_count(), desc.flop_count()
    elif isinstance(desc, ConvDesc):
        m, n, k = desc.implicit_gemm()
        feats.update(m=m, n=n, k=k, batch=desc.n, log2_mnk=_log2(m * n * k), dtype=int(desc.dtype), flags=desc.flags)
        nbytes, flops = desc.byte_count(), desc.flop_count()
    elif isinstance(desc, AttentionDesc):
        feats.update(m=desc.seq_q, n=desc.seq_kv, k=desc.head_dim, batch=desc.batch * desc.heads_q,
                     dtype=int(desc.dtype), flags=desc.flags, kw_attention=1.0)
        nbytes, flops = desc.byte_count(), desc.flop_count()
    elif isinstance(desc, CopyDesc):
        feats.update(copy_kind=int(desc.copy_kind), kw_copy=1.0)
        nbytes = desc.bytes
    elif isinstance(desc, MemsetDesc):
        nbytes = desc.bytes
    elif isinstance(desc, CollectiveDesc):
        feats.update(family=_collective_kind(desc.name), ranks=desc.ranks, dtype=int(desc.dtype))
        nbytes = desc.byte_count()
    elif isinstance(desc, FftDesc):
        feats.update(m=desc.n0, n=desc.n1, k=desc.n2, batch=desc.batch, dtype=int(desc.dtype))
        nbytes = desc.bytes
    elif isinstance(desc, SolverDesc):
        feats.update(family=desc.name, m=desc.m, n=desc.n, k=desc.nrhs, batch=desc.batch, dtype=int(desc.dtype))
        flops = desc.flops
    elif isinstance(desc, LibraryDesc):
        feats.update(family=desc.name)
        nbytes, flops = desc.bytes, desc.flops
    feats["log2_bytes"] = _log2(nbytes)
    feats["log2_flops"] = _log2(flops)
    feats["log2_roofline_ns"] = _log2(roofline.predict(desc).duration_ns)
    return feats
