"""Public real-GPU measurements (../shared/data, read in place) as trace rows.

    inference_sim_rows(root)   H100: DeepGEMM FP8 GEMMs (kernel time), FlashAttention-3 prefill
                               and FlashInfer paged decode (host-timed means)
    neusight_micro_rows(root)  fp32 nn.Linear and bmm on H100, A100 (PCIe 40/80 GB), L4, V100
    neusight_op_rows(root)     fp32 operators of one-layer transformers (GEMMs, softmax, norms,
                               element-wise, embeddings) on the same GPUs
    neusight_e2e_labels(root)  their whole-model forward (and forward + backward) times
    vidur rows                 predictors/vidur.py (fp16 GEMMs on A100, H100, A40)

Every row is a trace row (predictors/traces.py) plus: `source`, `workload` (the model or shape
group a held-out evaluation leaves out), `op` (what was measured), `method` ("kernel": profiler
kernel time; "event": CUDA events around one call, NeuSight's mean of the 5 fastest of 25;
"host": host wall time around a synchronised call, inference-sim's mean of 10) and, for
"event" and "host" rows, `overhead_ns`: the time such a measurement shows with no GPU work (the
launch and call overhead, estimated from the same files; module docstrings of each loader).
Training subtracts it and keeps only rows well above it. Units are converted as each source's
README states (ms or us to ns).
"""

from __future__ import annotations

import ast
import json
import logging
import math
import re
from pathlib import Path

from predictors.descriptors import (
    FLAG_CAUSAL,
    FLAG_PAGED_KV,
    AttentionDesc,
    DType,
    GemmDesc,
    KernelDesc,
)
from predictors.traces import row_from_desc

log = logging.getLogger(__name__)

NEUSIGHT_GPUS = {
    "NVIDIA_H100_80GB_HBM3": "h100", "NVIDIA H100 80GB HBM3": "h100",
    "NVIDIA_A100-PCIE-40GB": "a100-pcie-40g", "NVIDIA A100-PCIE-40GB": "a100-pcie-40g",
    "NVIDIA_A100_80GB_PCIe": "a100-pcie-80g", "NVIDIA A100 80GB PCIe": "a100-pcie-80g",
    "NVIDIA_A100-SXM4-40GB": "a100-sxm-40g", "NVIDIA A100-SXM4-40GB": "a100-sxm-40g",
    "NVIDIA_L4": "l4", "NVIDIA L4": "l4",
    "Tesla_V100-PCIE-32GB": "v100", "Tesla V100-PCIE-32GB": "v100",
}
# A host-timed call adds the Python call and the synchronisation to the kernel: 18 us, fitted
# with the roofline's attention constants on inference-sim's prefill times (roofline.py); the
# smallest decode latencies there, kernels of a few microseconds, are 21-23 us.
HOST_OVERHEAD_NS = 18_000
# CUDA events around one op with no GPU work (fx nodes such as size, getitem, view) read 6-8 us
# in NeuSight's traces: the op's CPU time between the two event records. About 5 us of it sits
# between the first event and the kernel's start; that is what adds to a kernel's time.
NEUSIGHT_EVENT_OVERHEAD_NS = 5_000


def default_root(repo: Path) -> Path:
    return repo.parent / "shared" / "data"


def _pairs(lq: int, lk: int, causal: bool) -> int:
    if not causal:
        return lq * lk
    if lk >= lq:
        return lq * (lk - lq) + lq * (lq + 1) // 2
    return lk * (lk + 1) // 2


def attention_desc(batch: int, hq: int, hk: int, lq: int, lk: int, d: int, dtype: DType, causal: bool,
                   paged: bool = False, name: str = "attention") -> AttentionDesc:
    """What the shim sends for a FlashAttention launch of `batch` equal sequences."""
    elem = 1 if dtype in (DType.F8E4M3, DType.F8E5M2) else 2
    flops = 2 * batch * _pairs(lq, lk, causal) * hq * 2 * d
    nbytes = elem * (batch * lq * hq * 2 * d + batch * lk * hk * 2 * d) + 4 * batch * lq * hq
    flags = (FLAG_CAUSAL if causal else 0) | (FLAG_PAGED_KV if paged else 0)
    return AttentionDesc(batch=batch, heads_q=hq, heads_kv=hk, seq_q=lq, seq_kv=lk, head_dim=d, dtype=dtype,
                         flags=flags, flops=flops, bytes=nbytes, name=name, total_q=batch * lq,
                         total_kv=batch * lk)


# ---------------------------------------------------------------- inference-sim (Apache-2.0)

def inference_sim_rows(root: Path) -> list[dict[str, object]]:
    """bench_data/ of inference-sim/inference-sim (README beside the data): GEMMs in kernel time,
    attention host-timed (mean of 10 after 10 warm-ups, µs)."""
    import pandas as pd

    base = root / "inference-sim" / "bench_data"
    rows: list[dict[str, object]] = []
    gemm = base / "gemm" / "h100" / "data.csv"
    if gemm.exists():
        for seq, r in enumerate(pd.read_csv(gemm).to_dict(orient="records")):
            desc = GemmDesc(m=int(r["m"]), n=int(r["n"]), k=int(r["k"]), dtype_a=DType.F8E4M3, dtype_b=DType.F8E4M3,
                            dtype_out=DType.BF16, dtype_compute=DType.F32, name="deep_gemm_fp8_gemm_nt")
            rows.append(row_from_desc(desc, int(round(float(r["latency_us"]) * 1e3)), gpu="h100", seq=seq,
                                      workload=f"k{int(r['k'])}_n{int(r['n'])}", op="gemm_fp8",
                                      source="inference-sim", method="kernel"))
    for path in sorted((base / "mha" / "prefill" / "h100").glob("*.csv")):
        hq, hk, d = (int(x) for x in path.stem.split("-"))
        for seq, r in enumerate(pd.read_csv(path).to_dict(orient="records")):
            n = int(r["seq_len"])
            desc = attention_desc(1, hq, hk, n, n, d, DType.BF16, causal=True, name="fa3_prefill")
            rows.append(row_from_desc(desc, int(round(float(r["latency_us"]) * 1e3)), gpu="h100", seq=seq,
                                      workload=path.stem, op="attention_prefill", source="inference-sim",
                                      method="host", overhead_ns=HOST_OVERHEAD_NS))
    for path in sorted((base / "mha" / "decode" / "h100").glob("*.csv")):
        heads, tp = path.stem.rsplit("-tp", 1)
        hq, hk, d = (int(x) for x in heads.split("-"))
        hq, hk = hq // int(tp), max(hk // int(tp), 1)
        for seq, r in enumerate(pd.read_csv(path).to_dict(orient="records")):
            desc = attention_desc(int(r["batch_size"]), hq, hk, 1, int(r["kv_len"]), d, DType.BF16, causal=True,
                                  paged=True, name="flashinfer_decode")
            rows.append(row_from_desc(desc, int(round(float(r["latency_us"]) * 1e3)), gpu="h100", seq=seq,
                                      workload=heads, op="attention_decode", source="inference-sim",
                                      method="host", overhead_ns=HOST_OVERHEAD_NS))
    log.info("inference-sim: %d rows", len(rows))
    return rows


# ---------------------------------------------------------------- NeuSight (MIT)

def _read_csv(path: Path):  # noqa: ANN202 - a DataFrame
    import pandas as pd

    return pd.read_csv(path, compression="gzip" if path.suffix == ".gz" else None)


def neusight_micro_rows(root: Path) -> list[dict[str, object]]:
    """data/dataset/test/{linear,bmm}.csv.gz: fp32 (SIMT) GEMMs, CUDA-event timed (ms).
    linear: nn.Linear(N, K) on (B, M, N) -> a GEMM of B*M rows; bmm: (B, M, N) x (B, N, K)."""
    base = root / "neusight" / "scripts" / "asplos" / "data" / "dataset" / "test"
    rows: list[dict[str, object]] = []
    for name in ("linear", "bmm"):
        path = base / f"{name}.csv.gz"
        if not path.exists():
            continue
        frame = _read_csv(path)
        for seq, r in enumerate(frame.to_dict(orient="records")):
            gpu = NEUSIGHT_GPUS.get(str(r["Device"]))
            if gpu is None:
                continue
            b, m, n, k = int(r["B"]), int(r["M"]), int(r["N"]), int(r["K"])
            if name == "linear":
                desc = GemmDesc(m=b * m, n=k, k=n, dtype_a=DType.F32, dtype_b=DType.F32, dtype_out=DType.F32,
                                name="linear")
            else:
                desc = GemmDesc(m=m, n=k, k=n, batch=b, dtype_a=DType.F32, dtype_b=DType.F32, dtype_out=DType.F32,
                                name="bmm")
            shape_group = f"{name}_n{n}_k{k}" if name == "linear" else f"bmm_b{b}"
            rows.append(row_from_desc(desc, int(round(float(r["Latency"]) * 1e6)), gpu=gpu, seq=seq,
                                      workload=shape_group, op=name, source="neusight", method="event",
                                      overhead_ns=NEUSIGHT_EVENT_OVERHEAD_NS))
    log.info("neusight microbenchmarks: %d rows", len(rows))
    return rows


_NO_KERNEL = {"size", "getitem", "view", "permute", "transpose", "expand", "unsqueeze", "reshape", "split", "dim",
              "getattr", "finfo", "to", "type", "long", "bool", "type_as", "tensor", "contiguous_view"}
_LINEAR_MODULES = re.compile(r"^(dense|query|key|value|lm_head|[qkv]_proj|out_proj|fc1|fc2|decoder|"
                             r"seq_relationship|classifier|c_fc|c_proj|c_attn|wi|wo)$")
_NORM_MODULES = re.compile(r"(layer_?norm|^ln_|_ln$|^ln$|norm$)", re.I)
_EMBED_MODULES = re.compile(r"(wte|wpe|embed|embeddings)$")
_ACT_MODULES = re.compile(r"(act|activation|gelu|relu)", re.I)
_DROPOUT_MODULES = re.compile(r"drop", re.I)
_ELEMENTWISE_FUNCTIONS = {"add", "mul", "sub", "truediv", "pow", "tanh", "gelu", "where", "eq", "ne", "gt", "lt",
                          "masked_fill", "masked_fill_", "full", "ones", "arange", "relu", "neg", "rsqrt", "exp",
                          "dropout", "iadd", "floordiv"}
_DTYPE_BYTES = {"torch.float32": 4, "torch.float16": 2, "torch.bfloat16": 2, "torch.int64": 8, "torch.int32": 4,
                "torch.bool": 1}


def _shapes(text: object) -> list[list[int]]:
    try:
        value = ast.literal_eval(str(text))
    except (ValueError, SyntaxError):
        return []
    if isinstance(value, tuple):
        return [list(value)]
    return [list(v) for v in value if isinstance(v, list | tuple)] if isinstance(value, list) else []


def _numel(shape: list[int]) -> int:
    return math.prod(shape) if shape else 1


def _target_name(op: str, target: str) -> str:
    if op == "call_module":
        return target.split(".")[-1]
    if "built-in method" in target:
        return target.split()[2]
    if "built-in function" in target:
        return target.split()[-1].rstrip(">")
    if target.startswith("<function"):
        return target.split()[1]
    return target


def neusight_op_desc(op: str, target: str, inputs: list[list[int]], output: list[int],
                     out_bytes: int) -> tuple[str, object] | None:
    """(class label, descriptor) of one fx node of NeuSight's traces, fp32; None: no kernel."""
    name = _target_name(op, target)
    tensors = [s for s in inputs if _numel(s) > 1]
    out_n = _numel(output)
    if op == "call_module" and _LINEAR_MODULES.match(name) and tensors:
        x = tensors[0]
        m = _numel(x[:-1])
        return "linear", GemmDesc(m=m, n=output[-1] if output else 1, k=x[-1], dtype_a=DType.F32, dtype_b=DType.F32,
                                  dtype_out=DType.F32, name="linear")
    if name == "addmm" and len(tensors) >= 2:
        a, b = tensors[-2], tensors[-1]
        return "linear", GemmDesc(m=a[0], n=b[-1], k=a[-1], dtype_a=DType.F32, dtype_b=DType.F32,
                                  dtype_out=DType.F32, name="addmm")
    if name in ("matmul", "bmm") and len(tensors) >= 2:
        a, b = tensors[0], tensors[1]
        batch = _numel(a[:-2])
        return "bmm", GemmDesc(m=a[-2], n=b[-1], k=a[-1], batch=batch, dtype_a=DType.F32, dtype_b=DType.F32,
                               dtype_out=DType.F32, name="bmm")
    if not tensors or name in _NO_KERNEL:
        return None
    nbytes = sum(_numel(s) for s in tensors) * 4 + out_n * out_bytes
    if name == "softmax":
        return "softmax", KernelDesc(name="softmax_warp_forward<float, float, float>", bytes=nbytes)
    if op == "call_module" and _NORM_MODULES.search(name):
        return "norm", KernelDesc(name="vectorized_layer_norm_kernel<float, float>", bytes=nbytes)
    if op == "call_module" and _EMBED_MODULES.search(name):
        return "embedding", KernelDesc(name="indexSelectLargeIndex<float, long>", bytes=2 * out_n * out_bytes)
    if name == "contiguous":
        return "copy", KernelDesc(name="elementwise_kernel<direct_copy_kernel_cuda>", bytes=nbytes)
    if op == "call_module" and _DROPOUT_MODULES.search(name):
        return "dropout", KernelDesc(name="fused_dropout_kernel_vec<float>", bytes=nbytes + out_n)
    if op == "call_module" and _ACT_MODULES.search(name) or name in _ELEMENTWISE_FUNCTIONS:
        return "elementwise", KernelDesc(name=f"vectorized_elementwise_kernel<{name}<float>>", bytes=nbytes)
    if name in ("cumsum", "max", "sum", "mean"):
        return "reduce", KernelDesc(name=f"reduce_kernel<{name}<float>>", bytes=nbytes)
    return None


def _event_floor_ns(frame: object) -> int:
    """What the file's CUDA-event timing shows for an fx node with no GPU work (size, getitem,
    view: the op's host time between the events), its median: 6-8 us on most GPUs, more on the
    L4 files. It is taken as the overhead in every row of the file."""
    names = frame["target"].astype(str).map(lambda t: t.split()[-1].rstrip(">"))  # type: ignore[attr-defined]
    idle = frame[names.isin(["size", "getitem", "view"]) & (frame["fw_latency"] > 0)]  # type: ignore[index]
    if not len(idle):
        return NEUSIGHT_EVENT_OVERHEAD_NS
    return max(int(round(float(idle["fw_latency"].median()) * 1e6)), NEUSIGHT_EVENT_OVERHEAD_NS)


def neusight_op_rows(root: Path) -> list[dict[str, object]]:
    """label/<GPU>/<model>-<mode>-<seq>-<batch>.csv: one row per fx node of a one-layer model,
    forward latency in ms (CUDA events, mean of the 5 fastest of 25)."""
    base = root / "neusight" / "scripts" / "asplos" / "label"
    rows: list[dict[str, object]] = []
    for path in sorted(base.glob("*/*.csv*")):
        gpu = NEUSIGHT_GPUS.get(path.parent.name)
        if gpu is None:
            continue
        frame = _read_csv(path)
        if "fw_latency" not in frame.columns:
            continue
        model = path.name.split("-")[0]
        overhead_ns = _event_floor_ns(frame)
        for seq, r in enumerate(frame.to_dict(orient="records")):
            latency_ms = float(r.get("fw_latency") or 0.0)
            if latency_ms <= 0:
                continue
            out_bytes = _DTYPE_BYTES.get(str(r.get("dtype")), 4)
            found = neusight_op_desc(str(r["op"]), str(r["target"]), _shapes(r.get("input_shapes")),
                                     (_shapes(r.get("output_shape")) or [[]])[0], out_bytes)
            if found is None:
                continue
            label, desc = found
            rows.append(row_from_desc(desc, int(round(latency_ms * 1e6)), gpu=gpu, seq=seq, workload=model,
                                      op=label, source="neusight", method="event", overhead_ns=overhead_ns,
                                      file=path.name))
    log.info("neusight operator traces: %d rows", len(rows))
    return rows


def neusight_e2e_labels(root: Path) -> list[dict[str, object]]:
    """label/<GPU>/<model>-<mode>-<seq>-<batch>[-fusion].json: whole-model times (ms) of the
    single-GPU runs (the 4-GPU ones, -dp4/-tp4/-pp4_1, are left out)."""
    base = root / "neusight" / "scripts" / "asplos" / "label"
    out = []
    for path in sorted(base.glob("*/*.json")):
        gpu = NEUSIGHT_GPUS.get(path.parent.name)
        parts = path.stem.split("-")
        if gpu is None or len(parts) < 4 or parts[-1] in ("dp4", "tp4", "pp4_1"):
            continue
        fusion = parts[-1] == "fusion"
        model, mode, seq, batch = parts[0], parts[1], int(parts[2]), int(parts[3])
        data = json.loads(path.read_text())
        out.append({"gpu": gpu, "model": model, "mode": mode, "seq": seq, "batch": batch, "fusion": fusion,
                    "num_layer": int(data.get("num_layer") or 0), "e2e_ms": float(data["e2e_latency"]),
                    "file": f"{path.parent.name}/{path.name}"})
    return out


def licence_notes(root: Path) -> dict[str, str]:
    """Attribution for a model trained on the data: each folder's licence, as its README states."""
    notes = {}
    for folder, owner in (("vidur-profiles", "microsoft/vidur (MIT)"),
                          ("inference-sim", "inference-sim/inference-sim (Apache-2.0)"),
                          ("neusight", "sitar-lab/NeuSight, Copyright (c) 2025 Georgia Institute of Technology and "
                                       "Microsoft Corporation (MIT)")):
        licence = root / folder / "LICENSE"
        if licence.exists():
            head = licence.read_text(errors="replace").strip().splitlines()[:3]
            notes[folder] = f"{owner}; licence text begins: {' / '.join(line.strip() for line in head if line.strip())}"
    return notes
