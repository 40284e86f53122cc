"""Vidur's measured op timings (microsoft/vidur, MIT) as trace rows, for evaluating predictors.

Read in place from the shared data folder (never copied into the repo). Compute profiles
(fp16, per model and tensor-parallel size) become GEMM rows for the four projections and
named-kernel rows with their bytes for the memory-bound ops; network profiles become
collective rows. `workload` is the model name (compute) or topology/size band (network), the
group the evaluation holds out.
"""

from __future__ import annotations

import logging
from pathlib import Path

from predictors.descriptors import CollectiveDesc, DType, GemmDesc, KernelDesc
from predictors.traces import row_from_desc

log = logging.getLogger(__name__)

GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
MEMORY_OPS = ("mlp_act", "input_layernorm", "post_attention_layernorm", "attn_rope", "add")
GPU_KEYS = {"a100": "a100-80g", "h100": "h100", "a40": "a40"}
FP16_BYTES = 2


def default_root(repo: Path) -> Path:
    return repo.parent / "shared" / "data" / "vidur-profiles"


def _shape_rows(record: dict[str, object]) -> dict[str, object]:
    """op -> descriptor for one profile row (README.md beside the data says what runs)."""
    tokens = int(record["num_tokens"])  # type: ignore[call-overload]
    tp = int(record["num_tensor_parallel_workers"])  # type: ignore[call-overload]
    hidden = int(record["n_embd"])  # type: ignore[call-overload]
    heads, kv_heads = int(record["n_head"]), int(record["n_kv_head"])  # type: ignore[call-overload]
    inter = int(record["n_expanded_embd"])  # type: ignore[call-overload]
    gated = bool(record["use_gated_mlp"])
    head_dim = hidden // heads
    def gemm(m: int, n: int, k: int, op: str) -> GemmDesc:
        return GemmDesc(m=m, n=n, k=k, dtype_a=DType.F16, dtype_b=DType.F16, dtype_out=DType.F16,
                        dtype_compute=DType.F32, name=op)
    inter_shard = inter // tp
    out: dict[str, object] = {
        "attn_pre_proj": gemm(tokens, (heads + 2 * kv_heads) * head_dim // tp, hidden, "attn_pre_proj"),
        "attn_post_proj": gemm(tokens, hidden, hidden // tp, "attn_post_proj"),
        "mlp_up_proj": gemm(tokens, (2 if gated else 1) * inter_shard, hidden, "mlp_up_proj"),
        "mlp_down_proj": gemm(tokens, hidden, inter_shard, "mlp_down_proj"),
    }
    act_bytes = (3 if gated else 2) * tokens * inter_shard * FP16_BYTES
    norm_bytes = 2 * tokens * hidden * FP16_BYTES + hidden * FP16_BYTES
    rope_bytes = 2 * tokens * (heads + kv_heads) // tp * head_dim * FP16_BYTES
    add_bytes = 3 * tokens * hidden * FP16_BYTES
    for op, nbytes in (("mlp_act", act_bytes), ("input_layernorm", norm_bytes),
                       ("post_attention_layernorm", norm_bytes), ("attn_rope", rope_bytes), ("add", add_bytes)):
        out[op] = KernelDesc(name=f"vidur_{op}", bytes=int(nbytes))
    return out


def compute_rows(root: Path, gpu_dir: str) -> list[dict[str, object]]:
    import pandas as pd

    rows: list[dict[str, object]] = []
    gpu_key = GPU_KEYS[gpu_dir]
    for path in sorted((root / "compute" / gpu_dir).glob("*/*/mlp.csv.gz")):
        model = path.parent.name
        frame = pd.read_csv(path)
        for seq, record in enumerate(frame.to_dict(orient="records")):
            for op, desc in _shape_rows(record).items():
                median_ms = record.get(f"time_stats.{op}.median")
                if median_ms is None or not median_ms == median_ms or median_ms <= 0:
                    continue
                row = row_from_desc(desc, int(round(float(median_ms) * 1e6)), gpu=gpu_key, workload=model,
                                    seq=seq, op=op, tp=int(record["num_tensor_parallel_workers"]))
                rows.append(row)
    log.info("vidur compute %s: %d rows", gpu_dir, len(rows))
    return rows


def network_rows(root: Path, gpu_dir: str) -> list[dict[str, object]]:
    import pandas as pd

    rows: list[dict[str, object]] = []
    gpu_key = GPU_KEYS[gpu_dir]
    for path in sorted((root / "network").glob(f"{gpu_dir}_*/*.csv.gz")):
        topology = path.parent.name
        collective = path.name.split(".")[0]
        frame = pd.read_csv(path)
        sizes = sorted(frame["size"].unique())
        band = {size: i % 5 for i, size in enumerate(sizes)}
        for seq, record in enumerate(frame.to_dict(orient="records")):
            if int(record["devices_per_node"]) < int(record["num_workers"]):
                continue  # crosses nodes: the collective model covers one node's links only
            median_ms = record.get(f"time_stats.{collective}.median")
            if median_ms is None or not median_ms == median_ms or median_ms <= 0:
                continue
            ranks = int(record["num_workers"]) if collective == "all_reduce" else 2
            desc = CollectiveDesc(name="send" if collective == "send_recv" else collective, ranks=ranks,
                                  count=int(record["size"]), dtype=DType.F16)
            rows.append(row_from_desc(desc, int(round(float(median_ms) * 1e6)), gpu=gpu_key,
                                      workload=f"{topology}/band{band[record['size']]}", seq=seq,
                                      op=f"{collective}@{topology}"))
    log.info("vidur network %s: %d rows", gpu_dir, len(rows))
    return rows
