#!/usr/bin/env python3
"""Collect ground truth on a real GPU: a fixed suite of workloads under torch.profiler (CUPTI).

    python scripts/collect_gpu_traces.py [--gpu h100] [--out data] [--only gemm_sweep sdpa ...] [--quick]

For every workload it records each GPU op (kernel name, grid, block, shared memory, stream,
duration; memcpy/memset kind and bytes), folds the kernels of a cuBLAS GEMM op into one
`gemm` row with the op's shapes (from record_shapes, in cuBLAS's column-major m, n, k, as the
shim sees the call), and adds the end-to-end time the workload measures itself (`e2e` rows).
Rows follow predictors/traces.py and go to data/<gpu>/<workload>.jsonl.zst, with manifest.json.

The pure part (chrome trace -> rows) is importable without a GPU and unit-tested.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from predictors.catalog import get_spec  # noqa: E402
from predictors.descriptors import CopyKind, DType  # noqa: E402
from predictors.traces import empty_row, write_rows  # noqa: E402

log = logging.getLogger("collect_gpu_traces")

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


# ---------------------------------------------------------------------------- on the GPU
@dataclass
class Workload:
    name: str
    setup: Callable[[], Callable[[], None]]  # returns one step
    steps: int = 5


def _workloads(quick: bool) -> list[Workload]:  # pragma: no cover - needs a GPU
    import torch
    import torch.nn.functional as F

    dev = "cuda"
    cc = torch.cuda.get_device_capability()
    out: list[Workload] = []

    sizes = [(256, 256, 256), (1024, 1024, 1024), (4096, 4096, 4096)] if quick else [
        (m, n, k) for m in (1, 16, 128, 512, 2048, 8192) for n in (512, 2048, 8192) for k in (512, 2048, 8192)]
    dtypes = [torch.float32, torch.bfloat16, torch.float16]

    def gemm_sweep() -> Callable[[], None]:
        tensors = []
        for m, n, k in sizes:
            for dtype in dtypes:
                tensors.append((torch.randn(m, k, device=dev, dtype=dtype), torch.randn(k, n, device=dev, dtype=dtype)))
        fp8 = []
        if cc >= (8, 9) and hasattr(torch, "_scaled_mm"):
            one = torch.ones((), device=dev)
            for m, n, k in sizes:
                if m % 16 or n % 16 or k % 16:
                    continue
                a = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
                b = torch.randn(n, k, device=dev).to(torch.float8_e4m3fn).t()
                fp8.append((a, b, one))

        def step() -> None:
            for a, b in tensors:
                torch.mm(a, b)
            for a, b, scale in fp8:
                torch._scaled_mm(a, b, scale_a=scale, scale_b=scale, out_dtype=torch.bfloat16)
        return step
    out.append(Workload("gemm_sweep", gemm_sweep, steps=2))

    elem_sizes = [1 << p for p in (range(12, 25, 4) if quick else range(10, 29, 2))]

    def elementwise() -> Callable[[], None]:
        xs = [torch.randn(n, device=dev) for n in elem_sizes]

        def step() -> None:
            for x in xs:
                x + x
                x * 2.0
                F.gelu(x)
                x.sum()
                torch.softmax(x.view(-1, 1024) if x.numel() % 1024 == 0 else x, dim=-1)
                F.layer_norm(x.view(-1, 1024), (1024,)) if x.numel() % 1024 == 0 else None
        return step
    out.append(Workload("elementwise_reduction", elementwise))

    for width in ((256,) if quick else (512, 1024, 2048)):
        def transformer(width: int = width) -> Callable[[], None]:
            layer = torch.nn.TransformerEncoderLayer(width, max(width // 64, 1), 4 * width, batch_first=True,
                                                     device=dev)
            opt = torch.optim.AdamW(layer.parameters())
            x = torch.randn(8, 512, width, device=dev)

            def step() -> None:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = layer(x).float().pow(2).mean()
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            return step
        out.append(Workload(f"transformer_step_w{width}", transformer))

    def sdpa() -> Callable[[], None]:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        cases = []
        for seq in ((512, 2048) if quick else (256, 512, 1024, 2048, 4096, 8192)):
            q = torch.randn(4, 16, seq, 128, device=dev, dtype=torch.bfloat16)
            cases.append((q, q.clone(), q.clone()))

        def step() -> None:
            for q, k, v in cases:
                for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION):
                    for causal in (False, True):
                        try:
                            with sdpa_kernel(backend):
                                F.scaled_dot_product_attention(q, k, v, is_causal=causal)
                        except RuntimeError as exc:  # backend unavailable on this part
                            log.debug("sdpa %s: %s", backend, exc)
        return step
    out.append(Workload("sdpa", sdpa))

    def memcpy() -> Callable[[], None]:
        sizes_b = [1 << p for p in (range(10, 27, 8) if quick else range(10, 31, 2))]
        pairs = [(torch.empty(n, dtype=torch.uint8, pin_memory=True), torch.empty(n, dtype=torch.uint8),
                  torch.empty(n, dtype=torch.uint8, device=dev), torch.empty(n, dtype=torch.uint8, device=dev))
                 for n in sizes_b]

        def step() -> None:
            for pinned, pageable, d1, d2 in pairs:
                d1.copy_(pinned, non_blocking=True)
                d1.copy_(pageable)
                pinned.copy_(d1, non_blocking=True)
                pageable.copy_(d1)
                d2.copy_(d1)
            torch.cuda.synchronize()
        return step
    out.append(Workload("memcpy", memcpy))
    return out


def _run_workload(work: Workload, gpu: str, scratch: Path) -> list[dict[str, object]]:  # pragma: no cover
    import torch
    from torch.profiler import ProfilerActivity, profile

    step = work.setup()
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(work.steps):
        step()
    torch.cuda.synchronize()
    e2e = (time.perf_counter() - start) / work.steps
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA], record_shapes=True) as prof:
        for _ in range(work.steps):
            step()
        torch.cuda.synchronize()
    path = scratch / f"{work.name}.json"
    prof.export_chrome_trace(str(path))
    rows = rows_from_chrome_trace(json.loads(path.read_text()), gpu, work.name)
    rows.append(e2e_row(gpu, work.name, "step_s", e2e, steps=work.steps))
    return rows


def detect_gpu() -> str:  # pragma: no cover - needs a GPU
    import torch

    name = torch.cuda.get_device_name().lower()
    for needle, key in (("h200", "h200"), ("h100", "h100"), ("b200", "b200"), ("a100", "a100-80g"),
                        ("l40s", "l40s"), ("l4", "l4"), ("a40", "a40")):
        if needle in name:
            return key
    raise SystemExit(f"GPU {name!r} is not in the catalog: pass --gpu")


def main(argv: Iterable[str] | None = None) -> int:  # pragma: no cover - needs a GPU
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", help="catalog key (default: detected)")
    parser.add_argument("--out", default=str(REPO / "data"))
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    args = parser.parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    if not torch.cuda.is_available():
        log.error("no CUDA device: this script measures a real GPU")
        return 1
    gpu = get_spec(args.gpu).key if args.gpu else detect_gpu()
    out_dir = Path(args.out) / gpu
    manifest = {"gpu": gpu, "device_name": torch.cuda.get_device_name(), "torch": torch.__version__,
                "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d"), "workloads": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for work in _workloads(args.quick):
            if args.only and work.name not in args.only:
                continue
            log.info("%s ...", work.name)
            rows = _run_workload(work, gpu, Path(scratch))
            path = write_rows(rows, out_dir / f"{work.name}.jsonl.zst")
            manifest["workloads"][work.name] = {"rows": len(rows), "file": path.name}  # type: ignore[index]
            log.info("%s: %d rows -> %s", work.name, len(rows), path)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
