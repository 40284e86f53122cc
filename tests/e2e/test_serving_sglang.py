"""SGLang 0.5.23 under emulate: `python -m sglang.launch_server --load-format dummy` (its defaults:
FA3 attention on Hopper, CUDA graphs, radix cache, scheduler and detokenizer processes) with
`python -m sglang.bench_serving`, as tests/e2e/test_serving.py does for vLLM.

SGLang's first kernel in every layer is FlashInfer's CuTe-DSL RMSNorm, whose runtime
(nvidia_cutlass_dsl's libcute_dsl_runtime.so) carries a statically linked CUDA runtime: it runs
on the driver's export tables (shim/src/api_driver_export.c). The small case runs that kernel
alone (about a minute: SGLang's imports); the serving case is the whole server with both
benchmarks: every request served in full and timed, its send time taken from the client's HTTP
requests (bench_serving's result file keeps none)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path

import pytest
from frameworks import SGLANG, free_port, interpreter, make_model_dir, serving_benchmarks
from timewarp_testing import REPO, run_emulated

WORKLOADS = REPO / "tests" / "e2e" / "workloads"


def test_cute_dsl_kernel_runs(shim_lib: Path, tmp_path: Path) -> None:
    python = interpreter(SGLANG)
    run = run_emulated([python, str(WORKLOADS / "cute_dsl_rmsnorm.py")], tmp_path / "run", timeout=600)
    assert "RESULT shape=4x256" in run.stdout, run.stderr[-3000:]
    assert run.exit_status == 0 and run.summary["unimplemented"] == []
    # launched by the CuTe-DSL runtime (its static cudart) and recorded on the timeline
    rows = [r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if "RMSNormKernel" in r["name"]]
    assert len(rows) == 1 and float(rows[0]["duration_us"]) > 0 and rows[0]["model"] != "floor", rows


@pytest.mark.slow
def test_sglang_serving_tiny(shim_lib: Path, tmp_path: Path) -> None:
    python = interpreter(SGLANG)
    model = make_model_dir(python, tmp_path / "model")
    port = free_port()
    (tmp_path / "run" / "bench").mkdir(parents=True)
    rates = " ".join(
        f"{python} -m sglang.bench_serving --backend sglang --port {port} --dataset-name random-ids "
        f"--random-input-len 64 --random-output-len 16 --num-prompts 32 --request-rate {rate} --tokenizer {model} "
        f"--seed 1 --output-file $TIMEWARP_RUN_DIR/bench/rate-{rate}.jsonl --output-details &&" for rate in ("4", "inf"))
    run = run_emulated([python, "-m", "sglang.launch_server", "--model-path", str(model), "--load-format", "dummy",
                        "--port", str(port)], tmp_path / "run",
                       extra=["--client", f"bash -c '{rates} true'", "--client-port", str(port)], timeout=1800,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert run.exit_status == 0, run.stderr[-6000:]
    assert run.summary["floor_predicted"] == [] and run.summary["unimplemented"] == []
    by_rate = serving_benchmarks(run.summary)
    assert set(by_rate) == {"rate-4", "rate-inf"}
    for rate, bench in by_rate.items():
        client = json.loads((run.run_dir / bench["file"]).read_text().splitlines()[0])
        # the server answered every request of both benchmarks (status 200, no error), each with
        # the 16 tokens asked for: the sampled ids are in the vocabulary (index 0, which the tiny
        # tokenizer decodes to text), so the client times every first token
        assert client["completed"] == 32 and not any(client["errors"]), client["errors"]
        assert all(t > 0 for t in client["ttfts"]) and client["output_lens"] == [16] * 32, rate
        assert bench["requests"] == bench["completed"] == 32 and bench["failed"] == 0
        assert bench["agreement_max_relative"] <= 0.01, bench["agreement"]
        # send times from the client's HTTP requests (its result file keeps none)
        assert bench["sent_from"].startswith("HTTP requests of pid") and bench["engine"]["decode_steps"] > 0
        # as the server saw them (its HTTP process's records): at most the client's times
        server = bench["server"]
        assert (server["path"], server["requests"]) == ("POST /generate", 32), server
        assert min(server["client_minus_server_ms"].values()) >= 0, server
    # 4 requests/s: a 0.25 s mean gap on the run's clock (31 gaps of the seed's draws: within 40 %)
    assert 0.15 <= by_rate["rate-4"]["inter_arrival_s"]["mean"] <= 0.35, by_rate["rate-4"]["inter_arrival_s"]
    assert by_rate["rate-inf"]["inter_arrival_s"]["mean"] < 0.05, by_rate["rate-inf"]["inter_arrival_s"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
