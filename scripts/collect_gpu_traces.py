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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from predictors.catalog import get_spec  # noqa: E402
from predictors.profiler_trace import (  # noqa: E402,F401 - re-exported: the script's pure part
    GEMM_OPS,
    e2e_row,
    gemm_dims,
    memcpy_kind,
    rows_from_chrome_trace,
)
from predictors.traces import write_rows  # noqa: E402

log = logging.getLogger("collect_gpu_traces")

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
