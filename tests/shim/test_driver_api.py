"""The driver API under `emulate`, as Triton's launcher drives it: a cubin loaded with
cuModuleLoadData, a function looked up and launched (kernelParams, `extra` and
cuLaunchKernelEx forms), events timing it and stream queries before and after a sync."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
VENDOR_INCLUDE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "nvidia" / "cu13" / "include"

CUDA_ERROR_NOT_READY = 600
CUDA_ERROR_NOT_FOUND = 500
CUDA_ERROR_INVALID_VALUE = 1


@pytest.fixture(scope="session")
def driver_program(nvcc: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not (VENDOR_INCLUDE / "cuda.h").exists():
        pytest.skip("needs a C compiler and cuda.h")
    out = tmp_path_factory.mktemp("driver")
    cubin = out / "drv_kernels.cubin"
    subprocess.run([nvcc, "-arch=sm_90", "-cubin", "-o", str(cubin), str(CUDA_DIR / "drv_kernels.cu")],
                   check=True, capture_output=True, text=True)
    exe = out / "drv_launch"
    subprocess.run([cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", f"-I{VENDOR_INCLUDE}", "-o", str(exe),
                    str(CUDA_DIR / "drv_launch.c"), "-ldl"], check=True, capture_output=True, text=True)
    return exe, cubin


def values(run) -> dict[str, str]:  # noqa: ANN001 - conftest.EmulatedRun
    assert run.exit_status == 0, run.stderr[-3000:]
    return dict(line.split(" ", 1) for line in run.stdout.splitlines() if " " in line)


def test_module_load_launch_events(emulate, driver_program: tuple[Path, Path]) -> None:  # noqa: ANN001
    exe, cubin = driver_program
    run = emulate([str(exe), str(cubin)])
    out = values(run)
    assert out["name"] == "scale"
    assert int(out["missing_function"]) == CUDA_ERROR_NOT_FOUND
    assert int(out["regs"]) > 0
    assert int(out["max_threads"]) == 1024
    assert int(out["max_dynamic_smem"]) == 100 * 1024
    # scale(float* x, int n, float a)
    params = [line.split()[1:] for line in run.stdout.splitlines() if line.startswith("param ")]
    assert params == [["0", "0", "8"], ["1", "8", "4"], ["2", "12", "4"]]
    assert int(out["occupancy_blocks"]) == 8  # 2048 threads per SM / 256
    assert int(out["cluster_size"]) == 8      # Hopper's portable cluster size: the block fits an SM
    assert int(out["global_bytes"]) == 148
    assert int(out["bad_block"]) == CUDA_ERROR_INVALID_VALUE
    assert int(out["query_before"]) == CUDA_ERROR_NOT_READY
    assert int(out["query_after"]) == 0
    assert float(out["elapsed_ms"]) > 0
    assert out["roundtrip"] == "1"
    assert out["memset_d32"] == "1.0 1.0"

    with (run.run_dir / "kernels.csv").open() as f:
        rows = [row for row in csv.DictReader(f) if row["name"] == "scale"]
    assert len(rows) == int(out["launches"])
    # the kernels run back to back on one stream and the events span them
    span_ms = (float(rows[-1]["end_us"]) - float(rows[0]["start_us"])) / 1e3
    assert float(out["elapsed_ms"]) >= span_ms * 0.99
    # the `extra` form found its pointer through the cubin's layout, like kernelParams
    assert {row["bytes"] for row in rows[:-1]} == {rows[0]["bytes"]}
    assert int(rows[0]["bytes"]) > 0
