"""Programs with a statically linked CUDA runtime under `emulate`: they reach the driver through
its private export tables (cuGetExportTable, shim/src/api_driver_export.c), which they check
(an integrity hash over the tables, the process and the devices) before serving their first call.

Two such runtimes: cuda-python's `cuda.bindings.runtime` (a dependency of torch, so in every
environment setup makes) and nvcc's default `-cudart static`, compared with the same program
built against the shared runtime.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from timewarp_testing import EmulatedRun, compile_cuda

from predictors.catalog import get_spec

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
PROGRAM = Path(__file__).resolve().parent / "static_runtime_program.py"
GPUS = 2
CUDA_ERROR_NOT_SUPPORTED = 801
N_FLOATS, BLOCK = 1024, 128   # static_runtime_program.py's launch

_RESULT_FIELD = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")
requires_cuda_bindings = pytest.mark.skipif(importlib.util.find_spec("cuda.bindings") is None,
                                            reason="needs cuda-python (cuda-bindings, a dependency of CUDA torch)")


def results(run: EmulatedRun) -> dict[str, str]:
    assert run.exit_status == 0, f"exit {run.exit_status}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    merged: dict[str, str] = {}
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            merged.update((k, v.strip()) for k, v in _RESULT_FIELD.findall(line[len("RESULT "):]))
    return merged


def kernels(run: EmulatedRun) -> list[dict[str, str]]:
    return [r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if r["kind"] == "kernel"]


def assert_tables_complete(run: EmulatedRun) -> None:
    assert run.summary["unimplemented"] == [], run.summary["unimplemented"]
    assert "unknown table" not in run.stderr, run.stderr[-3000:]


@pytest.fixture(scope="module")
def cubin(nvcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export_tables") / "drv_kernels.cubin"
    subprocess.run([nvcc, "-arch=sm_90", "-cubin", "-o", str(out), str(CUDA_DIR / "drv_kernels.cu")],
                   check=True, capture_output=True, text=True)
    return out


@requires_cuda_bindings
def test_cuda_python_runtime_runs_on_the_export_tables(emulate, cubin: Path) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(PROGRAM), str(cubin)], extra=["--gpus", str(GPUS)])
    res = results(run)
    spec = get_spec("h100")
    assert res["device_count"] == str(GPUS)
    assert res["name"] == spec.name
    assert int(res["sm_count"]) == spec.sm_count
    assert int(res["total_mem"]) == spec.memory_bytes
    assert res["cc"] == f"{spec.cc_major}.{spec.cc_minor}"
    # bytes written through the static runtime come back through it (host-backed memory)
    assert res["roundtrip_ok"] == "1" and res["primary_active"] == "1"
    assert int(res["allocated"]) >= 2 * (64 << 10)
    assert res["current_device"] == "1" and res["pointer_device"] == "1"
    assert res["global_bytes"] == str(37 * 4) and res["global_ok"] == "1"
    assert res["done"] == "1" and res["end_complete"] == "1"
    (scale,) = [k for k in kernels(run) if k["name"] == "scale"]
    assert scale["grid"] == f"{N_FLOATS // BLOCK}x1x1" and scale["block"] == f"{BLOCK}x1x1"
    assert scale["device"] == "0" and scale["model"] != "floor"
    # the events bracket the graph's kernel: at least its predicted duration apart
    assert float(res["elapsed_ms"]) * 1e3 >= float(scale["duration_us"]) > 0
    assert_tables_complete(run)


@requires_cuda_bindings
def test_export_table_lookup_by_symbol_and_entry_point(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(PROGRAM), "lookup"])
    res = results(run)
    assert res["proc_address_matches"] == "1" and res["entry_point_matches"] == "1"
    assert res["cudart_status"] == "0" and res["cudart_table_bytes"] == str(13 * 8)
    assert res["unknown_status"] == str(CUDA_ERROR_NOT_SUPPORTED) and res["unknown_table"] == "0"
    unknown = "cuGetExportTable {01234567-89ab-cdef-0123-456789abcdef}"
    assert run.summary["unimplemented"] == [{"name": unknown, "count": 1}]
    assert "unknown table" in run.stderr


def test_static_cudart_program_matches_the_shared_build(emulate, nvcc: str, tmp_path: Path) -> None:  # noqa: ANN001
    """nvcc's default (-cudart static) build of app_kernels.cu launches the same kernels, on the same
    grids, with the same predicted durations, as its -cudart shared build (tests/shim/test_cuda_programs.py)."""
    shared = compile_cuda(nvcc, CUDA_DIR / "app_kernels.cu", tmp_path)
    static = tmp_path / "app_kernels_static"
    subprocess.run([nvcc, "-cudart", "static", "-arch=sm_90", "-o", str(static), str(CUDA_DIR / "app_kernels.cu")],
                   check=True, capture_output=True, text=True)
    assert b"libcudart.so" not in static.read_bytes()   # its runtime is inside: the shim cannot stand in for it
    runs = {"shared": emulate([str(shared)]), "static": emulate([str(static)])}
    launched = {}
    for build, run in runs.items():
        assert results(run)["done"] == "1"
        launched[build] = sorted((k["mangled_name"], k["grid"], k["block"], k["duration_us"]) for k in kernels(run))
    assert len(launched["static"]) == 10, launched["static"]
    assert launched["static"] == launched["shared"]
    assert_tables_complete(runs["static"])
