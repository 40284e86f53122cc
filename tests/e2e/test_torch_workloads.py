"""PyTorch workloads under `emulate` (CUDA torch, no GPU): they run to the end, their CUDA event
timings are plausible, and the run records every GPU op with a name and a predicted duration."""

from __future__ import annotations

import csv
import io
import os
import re
import sys
from pathlib import Path

from timewarp_testing import requires_cuda_torch

from predictors.catalog import get_spec

pytestmark = requires_cuda_torch

WORKLOADS = Path(__file__).resolve().parent / "workloads"
GIB = 1 << 30
COMPUTE_KINDS = {"kernel", "gemm", "conv", "attention"}
_RESULT_FIELD = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")


def parse_results(stdout: str) -> list[dict[str, str]]:
    """Every `RESULT k=v k=v` line as a dict (a value runs to the next `key=`)."""
    return [{k: v.strip() for k, v in _RESULT_FIELD.findall(line[len("RESULT "):])}
            for line in stdout.splitlines() if line.startswith("RESULT ")]


def result_map(stdout: str) -> dict[str, str]:
    merged: dict[str, str] = {}
    for row in parse_results(stdout):
        merged.update(row)
    return merged


def run_workload(emulate, name: str, *args: str, tmp_path: Path | None = None, gpu: str = "h100"):  # noqa: ANN001, ANN201
    """Run workloads/NAME.py with this interpreter under emulate; check what every workload must show."""
    env = dict(os.environ)
    if tmp_path is not None:  # compile caches in the test's tmp dir, never the user's
        env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
        env["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path / "inductor-cache")
    run = emulate([sys.executable, str(WORKLOADS / f"{name}.py"), *args], gpu=gpu, env=env)
    assert run.exit_status == 0, (f"exit {run.exit_status}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-6000:]}\n"
                                  f"crash reports:\n{run.crash_reports()}")
    assert result_map(run.stdout).get("done") == "1", run.stdout
    rows = list(csv.DictReader(io.StringIO(run.kernels_csv())))
    compute = [r for r in rows if r["kind"] in COMPUTE_KINDS]
    assert compute, "no GPU work recorded"
    for r in compute:
        assert r["name"], f"op without a name: {r}"
        assert 0 < float(r["duration_us"]) < 1e6, f"implausible predicted duration: {r}"
    missing = run.summary["unimplemented"]
    assert missing == [], f"unimplemented APIs were called: {missing}"
    run.rows = rows
    return run


def test_transformer_training_loop(emulate) -> None:  # noqa: ANN001
    steps = 4
    run = run_workload(emulate, "train_transformer", str(steps))
    res = result_map(run.stdout)
    assert "H100" in res["device_name"]
    step_ms = [float(r["ms"]) for r in parse_results(run.stdout) if "step" in r]
    assert len(step_ms) == steps
    assert all(0.005 < ms < 1000 for ms in step_ms), f"implausible step times: {step_ms}"
    assert sum(step_ms) / 1e3 <= run.summary["virtual_time_s"]
    gemms = [r for r in run.rows if r["kind"] == "gemm"]
    # forward 2 layers x 4 linears + head, and twice that backward, per step
    assert len(gemms) >= 20 * steps, f"{len(gemms)} GEMMs for {steps} steps"
    tokens = 8 * 128
    assert all(r["m"] and r["n"] and r["k"] for r in gemms), "GEMM rows must carry m, n, k"
    shapes = {tuple(sorted((int(float(r["m"])), int(float(r["n"])), int(float(r["k"]))))) for r in gemms}
    assert (256, 256, tokens) in shapes or (256, 768, tokens) in shapes, f"no attention projection GEMM: {shapes}"
    assert (256, 1024, tokens) in shapes, f"no FFN / head GEMM of the expected shape: {shapes}"
    spec = get_spec("h100")
    for r in gemms:
        if float(r["flops"]) > 0:
            assert float(r["duration_us"]) * 1e-6 >= float(r["flops"]) / spec.peak_bf16_flops * 0.999, r
    names = {r["name"] for r in run.rows if r["kind"] == "kernel"}
    assert len(names) >= 10, f"expected many distinct kernels (layer norm, softmax, adam...): {sorted(names)}"
    assert not any(n.startswith("_Z") for n in names), "kernel names must be demangled"


def test_conv_runs_through_cudnn(emulate) -> None:  # noqa: ANN001
    run = run_workload(emulate, "conv_cudnn")
    res = result_map(run.stdout)
    assert res["cudnn_available"] == "1"
    assert int(res["cudnn_version"]) >= 90000
    assert float(res["fwd_bwd_ms"]) > 0
    assert res["grad_shape"] == "(64, 3, 3, 3)"
    convs = [r for r in run.rows if r["kind"] == "conv"]
    # two forward convolutions, their weight gradients and the data gradients
    assert len(convs) >= 4, [(r["kind"], r["name"]) for r in run.rows]


def test_scaled_dot_product_attention(emulate, record_property) -> None:  # noqa: ANN001
    run = run_workload(emulate, "sdpa")
    res = result_map(run.stdout)
    assert float(res["default_ms"]) > 0
    backends = {r["backend"]: r for r in parse_results(run.stdout) if "backend" in r}
    record_property("sdpa_backends", {k: v["status"] for k, v in backends.items()})
    for label in ("flash", "efficient", "math"):
        assert backends[label]["status"] == "ok", f"{label}: {backends[label]}\n{run.stdout}"
        assert float(backends[label]["ms"]) > 0
    attention = [r for r in run.rows if r["kind"] == "attention"
                 or re.search(r"flash|fmha|attention|efficient", r["name"], re.IGNORECASE)]
    assert attention, "no attention op recorded"
    record_property("sdpa_default_ops", sorted({r["name"][:80] for r in attention}))


def test_torch_compile_launches_triton_kernels(emulate, tmp_path: Path) -> None:  # noqa: ANN001
    run = run_workload(emulate, "compile_triton", tmp_path=tmp_path)
    calls = [r for r in parse_results(run.stdout) if "call" in r]
    assert len(calls) == 3
    assert all(float(r["ms"]) > 0 and r["shape"] == "(1024,)" for r in calls)
    triton = [r for r in run.rows if r["name"].startswith("triton_")]
    assert len(triton) >= 3, sorted({r["name"] for r in run.rows})
    assert all(r["model"] != "floor" for r in triton)


def test_cuda_graph_capture_and_replay(emulate) -> None:  # noqa: ANN001
    run = run_workload(emulate, "cuda_graph")
    res = result_map(run.stdout)
    one, ten = float(res["one_replay_ms"]), float(res["ten_replays_ms"])
    assert one > 0 and float(res["eager_ms"]) > 0
    assert ten > 5 * one, (one, ten)
    replayed = [r for r in run.rows if int(r["graph_id"]) != 0]
    replays = int(res["replays"])
    assert len(replayed) >= 3 * replays, f"{len(replayed)} replayed ops for {replays} replays"
    assert sum(r["kind"] == "gemm" for r in replayed) >= 2 * replays
    assert res["out_shape"] == "(256, 512)"


def test_small_tensors_round_trip(emulate) -> None:  # noqa: ANN001
    run = run_workload(emulate, "item_roundtrip")
    res = result_map(run.stdout)
    assert float(res["item"]) == 42.0
    assert res["list_ok"] == "1"
    assert res["copy_ok"] == "1"
    assert res["copy_into_ok"] == "1"
    assert int(res["memory_allocated"]) > 0


def test_out_of_memory_is_predicted(emulate) -> None:  # noqa: ANN001
    run = run_workload(emulate, "oom")
    res = result_map(run.stdout)
    spec = get_spec("h100")
    assert int(res["total"]) == spec.memory_bytes
    assert res["oom"] == "1", "a 100 GiB tensor must not fit on an H100"
    # the message holds `key=value` text of its own: take the whole line
    message = next(line for line in run.stdout.splitlines() if line.startswith("RESULT message="))
    assert "Tried to allocate 100.00 GiB" in message, message
    assert f"total capacity of {spec.memory_bytes / GIB:.2f} GiB" in message, message
    assert res["after_oom_alloc"] == "1"


def test_expandable_segments(emulate) -> None:  # noqa: ANN001
    run = run_workload(emulate, "expandable")
    res = result_map(run.stdout)
    assert int(res["max_allocated"]) >= 7 * GIB + GIB + 300 * (1 << 20)
    assert int(res["reserved"]) >= int(res["allocated"]) > 0
    assert int(res["free_drop"]) >= 20 * GIB
    assert int(res["free_end"]) >= int(res["free_before"])
    assert int(res["total"]) == get_spec("h100").memory_bytes
    assert res["oom"] == "1"
    # Small tensors live in mapped cuMem ranges here: their data must survive too.
    assert float(res["item"]) == 42.0


def test_training_step_is_slower_on_a_smaller_gpu(emulate) -> None:  # noqa: ANN001
    gpu = "l4"
    h100 = run_workload(emulate, "train_transformer", "2")
    other = run_workload(emulate, "train_transformer", "2", gpu=gpu)
    gpu_s = {name: sum(float(r["duration_us"]) for r in run.rows if r["kind"] in COMPUTE_KINDS)
             for name, run in (("h100", h100), (gpu, other))}
    assert gpu_s[gpu] > gpu_s["h100"], gpu_s
