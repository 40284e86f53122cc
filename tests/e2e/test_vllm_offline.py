"""Unmodified vLLM 0.32.0 offline inference under `emulate`: the engine starts (NVML platform
detection, FlashAttention-3 with TMA descriptors, CUDA-graph capture, a 1-rank NCCL world),
generates every requested token, and its prefill and decode steps have plausible GPU times."""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from predictors.catalog import get_spec

REPO = Path(__file__).resolve().parents[2]
VLLM_VERSION = "0.32.0"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _load_bench():  # noqa: ANN202 - the module object
    spec = importlib.util.spec_from_file_location("bench_vllm", REPO / "scripts" / "bench_vllm.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_vllm"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def _imports_vllm(python: str) -> str | None:
    """None when `python` imports vLLM with a CUDA torch, else why not."""
    probe = ("import torch, vllm; assert torch.version.cuda, 'CPU-only torch'; "
             "print(vllm.__version__)")
    try:
        proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """An interpreter with vLLM 0.32.0: $TIMEWARP_VLLM_PYTHON, else this one, installing vLLM
    into it when missing (bypassing a local find-links folder, whose CPU-only torch wheel would
    satisfy vLLM's exact torch pin)."""
    explicit = os.environ.get("TIMEWARP_VLLM_PYTHON")
    if explicit:
        why = _imports_vllm(explicit)
        if why:
            pytest.skip(f"TIMEWARP_VLLM_PYTHON={explicit} cannot import vLLM: {why}")
        return explicit
    if _imports_vllm(sys.executable) is None:
        return sys.executable
    cmd = [sys.executable, "-m", "pip", "install", "--isolated", "-q", f"vllm=={VLLM_VERSION}"]
    if CA_BUNDLE.exists():
        cmd[5:5] = ["--cert", str(CA_BUNDLE)]
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}
    install = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    why = _imports_vllm(sys.executable)
    if why:
        pytest.skip(f"vLLM {VLLM_VERSION} cannot be imported ({why}); install: "
                    f"{(install.stderr.strip().splitlines() or ['ok'])[-1]}")
    return sys.executable


def _check_run(run, prompts: int, max_tokens: int) -> list[dict[str, str]]:  # noqa: ANN001
    assert run.exit_status == 0, f"exit {run.exit_status}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-6000:]}"
    res = run.results
    assert res.get("done") == "1", run.stdout[-3000:]
    assert int(res["requests"]) == prompts
    # ignore_eos: every request generates exactly max_tokens, whatever the (unrun) sampler picked
    assert int(res["min_tokens"]) == int(res["max_tokens"]) == max_tokens
    summary = bench.json.loads((run.run_dir / "summary.json").read_text())
    assert summary["unimplemented"] == [], summary["unimplemented"]
    rows = list(csv.DictReader(io.StringIO((run.run_dir / "kernels.csv").read_text())))
    names = " ".join(r["mangled_name"] for r in rows)
    assert "FlashAttnFwdSm90" in names, "FlashAttention-3 (TMA) kernels were not launched"
    assert any(r["graph_id"] not in ("", "0") for r in rows), "no CUDA-graph replay recorded"
    return rows


@pytest.mark.slow  # in progress: the per-step decode detection is not final (see the closing note)
def test_vllm_offline_tiny(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    prompts, max_tokens = 4, 8
    model = bench.make_model_dir(vllm_python, "tiny", tmp_path / "model")
    run = bench.run_bench(model, tmp_path / "run", python=vllm_python, prompts=prompts, prompt_len=64,
                          max_tokens=max_tokens, timeout=900)
    _check_run(run, prompts, max_tokens)
    report = run.report
    assert report is not None and report.steps, f"no engine steps in the generate window: {run.results}"
    # the prefill (all prompts fit one batch), then a decode step per further token
    assert len(report.decode) == max_tokens - 1, [(s.compute_ops, s.graph_replays) for s in report.steps]
    assert report.prefill.graph_replays == 0  # FULL_DECODE_ONLY: prefill runs eagerly
    assert all(s.graph_replays >= 1 for s in report.decode), "decode steps must replay a CUDA graph"
    for s in report.steps:
        assert 0 < s.busy_us <= s.span_us + 1e-6
    # a 2-layer, 256-wide model: a decode step's GPU work is microseconds, not milliseconds
    assert all(s.busy_us < 2000 for s in report.decode), [s.busy_us for s in report.decode]


@pytest.mark.slow
def test_vllm_offline_llama_8b_decode_is_bandwidth_bound(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    prompts, max_tokens = 4, 8
    model = bench.make_model_dir(vllm_python, "llama-3.1-8b", tmp_path / "model")
    run = bench.run_bench(model, tmp_path / "run", python=vllm_python, prompts=prompts, prompt_len=128,
                          max_tokens=max_tokens, extra_args=["--gpu-memory-utilization", "0.9"], timeout=1800)
    _check_run(run, prompts, max_tokens)
    report = run.report
    assert report is not None and len(report.decode) >= 1
    # every decode step reads all weights once: 8.03e9 params x 2 bytes / HBM bandwidth
    floor_ms = 8.03e9 * 2 / get_spec("h100").hbm_bytes_per_s * 1e3
    decode_ms = sorted(s.busy_us / 1e3 for s in report.decode)
    assert decode_ms[len(decode_ms) // 2] >= 0.95 * floor_ms, (decode_ms, floor_ms)
    assert decode_ms[-1] < 10 * floor_ms, (decode_ms, floor_ms)
    assert report.prefill.busy_us / 1e3 >= 0.95 * floor_ms
