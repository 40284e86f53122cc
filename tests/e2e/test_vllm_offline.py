"""Unmodified vLLM 0.32.0 offline inference under `emulate`: the engine starts (NVML platform
detection, FlashAttention-3 with TMA descriptors, CUDA-graph capture, a 1-rank NCCL world),
generates every requested token, and its prefill and decode steps have plausible GPU times."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from frameworks import VLLM_0_32, interpreter, load_bench_vllm

from predictors.catalog import get_spec

REPO = Path(__file__).resolve().parents[2]


bench = load_bench_vllm()


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """vLLM 0.32.0's interpreter: $TIMEWARP_VLLM_PYTHON, else .venv-vllm (scripts/setup.sh makes it;
    a missing one fails the test, tests/e2e/frameworks.py)."""
    return interpreter(VLLM_0_32)


def _check_run(run, prompts: int, prompt_len: int, max_tokens: int) -> dict[str, list[dict]]:  # noqa: ANN001
    """The run's invariants; returns summary.json's steps by phase."""
    assert run.exit_status == 0, f"exit {run.exit_status}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-6000:]}"
    res = run.results
    assert res.get("done") == "1", run.stdout[-3000:]
    assert int(res["requests"]) == prompts
    # ignore_eos: every request generates exactly max_tokens, whatever the (unrun) sampler picked
    assert int(res["min_tokens"]) == int(res["max_tokens"]) == max_tokens
    summary = run.summary
    assert summary["unimplemented"] == [], summary["unimplemented"]
    rows = list(csv.DictReader(io.StringIO((run.run_dir / "kernels.csv").read_text())))
    names = " ".join(r["mangled_name"] for r in rows)
    assert "FlashAttnFwdSm90" in names, "FlashAttention-3 (TMA) kernels were not launched"
    assert any(r["graph_id"] not in ("", "0") for r in rows), "no CUDA-graph replay recorded"

    steps = run.steps
    assert steps["window"] == "cudaProfilerStart", steps  # vLLM's profiler range around generate()
    by_phase = {p: run.phase_steps(p) for p in ("prefill", "decode", "other")}
    shape = [(s["phase"], s["tokens"], s["sequences"], s["graphs"]) for s in steps["list"]]
    assert not by_phase["other"], shape
    # the engine may start on the first request before the others arrive (two prefill steps);
    # after the last prefill, each further token of the last requests is one decode step
    assert by_phase["prefill"] and sum(s["tokens"] for s in by_phase["prefill"]) >= prompts * prompt_len, shape
    assert len(by_phase["decode"]) >= max_tokens - 1, shape
    assert steps["count"] == len(by_phase["prefill"]) + len(by_phase["decode"]) <= max_tokens + prompts, shape
    # a decode step runs one token per sequence, replayed from a captured CUDA graph
    assert all(s["graphs"] >= 1 and s["tokens"] < 2 * s["sequences"] for s in by_phase["decode"]), shape
    for s in steps["list"]:
        assert 0 < s["busy_us"] <= s["span_us"] + 1e-6, s
    for phase in ("prefill", "decode"):
        stats = steps["by_phase"][phase]
        assert stats["count"] == len(by_phase[phase])
        assert stats["busy_us"]["median"] <= stats["busy_us"]["p90"] <= stats["busy_us"]["max"]
    return by_phase


def test_vllm_offline_tiny(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    """vLLM's default settings: Dynamo + Inductor, FULL_AND_PIECEWISE CUDA graphs, 51 sizes."""
    prompts, prompt_len, max_tokens = 4, 64, 8
    model = bench.make_model_dir(vllm_python, "tiny", tmp_path / "model")
    run = bench.run_bench(model, tmp_path / "run", python=vllm_python, prompts=prompts, prompt_len=prompt_len,
                          max_tokens=max_tokens, compile_mode="vllm", capture_sizes="", timeout=1200)
    by_phase = _check_run(run, prompts, prompt_len, max_tokens)
    # prefills replay the piecewise graphs (split at attention), each decode one full graph
    assert all(s["graphs"] >= 2 for s in by_phase["prefill"]), by_phase["prefill"]
    assert all(s["graphs"] == 1 for s in by_phase["decode"]), by_phase["decode"]
    # a 2-layer, 256-wide model: a decode step's GPU work is microseconds, not milliseconds
    assert all(s["busy_us"] < 2000 for s in by_phase["decode"]), [s["busy_us"] for s in by_phase["decode"]]


@pytest.mark.slow  # about 2.5 min on 2 cores with empty compile caches (docs/vllm.md)
def test_vllm_offline_llama_8b_decode_is_bandwidth_bound(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    """Llama-3.1-8B, vLLM's default settings: a decode step reads every weight once, so its GPU
    time is at least the weights' bytes over HBM bandwidth, and not far above it."""
    prompts, prompt_len, max_tokens = 4, 128, 8
    model = bench.make_model_dir(vllm_python, "llama-3.1-8b", tmp_path / "model")
    run = bench.run_bench(model, tmp_path / "run", python=vllm_python, prompts=prompts, prompt_len=prompt_len,
                          max_tokens=max_tokens, compile_mode="vllm", capture_sizes="",
                          extra_args=["--gpu-memory-utilization", "0.9"], timeout=3600)
    _check_run(run, prompts, prompt_len, max_tokens)
    stats = run.steps["by_phase"]
    # every decode step reads all weights once: 8.03e9 params x 2 bytes / HBM bandwidth
    floor_us = 8.03e9 * 2 / get_spec("h100").hbm_bytes_per_s * 1e6
    decode_us = stats["decode"]["busy_us"]
    assert floor_us <= decode_us["median"] < 3 * floor_us, (decode_us, floor_us)
    assert decode_us["max"] < 10 * floor_us, (decode_us, floor_us)
    assert stats["prefill"]["busy_us"]["median"] >= floor_us
