"""torch.profiler under `emulate`: Kineto reads GPU time through the shim's CUPTI, so the Kineto
trace a user exports has the emulator's GPU ops with their virtual times, linked to the CPU ops
that issued them, and Holistic Trace Analysis loads it."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from timewarp_testing import requires_cuda_torch

pytestmark = requires_cuda_torch

WORKLOADS = Path(__file__).resolve().parent / "workloads"
GPU_CATEGORIES = {"kernel", "gpu_memcpy", "gpu_memset"}
# Kineto maps CUPTI timestamps through a TSC-to-clock rate it fits over ~1 ms of back-to-back
# clock reads at configure (ApproximateClockToUnixTimeConverter): with ~100-500 ns per read under
# the shim that rate is good to a few 1e-4 (3e-4 seen), the same on a real GPU. Allow 2e-3.
RATE_TOLERANCE = 2e-3
ROUNDING_US = 0.002  # Kineto writes microseconds with 3 decimals

HTA_CHECK = """
import json, sys
from hta.trace_analysis import TraceAnalysis
analysis = TraceAnalysis(trace_dir=sys.argv[1])
breakdown = analysis.get_temporal_breakdown(visualize=False)
print(json.dumps({"compute_us": float(breakdown["compute_time(us)"][0]),
                  "idle_us": float(breakdown["idle_time(us)"][0])}))
"""


@pytest.mark.xfail(strict=False, reason="clock.c busy-poll detection takes Kineto's 2000-read clock "
                   "calibration for a spinning thread, and the jumps it allows corrupt Kineto's TSC fit "
                   "(reported to the lead; test_cupti.py checks the CUPTI records without Kineto)")
def test_kineto_trace_has_the_emulated_gpu_ops(emulate, tmp_path: Path) -> None:  # noqa: ANN001
    trace_dir = tmp_path / "kineto"
    trace_dir.mkdir()
    trace_path = trace_dir / "trace.json"
    run = emulate([sys.executable, str(WORKLOADS / "profiler_kineto.py"), str(trace_path)])
    assert run.exit_status == 0, run.stdout + run.stderr[-4000:]
    assert "RESULT done=1" in run.stdout
    events = json.loads(trace_path.read_text())["traceEvents"]
    gpu = [e for e in events if e.get("cat") in GPU_CATEGORIES]
    rows = {int(r["seq"]): r for r in csv.DictReader(io.StringIO(run.kernels_csv()))}

    # exactly the ops issued inside the profiled region: 3 x (sgemm, relu, upload, zero fill)
    correlations = sorted(int(e["args"]["correlation"]) for e in gpu)
    first = correlations[0]
    assert correlations == sorted(seq for seq in rows if seq >= first), "profiled ops and emulated ops differ"
    assert len(gpu) == 12
    first_event = min(gpu, key=lambda e: float(e["ts"]))
    first_row = rows[int(first_event["args"]["correlation"])]
    span_us = max(float(r["end_us"]) for s, r in rows.items() if s >= first) - float(first_row["start_us"])
    for e in gpu:
        row = rows[int(e["args"]["correlation"])]
        duration = float(row["duration_us"])
        assert abs(float(e["dur"]) - duration) <= RATE_TOLERANCE * duration + ROUNDING_US, (e, row)
        offset = float(e["ts"]) - float(first_event["ts"])
        assert abs(offset - (float(row["start_us"]) - float(first_row["start_us"]))) <= \
            RATE_TOLERANCE * span_us + ROUNDING_US, (e, row)
        if e["cat"] == "kernel":
            assert e["name"] == row["name"] or e["name"] == row["mangled_name"], (e["name"], row["name"])
    # every GPU op links to the CPU op that issued it
    cpu_ids = {e["args"].get("External id") for e in events if e.get("cat") == "cpu_op"}
    assert all(e["args"].get("External id") in cpu_ids for e in gpu)
    runtime = {int(e["args"]["correlation"]) for e in events if e.get("cat") == "cuda_runtime"}
    assert set(correlations) <= runtime

    # Holistic Trace Analysis loads it; its compute time is the profiled kernels' time
    hta_python = os.environ.get("TIMEWARP_HTA_PYTHON", sys.executable)
    proc = subprocess.run([hta_python, "-c", HTA_CHECK, str(trace_dir)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hta = json.loads(proc.stdout.strip().splitlines()[-1])
    kernel_us = sum(float(e["dur"]) for e in gpu if e["cat"] == "kernel")
    assert abs(hta["compute_us"] - kernel_us) <= 1.0 * len(gpu), (hta, kernel_us)
