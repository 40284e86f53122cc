"""NVML utilisation and power from the virtual timeline: over NVML's 1 s sample period, the
fraction of time the device ran ops, the fraction its memory was busy (each op's bytes at the
HBM bandwidth), and a board power between a tenth of TDP (idle) and TDP by that fraction."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from predictors.catalog import get_spec

DRIVER = Path(__file__).resolve().parent / "nvml_activity.py"
IDLE_FRACTION = 0.1


def test_utilisation_and_power_follow_the_timeline(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(DRIVER)])
    assert run.exit_status == 0, run.stdout + run.stderr[-3000:]
    out = {k: float(v) for k, v in (line.split("=", 1) for line in run.stdout.splitlines() if "=" in line)}
    spec = get_spec("h100")
    tdp_mw = spec.tdp_watts * 1000
    idle_mw = IDLE_FRACTION * tdp_mw

    def power_at(busy: float) -> float:
        return tdp_mw * (IDLE_FRACTION + (1 - IDLE_FRACTION) * busy)

    # nothing ran yet
    assert (out["idle_gpu"], out["idle_memory"], out["idle_power_mw"]) == (0, 0, idle_mw)
    # right after 1.2 s of back-to-back memsets the whole 1 s window was busy
    assert out["busy_span_s"] > 1.0
    assert out["busy_gpu"] == 100
    assert power_at(0.99) <= out["busy_power_mw"] <= tdp_mw
    # memory busy = the memsets' bytes at 3.35 TB/s over their predicted duration
    memsets = [r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if r["kind"] == "memset"]
    assert len(memsets) == int(out["memsets"])
    mem_fraction = int(memsets[0]["bytes"]) / spec.hbm_bytes_per_s / (float(memsets[0]["duration_us"]) * 1e-6)
    assert abs(out["busy_memory"] - round(100 * mem_fraction)) <= 1, (out["busy_memory"], mem_fraction)
    # 0.5 s later half the window is busy: the GPU and memory fractions and the power halve
    assert abs(out["half_gpu"] - 50) <= 1
    assert abs(out["half_memory"] - 50 * mem_fraction) <= 1
    assert abs(out["half_power_mw"] - power_at(0.5)) <= 0.01 * tdp_mw
    # 2 s later the window is past all work
    assert (out["after_gpu"], out["after_memory"], out["after_power_mw"]) == (0, 0, idle_mw)
