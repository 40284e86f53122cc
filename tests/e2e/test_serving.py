"""Online serving under emulate, as an operator runs it: an unmodified server (`vllm serve MODEL
--load-format dummy`, its defaults otherwise: FlashInfer sampler, torch.compile, CUDA graphs)
and the framework's own benchmark client in one run and one virtual clock (`emulate --client`),
32 prompts at 4 requests/s (Poisson) and all at once, then curl's streamed requests. One server
run per vLLM version serves them all (0.32 run by a bash script, 0.33 with --client); the tests
read its summary.json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from frameworks import (
    VLLM_0_32,
    VLLM_0_33,
    Framework,
    free_port,
    interpreter,
    make_model_dir,
    serving_benchmarks,
)
from timewarp_testing import REPO, EmulatedRun, run_emulated

WORKLOADS = REPO / "tests" / "e2e" / "workloads"
PROMPTS, INPUT_LEN, OUTPUT_LEN = 32, 64, 16


def vllm_serving_run(framework: Framework, mode: str, tmp: Path) -> tuple[EmulatedRun, float]:
    """One server run serving both benchmarks and the curl streams: with `emulate --client`, or
    as a bash script that starts the server, waits for it, runs the client and stops it."""
    python = interpreter(framework)
    bin_dir = Path(python).parent
    model = make_model_dir(python, tmp / "model")
    port = free_port()
    args = [str(bin_dir), str(model), str(port), str(PROMPTS), str(INPUT_LEN), str(OUTPUT_LEN)]
    if mode == "client":
        cmd = [str(bin_dir / "vllm"), "serve", str(model), "--load-format", "dummy", "--port", str(port)]
        extra = ["--client", " ".join([str(WORKLOADS / "vllm_test_client.sh"), *args]), "--client-port", str(port)]
    else:
        cmd, extra = ["bash", str(WORKLOADS / "vllm_serve_script.sh"), *args], []
    began = time.monotonic()
    run = run_emulated(cmd, tmp / "run", extra=extra, timeout=1800, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return run, time.monotonic() - began


# vLLM 0.32 served by a script, 0.33 with --client: both ways, one server run per version
@pytest.fixture(scope="module", params=[(VLLM_0_32, "script"), (VLLM_0_33, "client")],
                ids=lambda p: f"{p[0].label}-{p[1]}")
def served(request: pytest.FixtureRequest, shim_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> EmulatedRun:
    framework, mode = request.param
    run, wall_s = vllm_serving_run(framework, mode, tmp_path_factory.mktemp(framework.label))
    assert run.exit_status == 0, f"exit {run.exit_status} after {wall_s:.0f} s\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    return run


def benchmarks(run: EmulatedRun) -> dict[str, dict]:
    return serving_benchmarks(run.summary)


def test_every_process_gets_real_predictions(served: EmulatedRun) -> None:
    summary = served.summary
    assert summary["floor_predicted"] == [] and summary["degraded"] == [], summary["floor_predicted"][:10]
    assert summary["predictions_by_model"].get("floor", 0) == 0
    assert summary["unimplemented"] == [], summary["unimplemented"]
    assert summary["ended_by"] is None
    # FlashInfer's sampler (vLLM's default) was JIT-compiled with the PyPI toolkit and launched
    names = " ".join(k["name"] for k in summary["kernels"]["by_name"])
    assert "TopK" in names or "Sampling" in names or "sampling" in names, names[:2000]
    assert summary["environment_set"].get("CUDA_HOME", "").endswith("cuda-home")


def test_every_request_succeeds_and_matches_the_client(served: EmulatedRun) -> None:
    by_rate = benchmarks(served)
    assert set(by_rate) == {"rate-4", "rate-inf"}, by_rate.keys()
    for name, bench in by_rate.items():
        assert bench["requests"] == bench["completed"] == PROMPTS and bench["failed"] == 0, (name, bench)
        assert bench["output_tokens"] == PROMPTS * OUTPUT_LEN
        # the section's percentiles are recomputed from the per-request times: what the client printed
        assert bench["agreement_max_relative"] is not None and bench["agreement_max_relative"] <= 0.01, \
            bench["agreement"]
        assert 0 < bench["ttft_ms"]["p50"] < bench["e2e_ms"]["p50"]
        # the API process's own records: every request read, answered 200 and streamed; its
        # TTFT and E2E (read to first / last event written) at most the client's
        server = bench["server"]
        assert (server["path"], server["requests"], server["statuses"]) == ("POST /v1/completions", PROMPTS,
                                                                            {"200": PROMPTS}), server
        assert 0 < server["ttft_ms"]["p50"] < server["e2e_ms"]["p50"], server
        assert min(server["client_minus_server_ms"].values()) >= 0, server


def test_ttft_below_e2e_for_every_request(served: EmulatedRun) -> None:
    from emulator.outputs.records import load_run
    from emulator.outputs.serving import serving_requests

    for name, table in serving_requests(load_run(served.run_dir)):
        assert (table["ttft_s"] > 0).all() and (table["ttft_s"] < table["e2e_s"]).all(), name


def test_request_rate_is_kept_in_virtual_time(served: EmulatedRun) -> None:
    """vLLM's client sleeps between Poisson arrivals: 4 requests/s is a 0.25 s mean gap on the
    run's clock (31 gaps of the sample seed 1 draws, 0.2526 s: within 20 %, where a client whose
    sleeps ran long or short would not be); `inf` sends every request at once."""
    by_rate = benchmarks(served)
    gap = by_rate["rate-4"]["inter_arrival_s"]["mean"]
    assert 0.2 <= gap <= 0.3, gap
    assert by_rate["rate-inf"]["inter_arrival_s"]["mean"] < 0.01
    # the measured rate over the benchmark: 32 requests over (sent span + the last one's latency)
    assert 2.0 <= by_rate["rate-4"]["request_throughput"] <= 4.5, by_rate["rate-4"]


def test_tpot_matches_the_engines_decode_steps(served: EmulatedRun) -> None:
    """Each decode step of the engine gives each running request one token: the client's median
    inter-token latency is the engine's median decode period per token, as recorded on the GPU
    timeline. Compared at 4 requests/s, where the API process streams one or two requests; with
    all 32 at once it serialises 32 streams per step in real CPU time on the test host. The API
    process's CPU time is real time: on a loaded host it streams late and merges tokens into one
    chunk, so the client can be slower than the engine (up to 1.25x seen at a load average of 8
    on 2 cores), never faster."""
    by_rate = benchmarks(served)
    paced, burst = by_rate["rate-4"], by_rate["rate-inf"]
    engine = paced["engine"]
    assert engine["decode_steps"] >= PROMPTS * (OUTPUT_LEN - 1) / 4, engine   # at most a few requests overlap
    period, itl = engine["decode_period_ms"]["p50"], paced["itl_ms"]["p50"]
    assert 0.8 * period <= itl <= 2.0 * period, (itl, engine)
    assert burst["tpot_ms"]["p50"] >= 0.9 * burst["engine"]["decode_period_ms"]["p50"], burst
    # batching: with every request in flight, a decode step serves many of them
    assert burst["engine"]["sequences_per_decode_step"] > 8, burst["engine"]
    # the tiny model's decode step is microseconds of GPU work: the period is the host's launches
    assert engine["decode_busy_ms"]["p50"] < 0.5 * period


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_streamed_responses_reach_curl(served: EmulatedRun, endpoint: str) -> None:
    """curl in the run reads a streamed response as server-sent events: the 32 tokens asked for
    (ignore_eos) in more than one chunk, the usage, then the end marker. How many chunks is the
    API process's pace against the engine's, not a property of the emulator: vLLM merges the
    deltas a request has not streamed yet into one (RequestOutputCollector), and the tiny model's
    decode step is under 1 ms, about what the API process spends on a chunk, so a real host merges
    some too. A CI run on a loaded host streamed 8 chat tokens as 5 + 3, the completion's as
    3 + 1 + 1 + 3. Each token reads "!":
    the sampled ids are whatever the output buffer held (0), kernels never run."""
    text = (served.run_dir / f"stream-{endpoint}.txt").read_text()
    events = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert events and events[-1] == "[DONE]", text[-2000:]
    chunks = [json.loads(e) for e in events[:-1]]
    key = "text" if endpoint == "completions" else "delta"
    contents = [c["choices"][0][key] for c in chunks if c.get("choices") and key in c["choices"][0]]
    texts = [c if isinstance(c, str) else c.get("content") or "" for c in contents]
    # streamed as made, not buffered to the end: the last tokens come after the first ones
    assert len([t for t in texts if t]) >= 2, chunks
    assert any(c["choices"][0].get("finish_reason") == "length" for c in chunks if c.get("choices")), chunks[-3:]
    assert chunks[-1]["usage"]["completion_tokens"] == 32, chunks[-1]


def test_serving_plot_and_speed(served: EmulatedRun) -> None:
    assert (served.run_dir / "serving.png").stat().st_size > 10_000
    for bench in benchmarks(served).values():
        speed = bench["speed"]
        assert 0 < speed["wall_s"] <= speed["virtual_s"] + 1e-6, speed
        assert np.isfinite(speed["virtual_per_wall"])


@pytest.mark.slow  # 8B start-up (torch.compile, 51 graph captures) and three benchmarks: 5-10 min on 2 cores
def test_llama_8b_serving_is_bandwidth_bound(shim_lib: Path, tmp_path: Path) -> None:
    """Llama-3.1-8B shapes on an emulated H100, `vllm bench serve` at 1, 4 and 16 requests/s with
    512-token prompts and 128-token outputs: every decode step reads all weights once, so each
    token costs at least weights / HBM bandwidth, and a prompt's first token at least its
    prefill's FLOPs at the tensor-core peak."""
    from predictors.catalog import get_spec

    python = interpreter(VLLM_0_32)
    bin_dir = Path(python).parent
    model = make_model_dir(python, tmp_path / "model", "llama-3.1-8b")
    port = free_port()
    client = f"{WORKLOADS / 'vllm_bench_rates.sh'} {bin_dir} {model} {port} 32 512 128 1 4 16"
    run = run_emulated([str(bin_dir / "vllm"), "serve", str(model), "--load-format", "dummy", "--port", str(port)],
                       tmp_path / "run", extra=["--client", client, "--client-port", str(port)], timeout=3600,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.exit_status == 0, run.stderr[-6000:]
    h100 = get_spec("h100")
    weight_floor_ms = 8.03e9 * 2 / h100.hbm_bytes_per_s * 1e3                      # 4.79 ms
    prefill_floor_ms = 2 * 8.03e9 * 512 / h100.peak_flops("bf16") * 1e3              # 8.3 ms
    by_rate = benchmarks(run)
    assert set(by_rate) == {"rate-1", "rate-4", "rate-16"}
    assert run.summary["floor_predicted"] == []
    for name, bench in by_rate.items():
        assert bench["completed"] == 32 and bench["failed"] == 0, (name, bench)
        assert bench["agreement_max_relative"] <= 0.01, bench["agreement"]
        assert bench["tpot_ms"]["p50"] >= weight_floor_ms, (name, bench["tpot_ms"])
        assert bench["ttft_ms"]["p50"] >= prefill_floor_ms, (name, bench["ttft_ms"])
        busy = bench["engine"]["decode_busy_ms"]
        assert weight_floor_ms <= busy["p50"] < 3 * weight_floor_ms, (name, busy)
    assert by_rate["rate-16"]["output_throughput"] > by_rate["rate-1"]["output_throughput"]
