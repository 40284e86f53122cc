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


def test_lstm_runs_through_cudnn_as_its_gemms(emulate) -> None:  # noqa: ANN001
    seq, batch, inp, hidden, layers, dirs, gates = 64, 16, 256, 512, 2, 2, 4
    run = emulate([sys.executable, str(WORKLOADS / "lstm_cudnn.py")])
    assert run.exit_status == 0, run.stdout + run.stderr[-4000:]
    assert "RESULT out_shape=64x16x1024 h_shape=4x16x512 grad_shape=64x16x256 eval_shape=64x16x1024" in run.stdout
    assert run.summary["unimplemented"] == []
    rows = [r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if r["name"].startswith("cudnn:rnn")]
    shapes: dict[str, list[tuple[int, int, int]]] = {}
    for r in rows:
        shapes.setdefault(r["name"], []).append((int(r["m"]), int(r["n"]), int(r["k"])))
    gh, steps, pseudo_layers = gates * hidden, seq * batch, layers * dirs
    inputs = [inp] * dirs + [hidden * dirs] * (pseudo_layers - dirs)  # per pseudo-layer
    # two forwards (training, inference): per pseudo-layer one input GEMM over all steps and
    # one recurrent GEMM per step; backward data the transposed shapes; backward weights one
    # GEMM per weight matrix over all steps
    assert sorted(shapes["cudnn:rnn_fwd_input"]) == sorted([(gh, steps, k) for k in inputs] * 2)
    assert shapes["cudnn:rnn_fwd_recurrent"] == [(gh, batch, hidden)] * (2 * pseudo_layers * seq)
    assert sorted(shapes["cudnn:rnn_bwd_data_input"]) == sorted((k, steps, gh) for k in inputs)
    assert shapes["cudnn:rnn_bwd_data_recurrent"] == [(hidden, batch, gh)] * (pseudo_layers * seq)
    assert sorted(shapes["cudnn:rnn_bwd_weights_input"]) == sorted((gh, k, steps) for k in inputs)
    assert shapes["cudnn:rnn_bwd_weights_recurrent"] == [(gh, hidden, steps)] * pseudo_layers
    spec = get_spec("h100")
    for r in rows:
        m, n, k = int(r["m"]), int(r["n"]), int(r["k"])
        assert int(r["flops"]) == 2 * m * n * k
        assert int(r["bytes"]) == (m * k + k * n + m * n) * FP32
        # fp32 GEMMs: no faster than the HBM traffic or the tensor-core TF32 peak allow, and no
        # slower than a third of the plain fp32 peak of the SMs its 128x128 output tiles occupy
        # (256x1024 is 16 tiles on 132 SMs: without split-K most SMs idle) plus the launch floor
        floor_us = max(int(r["bytes"]) / spec.hbm_bytes_per_s, int(r["flops"]) / spec.peak_tf32_flops) * 1e6
        tiles = -(-m // 128) * -(-n // 128)
        busy_fraction = min(1.0, tiles / spec.sm_count)
        ceiling_us = int(r["flops"]) / (spec.peak_fp32_flops / 3 * busy_fraction) * 1e6 + spec.kernel_floor_ns / 1e3
        assert floor_us * 0.999 <= float(r["duration_us"]) <= max(ceiling_us, 4 * floor_us), r
