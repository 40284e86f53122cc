"""emulate validate: matching, per-op and end-to-end error, the ablation, the outputs.

The real trace is synthesised here (never committed as data): what a GPU run of the program
below would record, with durations chosen for the test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from timewarp_testing import compile_cuda

from emulator import validate as v
from predictors.traces import empty_row, write_rows

PROGRAM = r"""
#include <chrono>
#include <cstdio>
#include <cuda_runtime.h>

__global__ void scale_kernel(float *x, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= 2.0f;
}

int main() {
    const int n = 1 << 24;
    float *d = nullptr;
    if (cudaMalloc(&d, n * sizeof(float)) != cudaSuccess) return 3;
    cudaMemset(d, 0, n * sizeof(float));
    cudaDeviceSynchronize();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10; i++) scale_kernel<<<(n + 255) / 256, 256>>>(d, n);
    cudaDeviceSynchronize();
    auto t1 = std::chrono::steady_clock::now();
    printf("TIMING step_s %.9f\n", std::chrono::duration<double>(t1 - t0).count());
    cudaFree(d);
    return 0;
}
"""

KERNEL = "scale_kernel(float*, int)"
REAL_KERNEL_NS = 100_000
REAL_STEP_S = 10 * REAL_KERNEL_NS / 1e9 + 20e-6


def real_rows() -> list[dict[str, object]]:
    rows = [empty_row("memset", "memset", 30_000, bytes=(1 << 24) * 4, seq=0)]
    rows += [empty_row("kernel", KERNEL, REAL_KERNEL_NS, grid=[65536, 1, 1], block=[256, 1, 1], seq=i + 1)
             for i in range(10)]
    rows.append(empty_row("e2e", "step_s", int(REAL_STEP_S * 1e9)))
    return rows


def emulated(name: str, kind: str, us: float, **extra: object) -> dict[str, object]:
    return {"name": name, "kind": kind, "duration_us": us, "model": "roofline", "bytes": 0, "m": 0, "n": 0,
            "k": 0, "batch": 0, **extra}


def test_match_by_key_and_order_and_errors(tmp_path: Path) -> None:
    real = real_rows()[:-1] + [empty_row("gemm", "aten::mm", 50_000, dims=[64, 32, 16, 1, 0, 0, 0, 0])]
    emu = [emulated("memset", "memset", 40.0, bytes=(1 << 24) * 4)]
    emu += [emulated(KERNEL, "kernel", 110.0 if i % 2 else 90.0) for i in range(12)]  # 2 more than real
    emu.append(emulated("cublasSgemm_v2", "gemm", 75.0, m=64, n=32, k=16, batch=1))
    emu.append(emulated("event", "event_record", 0.0))
    pairs, unmatched_real, unmatched_emulated = v.match_ops(real, emu)
    assert len(pairs) == 12 and unmatched_real == 0 and unmatched_emulated == 2
    errors = v.op_errors(pairs, unmatched_real, unmatched_emulated)
    assert errors.median_abs_rel_error == pytest.approx(0.10)
    assert errors.p90_abs_rel_error == pytest.approx(0.1 + 0.9 * (1 / 3 - 0.1))  # numpy linear p90
    assert errors.real_total_s == pytest.approx((30_000 + 10 * REAL_KERNEL_NS + 50_000) / 1e9)
    assert errors.worst_families[0]["family"] in ("gemm", "scale_kernel")
    png = v.scatter_png(pairs, tmp_path / "s.png", "t")
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"


def test_timing_lines_and_real_trace_formats(tmp_path: Path) -> None:
    assert v.parse_timings("noise\nTIMING step_s 0.25\nTIMING  warm 1e-3 \n") == {"step_s": 0.25, "warm": 0.001}
    path = write_rows(real_rows(), tmp_path / "real.jsonl.zst")
    rows, e2e = v.load_real(path)
    assert len(rows) == 11 and e2e == {"step_s": pytest.approx(REAL_STEP_S)}
    chrome = tmp_path / "prof.json"
    chrome.write_text(json.dumps({"traceEvents": [
        {"ph": "X", "cat": "kernel", "name": KERNEL, "ts": 1.0, "dur": 100.0,
         "args": {"grid": [65536, 1, 1], "block": [256, 1, 1], "stream": 7}}]}))
    (tmp_path / "prof.json.timings.txt").write_text("TIMING step_s 0.001\n")
    rows, e2e = v.load_real(chrome)
    assert rows[0]["duration_ns"] == 100_000 and e2e == {"step_s": 0.001}


def test_validate_end_to_end(shim_lib: Path, nvcc: str, tmp_path: Path) -> None:
    source = tmp_path / "validate_app.cu"
    source.write_text(PROGRAM)
    exe = compile_cuda(nvcc, source, tmp_path)
    trace = write_rows(real_rows(), tmp_path / "real" / "h100.jsonl.zst")
    report = v.validate(trace, [str(exe)], "h100", tmp_path / "out")
    assert report.exit_status == 0 and report.ablation_exit_status == 0
    # predicted run: the roofline answered (no h100 data in a fresh checkout's tmp), ops matched
    assert report.ops.matched == 11, report.ops
    # ablation: real durations substituted, so per-op error vanishes ...
    assert report.ablation_ops is not None and report.ablation_ops.matched == 11
    assert report.ablation_ops.models.get("real") == 11
    assert report.ablation_ops.median_abs_rel_error < 0.01
    # ... and what is left end to end is the emulator's own error
    (step,) = report.end_to_end
    assert step.emulated_s is not None and step.ablation_s is not None
    assert abs(step.ablation_error) < 0.25, step  # type: ignore[arg-type]
    assert report.markdown_path.read_text().count("| step_s |") == 1
    assert report.scatter_path is not None and report.scatter_path.exists()
    assert json.loads((tmp_path / "out" / "validation.json").read_text())["ops"]["matched"] == 11
