"""cuDNN's legacy API under `emulate`, as torch calls it: nn.BatchNorm2d with cuDNN enabled runs
its training forward, backward and inference through cudnnBatchNormalization*, each one op
whose bytes are the passes it makes over the activations."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from timewarp_testing import requires_cuda_torch

from predictors.catalog import get_spec

pytestmark = requires_cuda_torch

WORKLOADS = Path(__file__).resolve().parent / "workloads"
N, C, H, W, FP32 = 32, 64, 56, 56, 4


def test_batchnorm2d_runs_through_cudnn(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(WORKLOADS / "batchnorm_cudnn.py")])
    assert run.exit_status == 0, run.stdout + run.stderr[-4000:]
    assert "RESULT done=1" in run.stdout
    assert "train_shape=32x64x56x56 grad_shape=32x64x56x56" in run.stdout
    assert run.summary["unimplemented"] == []
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if r["name"].startswith("cudnnBatch")}
    activations = N * C * H * W * FP32
    vector = C * FP32
    # training: statistics pass and normalise pass over x, y written; scale, bias, running and
    # saved mean/variance; backward: x and dy read twice, dx written; inference: x in, y out
    expected = {"cudnnBatchNormalizationForwardTrainingEx": 3 * activations + 6 * vector,
                "cudnnBatchNormalizationBackwardEx": 5 * activations + 5 * vector,
                "cudnnBatchNormalizationForwardInference": 2 * activations + 4 * vector}
    assert set(rows) == set(expected)
    spec = get_spec("h100")
    for name, nbytes in expected.items():
        row = rows[name]
        assert int(row["bytes"]) == nbytes, name
        assert (int(row["m"]), int(row["n"]), int(row["k"]), int(row["batch"])) == (N, C, H, W)
        # a memory-bound pass: no faster than HBM allows, and cuDNN's BN kernels stream at well
        # over a quarter of the bandwidth (60-90% on real GPUs): at most 4x the bound
        bound_us = nbytes / spec.hbm_bytes_per_s * 1e6
        assert bound_us <= float(row["duration_us"]) <= 4 * bound_us + spec.kernel_floor_ns / 1e3, (name, row)
