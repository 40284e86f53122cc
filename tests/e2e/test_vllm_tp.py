"""Unmodified vLLM 0.32.0 offline inference over several emulated GPUs: tensor parallelism with
vLLM's default multiprocessing executor (one worker process per rank, NCCL across them, the
all-reduce path vLLM picks itself) and pipeline parallelism. Every request completes, every
collective is one rendezvous of all its ranks, and each rank's decode steps take GPU time."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from frameworks import VLLM_0_32, interpreter, load_bench_vllm

from emulator.outputs.records import load_run, rec
from predictors.catalog import get_spec
from shim import abi

REPO = Path(__file__).resolve().parents[2]


bench = load_bench_vllm()


@pytest.fixture(scope="session")
def vllm_python() -> str:
    return interpreter(VLLM_0_32)


def rendezvous_by_id(run_dir: Path) -> dict[int, list[tuple[int, dict]]]:
    """Every rendezvous of the run: id -> [(pid, its record)] over the processes."""
    flag = abi.constant("TW_FLAG_RENDEZVOUS")
    groups: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    for proc in load_run(run_dir).processes:
        r = proc.records
        for row in r[(r["kind"] == rec("GPU_OP")) & ((r["flags"] & flag) != 0)]:
            groups[int(row["addr"])].append((proc.pid, {"name": proc.name(int(row["name_id"])),
                                                        "begin": int(row["begin_ns"]), "end": int(row["end_ns"]),
                                                        "arrival": int(row["value"])}))
    return groups


def check_completed(run, prompts: int, max_tokens: int) -> None:  # noqa: ANN001
    assert run.exit_status == 0, f"exit {run.exit_status}\nstdout:\n{run.stdout[-3000:]}\nstderr:\n{run.stderr[-6000:]}"
    res = run.results
    assert res.get("done") == "1", run.stdout[-3000:]
    assert int(res["requests"]) == prompts
    assert int(res["min_tokens"]) == int(res["max_tokens"]) == max_tokens   # ignore_eos


def check_rendezvous(run_dir: Path, nranks: int) -> set[int]:
    """Each rendezvous joins one op of each of nranks distinct worker processes, which all start
    at the latest arrival and end together. Returns the worker pids."""
    groups = rendezvous_by_id(run_dir)
    assert groups, "no collective crossed the workers"
    workers: set[int] = set()
    for rows in groups.values():
        pids = {pid for pid, _ in rows}
        assert len(rows) == len(pids) == nranks, rows
        workers |= pids
        latest = max(r["arrival"] for _, r in rows)
        assert {r["begin"] for _, r in rows} == {latest}, rows
        assert len({r["end"] for _, r in rows}) == 1, rows
    assert len(workers) == nranks, workers
    return workers


PROMPTS, MAX_TOKENS = 4, 8


def run_parallel(vllm_python: str, tmp_path: Path, model_name: str, *, tensor_parallel: int = 1,  # noqa: ANN201
                 pipeline_parallel: int = 1, prompt_len: int = 64, timeout: float = 3600,
                 extra_args: list[str] | None = None):
    """vLLM's defaults (Dynamo + Inductor, CUDA graphs, its own all-reduce choice) over
    tensor_parallel x pipeline_parallel emulated GPUs; every request must complete."""
    model = bench.make_model_dir(vllm_python, model_name, tmp_path / "model")
    run = bench.run_bench(model, tmp_path / "run", python=vllm_python, prompts=PROMPTS, prompt_len=prompt_len,
                          max_tokens=MAX_TOKENS, compile_mode="vllm", capture_sizes="",
                          tensor_parallel=tensor_parallel, pipeline_parallel=pipeline_parallel,
                          extra_args=extra_args, timeout=timeout)
    check_completed(run, PROMPTS, MAX_TOKENS)
    return run


def test_vllm_tensor_parallel_2_tiny(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    run = run_parallel(vllm_python, tmp_path, "tiny", tensor_parallel=2, timeout=2400)
    workers = check_rendezvous(run.run_dir, 2)
    # each worker ran its half of every step: the same kernels' GPU time per rank to 5 %
    busy = {}
    for proc in load_run(run.run_dir).processes:
        if proc.pid in workers:
            ops = proc.records[proc.records["kind"] == rec("GPU_OP")]
            busy[proc.pid] = int((ops["end_ns"] - ops["begin_ns"]).sum())
    a, b = busy.values()
    assert abs(a - b) <= 0.05 * max(a, b), busy
    # summary.json: each worker is a rank with its own steps (a prefill, then one per further
    # token), and the run's steps line up across them
    steps = run.summary["steps"]
    assert {r["pid"] for r in steps["ranks"]} == workers, steps["ranks"]
    for r in steps["ranks"]:
        assert r["count"] >= MAX_TOKENS, r["count"]
    assert steps["across_ranks"]["count"] >= MAX_TOKENS, steps["across_ranks"]["count"]
    assert run.summary["unimplemented"] == [], run.summary["unimplemented"]
    # a decode step of a 2-layer model all-reduces after attention and after the MLP of each
    # layer: at least 2 x layers rendezvous per decoded token beyond the first, whichever
    # all-reduce vLLM picks (on an H100 node: FlashInfer's MNNVL all-reduce over multicast memory,
    # its Lamport all-reduce without multicast; both kernels reach the peers' buffers through a
    # pointer table in device memory), and none of those kernels ran alone
    layers = 2
    assert len(rendezvous_by_id(run.run_dir)) >= 2 * layers * (MAX_TOKENS - 1)
    assert run.summary["collectives_not_met"] == [], run.summary["collectives_not_met"]


@pytest.mark.slow   # 4 workers on a 2-core host
def test_vllm_tensor_parallel_4_tiny(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    run = run_parallel(vllm_python, tmp_path, "tiny", tensor_parallel=4)
    check_rendezvous(run.run_dir, 4)


@pytest.mark.slow   # two workers, each compiling its own stage
def test_vllm_pipeline_parallel_2_tiny(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    run = run_parallel(vllm_python, tmp_path, "tiny", pipeline_parallel=2)
    # stage 0 sends its hidden states to stage 1 every step: send/recv pairs of the two workers
    check_rendezvous(run.run_dir, 2)


@pytest.mark.slow   # a 70B-shaped model on 4 emulated H100s: tens of minutes on 2 cores
def test_vllm_llama_70b_tp4_decode_is_bandwidth_bound(vllm_python: str, shim_lib: Path, tmp_path: Path) -> None:
    """Each rank reads its quarter of the weights every decode step: the step takes at least
    that over HBM bandwidth plus the step's all-reduces, and less than twice that."""
    run = run_parallel(vllm_python, tmp_path, "llama-3.1-70b", tensor_parallel=4, prompt_len=128, timeout=7200,
                       extra_args=["--gpu-memory-utilization", "0.9"])
    workers = check_rendezvous(run.run_dir, 4)
    params = 70.6e9
    weights_floor_us = params * 2 / 4 / get_spec("h100").hbm_bytes_per_s * 1e6
    # the all-reduces of one decode step on one rank: 2 per layer, read from the rendezvous
    groups = rendezvous_by_id(run.run_dir)
    per_token = sorted((rows[0][1]["end"] - rows[0][1]["begin"]) for rows in groups.values())
    allreduce_us = 2 * 80 * per_token[len(per_token) // 2] / 1e3
    floor_us = weights_floor_us + allreduce_us
    decode_us = run.steps["by_phase"]["decode"]["busy_us"]
    assert floor_us <= decode_us["median"] <= 2 * floor_us, (decode_us, floor_us, len(workers))
