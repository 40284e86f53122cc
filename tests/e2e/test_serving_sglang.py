"""SGLang 0.5.23 under emulate: `python -m sglang.launch_server --load-format dummy` (its defaults:
FA3 attention on Hopper, CUDA graphs, radix cache, scheduler and detokenizer processes) with
`python -m sglang.bench_serving`, as tests/e2e/test_serving.py does for vLLM.

SGLang's first kernel in every layer is FlashInfer's CuTe-DSL RMSNorm, whose runtime
(nvidia_cutlass_dsl's libcute_dsl_runtime.so) carries a statically linked CUDA runtime: it runs
on the driver's export tables (shim/src/api_driver_export.c). The small case runs that kernel
alone (about a minute: SGLang's imports); the serving case is the whole server with both
benchmarks: every request served, its send time taken from the client's HTTP requests
(bench_serving's result file keeps none) and its server-side times from the server's; its TTFT
checks stop at an `xfail` that names what keeps some requests untimed (UNTIMED)."""

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
# What keeps the serving case from its TTFT checks (docs/serving.md, "SGLang 0.5.23"): not the
# server, which serves every request, but the token ids it streams under emulate.
UNTIMED = ("sglang.bench_serving times a request's first token at its first streamed chunk with text. The "
           "sampler's argmax writes index 0, but the ids SGLang streams are other ids, carried by kernels the "
           "shim does not evaluate (its Triton _small_copy_kernel and strided copies run beside the sampler; "
           "which one carries them is not traced): some streams hold only ids that decode to nothing, and "
           "such requests have no TTFT")


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
    rates = "mkdir -p $TIMEWARP_RUN_DIR/bench && " + " ".join(
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
    untimed = {}
    for rate, bench in by_rate.items():
        client = json.loads((run.run_dir / bench["file"]).read_text().splitlines()[0])
        # the server answered every request of both benchmarks (status 200, no error)
        assert client["completed"] == 32 and not any(client["errors"]), client["errors"]
        assert bench["requests"] == 32
        for key in ("itl_ms.mean", "itl_ms.p50", "itl_ms.p99"):
            assert bench["agreement"][key]["relative"] <= 0.01, bench["agreement"]
        # send times from the client's HTTP requests (its result file keeps none), and the same
        # requests as the server's HTTP process recorded them: all read, answered and streamed
        assert bench["sent_from"].startswith("HTTP requests of pid") and bench["engine"]["decode_steps"] > 0
        server = bench["server"]
        assert (server["path"], server["requests"], server["statuses"]) == ("POST /generate", 32, {"200": 32}), server
        untimed[rate] = sum(t == 0 for t in client["ttfts"])
        if untimed[rate] == 0:   # the same requests on both sides: the client's times are the later
            assert min(server["client_minus_server_ms"].values()) >= 0, server
    # 4 requests/s: a mean gap of 0.25 s on the run's clock (31 gaps of the seed's draws), all at once
    assert 0.15 <= by_rate["rate-4"]["inter_arrival_s"]["mean"] <= 0.35, by_rate["rate-4"]["inter_arrival_s"]
    assert by_rate["rate-inf"]["inter_arrival_s"]["mean"] < 0.05, by_rate["rate-inf"]["inter_arrival_s"]
    if any(untimed.values()):
        pytest.xfail(f"{UNTIMED}: requests without a first token by rate {untimed}")
    for bench in by_rate.values():
        assert bench["completed"] == 32 and bench["failed"] == 0
        assert bench["agreement_max_relative"] <= 0.01, bench["agreement"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
