"""torch.profiler chrome traces -> trace rows (predictors/traces.py schema).

Used by scripts/collect_gpu_traces.py on a GPU and by `emulate validate` for a real trace given
as the profiler's JSON. GEMM ops' kernels fold into one `gemm` row with the op's shapes in
cuBLAS's column-major view (as the shim sees the call); cuDNN SDPA ops into one `attention` row.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict

from predictors.descriptors import CopyKind, DType
from predictors.traces import empty_row

log = logging.getLogger(__name__)

TORCH_DTYPES = {
    "float": DType.F32, "double": DType.F64, "c10::Half": DType.F16, "c10::BFloat16": DType.BF16,
    "c10::Float8_e4m3fn": DType.F8E4M3, "c10::Float8_e5m2": DType.F8E5M2, "signed char": DType.I8,
    "int": DType.I32, "long int": DType.I64, "c10::complex<float>": DType.C64,
    "c10::complex<double>": DType.C128,
}
# aten ops whose CUDA kernels are one cuBLAS GEMM call: where (a, b) sit in "Input Dims"
GEMM_OPS = {"aten::mm": (0, 1), "aten::addmm": (1, 2), "aten::bmm": (0, 1), "aten::baddbmm": (1, 2),
            "aten::_scaled_mm": (0, 1), "aten::addmv": (1, 2)}
CUDNN_ATTENTION_OPS = ("aten::_scaled_dot_product_cudnn_attention",
                       "aten::_scaled_dot_product_cudnn_attention_backward")
MEMCPY_KINDS = {("HtoD", "Pageable"): CopyKind.H2D_PAGEABLE, ("HtoD", "Pinned"): CopyKind.H2D_PINNED,
                ("DtoH", "Pageable"): CopyKind.D2H_PAGEABLE, ("DtoH", "Pinned"): CopyKind.D2H_PINNED,
                ("DtoD", ""): CopyKind.D2D, ("HtoH", ""): CopyKind.H2H, ("PtoP", ""): CopyKind.PEER}


def _ns(event: dict[str, object]) -> int:
    return int(round(float(event.get("dur", 0.0)) * 1000))  # type: ignore[arg-type]


def _triple(value: object) -> list[int]:
    items = [int(v) for v in value] if isinstance(value, list | tuple) else []
    return (items + [1, 1, 1])[:3]


def memcpy_kind(name: str) -> CopyKind:
    """'Memcpy HtoD (Pinned -> Device)' -> H2D_PINNED."""
    direction = next((d for d, _ in MEMCPY_KINDS if d in name), "DtoD")
    if direction in ("HtoD", "DtoH"):
        pinned = "Pinned" in name
        return MEMCPY_KINDS[(direction, "Pinned" if pinned else "Pageable")]
    return MEMCPY_KINDS.get((direction, ""), CopyKind.D2D)


def gemm_dims(op_name: str, input_dims: list[list[int]]) -> tuple[int, int, int, int] | None:
    """(m, n, k, batch) in cuBLAS's column-major view: torch's C[M,N] = A[M,K] B[K,N] is the
    cuBLAS call C^T = B^T A^T, i.e. m = N, n = M."""
    where = GEMM_OPS.get(op_name)
    if where is None or len(input_dims) <= max(where):
        return None
    a, b = input_dims[where[0]], input_dims[where[1]]
    if op_name == "aten::addmv":
        if len(a) != 2:
            return None
        return a[0], 1, a[1], 1
    if len(a) == 2 and len(b) == 2:
        return b[1], a[0], a[1], 1
    if len(a) == 3 and len(b) == 3:
        return b[2], a[1], a[2], a[0]
    return None


def _dtype_of(op_args: dict[str, object], index: int) -> int:
    types = op_args.get("Input type") or []
    if isinstance(types, list) and len(types) > index:
        return int(TORCH_DTYPES.get(str(types[index]), DType.UNKNOWN))
    return int(DType.UNKNOWN)


def rows_from_chrome_trace(trace: dict[str, object], gpu: str, workload: str) -> list[dict[str, object]]:
    """Rows (predictors/traces.py schema) from a torch.profiler chrome trace."""
    events = [e for e in trace.get("traceEvents", []) if isinstance(e, dict) and e.get("ph") == "X"]  # type: ignore[union-attr]
    cpu_ops: dict[int, dict[str, object]] = {}
    for event in events:
        if event.get("cat") == "cpu_op":
            ext = event.get("args", {}).get("External id")
            if ext is not None:
                cpu_ops[int(ext)] = event
    rows: list[dict[str, object]] = []
    folded: dict[int, list[dict[str, object]]] = defaultdict(list)
    gpu_events = sorted((e for e in events if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")),
                        key=lambda e: float(e.get("ts", 0.0)))  # type: ignore[arg-type]
    for seq, event in enumerate(gpu_events):
        args: dict[str, object] = event.get("args", {})  # type: ignore[assignment]
        common = {"gpu": gpu, "workload": workload, "seq": seq, "stream": int(args.get("stream", 0) or 0),  # type: ignore[call-overload]
                  "ts_us": float(event.get("ts", 0.0))}  # type: ignore[arg-type]
        cat = event.get("cat")
        if cat == "gpu_memcpy":
            dims = [int(memcpy_kind(str(event.get("name", ""))))] + [0] * 7
            rows.append(empty_row("memcpy", "memcpy", _ns(event), dims=dims, bytes=int(args.get("bytes", 0) or 0),  # type: ignore[call-overload]
                                  **common))
            continue
        if cat == "gpu_memset":
            rows.append(empty_row("memset", "memset", _ns(event), bytes=int(args.get("bytes", 0) or 0), **common))  # type: ignore[call-overload]
            continue
        ext = args.get("External id")
        op = cpu_ops.get(int(ext)) if ext is not None else None  # type: ignore[call-overload]
        op_name = str(op.get("name")) if op else ""
        if op_name in GEMM_OPS or op_name in CUDNN_ATTENTION_OPS:
            folded[int(ext)].append({**common, "event": event})  # type: ignore[call-overload]
            continue
        rows.append(empty_row("kernel", str(event.get("name", "")), _ns(event), grid=_triple(args.get("grid")),
                              block=_triple(args.get("block")), smem=int(args.get("shared memory", 0) or 0),  # type: ignore[call-overload]
                              op=op_name, **common))
    for ext, parts in folded.items():
        op = cpu_ops[ext]
        op_args: dict[str, object] = op.get("args", {})  # type: ignore[assignment]
        input_dims = [list(d) for d in op_args.get("Input Dims", [])]  # type: ignore[union-attr]
        first = parts[0]
        duration = sum(_ns(p["event"]) for p in parts)  # type: ignore[arg-type]
        kernels = [str(p["event"]["name"]) for p in parts]  # type: ignore[index]
        common = {k: first[k] for k in ("gpu", "workload", "seq", "stream", "ts_us")}
        op_name = str(op.get("name"))
        if op_name in GEMM_OPS:
            shape = gemm_dims(op_name, input_dims)
            if shape is None:
                log.warning("%s with input dims %s: kept as kernels", op_name, input_dims)
                for part in parts:
                    event = part["event"]
                    rows.append(empty_row("kernel", str(event["name"]), _ns(event), op=op_name, **common))  # type: ignore[index,arg-type]
                continue
            dtype = _dtype_of(op_args, GEMM_OPS[op_name][0])
            rows.append(empty_row("gemm", op_name, duration, dims=[*shape, 0, 0, 0, 0], dtype=dtype, dtype_out=dtype,
                                  kernels=kernels, **common))
        else:
            q, k = (input_dims + [[], []])[:2]
            if len(q) != 4 or len(k) != 4:
                continue
            causal = "true" in json.dumps(op_args.get("Concrete Inputs", "")).lower()
            flags = (0x4 if causal else 0) | (0x100 if op_name.endswith("_backward") else 0)
            rows.append(empty_row("attention", op_name, duration, dims=[q[0], q[1], k[1], q[2], k[2], q[3], 0, 0],
                                  dtype=_dtype_of(op_args, 0), flags=flags, kernels=kernels, **common))
    rows.sort(key=lambda r: (float(r["ts_us"]), int(r["seq"])))  # type: ignore[arg-type]
    return rows


def e2e_row(gpu: str, workload: str, name: str, seconds: float, **extra: object) -> dict[str, object]:
    return empty_row("e2e", name, int(round(seconds * 1e9)), gpu=gpu, workload=workload, **extra)
