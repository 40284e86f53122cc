"""CUDA runtime semantics the documentation states, checked on small CUDA programs under
`emulate`: stream-capture rules (which calls a capture forbids, what they return, how they
invalidate it), host functions replayed with their graph, and how long memory calls block the
host ("API synchronization behavior" of the CUDA runtime)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from timewarp_testing import compile_cuda

CUDA_DIR = Path(__file__).resolve().parent / "cuda"

# driver_types.h
SUCCESS, INVALID_VALUE, MEMORY_ALLOCATION, INVALID_DEVICE = 0, 1, 2, 101
CAPTURE_UNSUPPORTED, CAPTURE_INVALIDATED, CAPTURE_IMPLICIT, CAPTURE_WRONG_THREAD = 900, 901, 906, 908
STATUS_ACTIVE, STATUS_INVALIDATED = 1, 2
MODE_GLOBAL, MODE_RELAXED = 0, 2


@pytest.fixture
def build(nvcc: str, cuda_bin_dir: Path):  # noqa: ANN201 - returns a compile callable
    def compile_app(name: str) -> str:
        return str(compile_cuda(nvcc, CUDA_DIR / f"{name}.cu", cuda_bin_dir))

    return compile_app


def results(stdout: str) -> list[dict[str, str]]:
    rows = []
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            rows.append(dict(kv.split("=", 1) for kv in line[len("RESULT "):].split()))
    return rows


def merged(stdout: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for row in results(stdout):
        out.update(row)
    return out


def test_capture_rules_and_replayed_host_functions(emulate, build) -> None:  # noqa: ANN001
    run = emulate([build("app_capture_rules")])
    assert run.exit_status == 0, run.stdout + run.stderr[-3000:]
    res = merged(run.stdout)
    # host functions captured between kernels run at each of the 3 replays, in capture order
    assert res["host_log"] == "ABABAB"
    # the dependency set during capture is the last captured node, as a real node handle
    assert (res["capture_deps"], res["dep_is_last_node"], res["graph_matches"]) == ("1", "1", "1")
    cases = {r["case"]: {k: int(v) for k, v in r.items() if k != "case"} for r in results(run.stdout) if "case" in r}
    voided = {"status": STATUS_INVALIDATED, "end": CAPTURE_INVALIDATED, "graph_null": 1}
    kept = {"call": SUCCESS, "status": STATUS_ACTIVE, "end": SUCCESS, "graph_null": 0}
    for name in ("sync_capturing", "query_capturing", "malloc_global", "device_sync", "sync_memcpy",
                 "event_captured", "other_thread_global"):
        assert cases[name] == {"call": CAPTURE_UNSUPPORTED, **voided}, name
    assert cases["legacy_vs_blocking"] == {"call": CAPTURE_IMPLICIT, **voided}
    assert cases["launch_after_invalid"] == {"call": CAPTURE_INVALIDATED, **voided}
    for name in ("legacy_vs_nonblocking", "other_thread_threadlocal", "other_thread_relaxed_mode"):
        assert cases[name] == kept, name
    assert int(res["legacy_is_capturing"]) == CAPTURE_IMPLICIT
    assert (int(res["relaxed_malloc"]), int(res["previous_mode"]), int(res["restored_mode"])) == \
        (SUCCESS, MODE_GLOBAL, MODE_RELAXED)
    assert int(res["end_wrong_thread"]) == CAPTURE_WRONG_THREAD
    assert run.summary["unimplemented"] == []


def test_memory_calls_block_the_host_as_documented(emulate, build) -> None:  # noqa: ANN001
    run = emulate([build("app_memory_sync")], extra=["--gpus", "2"])
    assert run.exit_status == 0, run.stdout + run.stderr[-3000:]
    rows = list(csv.DictReader(io.StringIO(run.kernels_csv())))
    kernel_us = {float(r["duration_us"]) for r in rows if r["name"].startswith("stream_copy(")}
    assert len(kernel_us) == 1, kernel_us  # one shape, one prediction
    (duration_us,) = kernel_us
    # 2 x 16 GiB at the H100's 3.35 TB/s is 10.3 ms at least: long against any call's CPU time
    assert duration_us >= 2 * (16 << 30) / 3.35e12 * 1e6
    duration_ms = duration_us / 1e3
    host_ms = {r["case"]: float(r["host_ms"]) for r in results(run.stdout) if "host_ms" in r}
    # asynchronous to the host: the call returns while the kernel before it still runs
    for name in ("memset_device", "memcpy_d2d", "memcpy_h2d_async_pinned", "memcpy_peer"):
        assert host_ms[name] < duration_ms / 2, (name, host_ms[name], duration_ms)
    # synchronous: the call returns after the stream's earlier kernel (and its own copy)
    for name in ("memcpy_d2h", "memcpy_h2d_pageable", "memcpy_h2h", "memset_pinned",
                 "memcpy_d2h_async_pageable", "free_waits_for_device"):
        assert host_ms[name] >= duration_ms * 0.999, (name, host_ms[name], duration_ms)
    res = merged(run.stdout)
    # stream-ordered free: not reusable by cudaMalloc before the stream reaches it, reusable at
    # once by the same stream, a second free is an error, and after a sync the memory is back
    assert int(res["ordered_before"]) == MEMORY_ALLOCATION
    assert int(res["ordered_same_stream"]) == SUCCESS
    assert int(res["ordered_double_free"]) == INVALID_VALUE
    assert int(res["ordered_after"]) == SUCCESS
    # cudaMemcpyPeer between devices is a peer copy, after the source device's earlier work
    peers = [r for r in rows if r["kind"] == "memcpy" and r["name"] == "memcpy PtoP"]
    assert len(peers) == 1
    assert float(res["span_ms"]) >= duration_ms * 0.999
    assert int(res["bad_device"]) == INVALID_DEVICE
    assert run.summary["unimplemented"] == []
