"""An asyncio client and server in two processes on one causal virtual clock (issue part 6):
latencies equal the server's step plus queueing, and 60 virtual seconds take little wall time."""

from __future__ import annotations

import sys
from pathlib import Path

from timewarp_testing import requires_cuda_torch

WORKLOAD = Path(__file__).resolve().parent / "workloads" / "clock_asyncio_serving.py"


def parse(stdout: str) -> tuple[dict[str, float], list[tuple[float, float]]]:
    results: dict[str, float] = {}
    lat = []
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            for field in line.split()[1:]:
                key, _, value = field.partition("=")
                results[key] = float(value)
        elif line.startswith("LAT "):
            _, arrival, latency = line.split()
            lat.append((float(arrival), float(latency)))
    return results, lat


def fifo_model(arrivals: list[float], step: float) -> list[float]:
    """Latencies of a single FIFO server with a fixed service time."""
    free_at, out = 0.0, []
    for at in arrivals:
        start = max(at, free_at)
        free_at = start + step
        out.append(free_at - at)
    return out


def test_asyncio_poisson_client_sees_step_latencies(emulate) -> None:  # noqa: ANN001
    step = 0.05
    run = emulate([sys.executable, str(WORKLOAD), "7", "5", "60", str(step)], timeout=120)
    assert run.exit_status == 0, run.stderr[-4000:]
    results, lat = parse(run.stdout)
    assert results["requests"] == len(lat) > 200
    assert abs(results["step_s"] - step) < 0.005
    model = fifo_model([a for a, _ in lat], step)
    checked, off = 0, []
    for (arrival, measured), expected in zip(lat, model, strict=True):
        assert measured >= step - 1e-4, f"request at {arrival:.3f} s answered before its step ended"
        if arrival < 5.0:
            continue   # warm-up: first calls of asyncio's stream code cost real CPU the model omits
        checked += 1
        if measured > expected + 0.03:
            off.append((arrival, measured, expected))
    # Known residual race (docs/design.md): rarely a jump passes a reply in flight.
    assert len(off) <= checked // 20, off
    assert run.summary["virtual_time_s"] >= 55.0  # the last Poisson arrival falls before 60 s
    assert run.summary["wall_time_s"] < 15, "60 virtual seconds of mostly idle serving must take little wall time"


@requires_cuda_torch
def test_asyncio_client_with_torch_gpu_step(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(WORKLOAD), "3", "2", "20", "0", "--torch"], timeout=300)
    assert run.exit_status == 0, run.stderr[-4000:]
    results, lat = parse(run.stdout)
    step = results["step_s"]
    assert step > 0, "the GPU step must take predicted time"
    measured = sorted(latency for _, latency in lat[1:])
    assert measured[0] >= step * 0.5
    assert measured[len(measured) // 2] <= step * 2 + 0.03
