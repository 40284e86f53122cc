"""Virtual time in one process: sleeping takes no wall time, every clock moves together, and no
reader ever sees time go backward."""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from timewarp_testing import compile_cuda

CUDA_DIR = Path(__file__).resolve().parent.parent / "shim" / "cuda"
_RESULT_FIELD = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")

SLEEP_SCRIPT = textwrap.dedent("""
    import time
    wall0, mono0, perf0 = time.time(), time.monotonic(), time.perf_counter()
    time.sleep(30)
    wall1, mono1, perf1 = time.time(), time.monotonic(), time.perf_counter()
    print(f"RESULT time_delta={wall1 - wall0:.6f}")
    print(f"RESULT monotonic_delta={mono1 - mono0:.6f}")
    print(f"RESULT perf_counter_delta={perf1 - perf0:.6f}")
""")

MONOTONE_SCRIPT = textwrap.dedent("""
    import time
    reads, backwards = 100_000, 0
    first = prev = time.monotonic_ns()
    for i in range(reads):
        now = time.monotonic_ns()
        if now < prev:
            backwards += 1
        prev = now
        if i % 1000 == 999:
            time.sleep(0.002)  # each sleep lets virtual time jump
    print(f"RESULT reads={reads} backwards={backwards} span_ns={prev - first}")
""")


def result_map(stdout: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            merged.update({k: v.strip() for k, v in _RESULT_FIELD.findall(line[len("RESULT "):])})
    return merged


def test_sleep_takes_virtual_not_wall_time(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, "-c", SLEEP_SCRIPT])
    assert run.exit_status == 0, run.stderr[-4000:]
    res = result_map(run.stdout)
    for clock in ("time_delta", "monotonic_delta", "perf_counter_delta"):
        assert 30.0 <= float(res[clock]) < 31.0, f"{clock}: {res[clock]}"
    assert run.summary["wall_time_s"] < 5, "a 30 s sleep must return at once in wall time"
    assert run.summary["virtual_time_s"] >= 30.0


def test_c_clock_reads_are_monotone(emulate, nvcc: str, cuda_bin_dir: Path) -> None:  # noqa: ANN001
    exe = compile_cuda(nvcc, CUDA_DIR / "app_clock_monotone.cu", cuda_bin_dir)
    reads_per_thread = 500_000
    run = emulate([str(exe), str(reads_per_thread)])
    assert run.exit_status == 0, run.stderr[-4000:]
    res = result_map(run.stdout)
    assert int(res["reads"]) == 2 * reads_per_thread
    assert int(res["backwards"]) == 0, "virtual CLOCK_MONOTONIC went backward"
    # Each thread slept 1 ms this many times: its clock advanced at least that much.
    slept_ns = int(res["sleeps_per_thread"]) * 1_000_000
    assert int(res["span_a_ns"]) >= slept_ns
    assert int(res["span_b_ns"]) >= slept_ns


def test_python_monotonic_ns_is_monotone(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, "-c", MONOTONE_SCRIPT])
    assert run.exit_status == 0, run.stderr[-4000:]
    res = result_map(run.stdout)
    assert int(res["backwards"]) == 0, "time.monotonic_ns went backward"
    assert int(res["span_ns"]) >= 100 * 2_000_000
