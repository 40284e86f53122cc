"""Small CUDA C programs under `emulate`: what a user of the virtual GPU must see.

Each program prints `RESULT key=value ...` lines; the assertions compare them (and the run's
kernels.csv / summary.json) with the chosen GPU's spec from the catalog.
"""

from __future__ import annotations

import csv
import io
import re
import signal
from pathlib import Path

import pytest
from timewarp_testing import compile_cuda

from predictors.catalog import get_spec
from shim import abi

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
CUDA_ERROR_MEMORY_ALLOCATION = 2
CUDA_ERROR_NOT_READY = 600
CUDA_MEMORY_TYPE_HOST = 1
CUDA_MEMORY_TYPE_DEVICE = 2
GIB = 1 << 30

_RESULT_FIELD = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")


def parse_results(stdout: str) -> list[dict[str, str]]:
    """Every `RESULT k=v k=v` line as a dict (a value runs to the next `key=`)."""
    rows = []
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            rows.append({k: v.strip() for k, v in _RESULT_FIELD.findall(line[len("RESULT "):])})
    return rows


def result_map(stdout: str) -> dict[str, str]:
    """The RESULT lines merged into one dict (later lines win)."""
    merged: dict[str, str] = {}
    for row in parse_results(stdout):
        merged.update(row)
    return merged


def kernel_rows(run) -> list[dict[str, str]]:  # noqa: ANN001 - conftest.EmulatedRun
    return list(csv.DictReader(io.StringIO(run.kernels_csv())))


def dims(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", text))


def assert_ok(run) -> None:  # noqa: ANN001
    assert run.exit_status == 0, f"exit {run.exit_status}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"


def assert_nothing_unimplemented(run) -> None:  # noqa: ANN001
    missing = run.summary["unimplemented"]
    assert missing == [], f"unimplemented APIs were called: {missing}"


@pytest.fixture
def build(nvcc: str, cuda_bin_dir: Path):  # noqa: ANN201 - returns a compile callable
    def compile_app(name: str) -> str:
        return str(compile_cuda(nvcc, CUDA_DIR / f"{name}.cu", cuda_bin_dir))

    return compile_app


def test_data_round_trips_through_device_memory(emulate, build) -> None:  # noqa: ANN001
    run = emulate([build("app_roundtrip")])
    assert_ok(run)
    res = result_map(run.stdout)
    spec = get_spec("h100")
    assert res["device_count"] == "1"
    assert res["device_name"] == spec.name
    assert int(res["total_global_mem"]) == spec.memory_bytes
    assert res["cc"] == f"{spec.cc_major}.{spec.cc_minor}"
    assert int(res["sm_count"]) == spec.sm_count
    assert res["roundtrip_ok"] == "1", "H2D -> D2D -> D2H lost the pattern"
    assert res["default_kind_ok"] == "1", "cudaMemcpyDefault D2H lost the pattern"
    assert res["memset_ok"] == "1", "cudaMemset value not read back"
    assert res["async_ok"] == "1", "async copies + memset on a stream did not land"
    assert int(res["attr_device_type"]) == CUDA_MEMORY_TYPE_DEVICE
    assert int(res["attr_host_type"]) == CUDA_MEMORY_TYPE_HOST
    kinds = [row["kind"] for row in kernel_rows(run)]
    assert kinds.count("memcpy") >= 6
    assert kinds.count("memset") >= 2
    assert_nothing_unimplemented(run)


def test_sampling_kernels_leave_an_id_in_the_vocabulary(emulate, build) -> None:  # noqa: ANN001
    """FlashInfer's sampling kernels (their names and parameter lists) write index 0 for each
    row, and true into `valid`, over stale bytes (0x7f7f7f7f) that no vocabulary holds; a kernel of
    another name with the same parameters keeps what its output held (shim/src/kernel_data.c)."""
    run = emulate([build("app_sampled_ids")])
    assert_ok(run)
    rows = [r for r in parse_results(run.stdout) if "row" in r]
    assert len(rows) == 6
    stale = 0x7F7F7F7F
    assert all((r["id"], r["long_id"], r["valid"]) == ("0", "0", "1") for r in rows), rows
    assert all(int(r["other"]) == stale for r in rows), rows
    assert_nothing_unimplemented(run)


def _kernel_times(stdout: str) -> dict[str, list[dict[str, str]]]:
    by_kernel: dict[str, list[dict[str, str]]] = {}
    for row in parse_results(stdout):
        if "kernel" in row:
            by_kernel.setdefault(row["kernel"], []).append(row)
    return by_kernel


@pytest.mark.parametrize("gpu", ["h100", "l4"])
def test_kernel_times_grow_with_size_and_respect_the_roofline(emulate, build, gpu: str) -> None:  # noqa: ANN001
    run = emulate([build("app_kernels")], gpu=gpu)
    assert_ok(run)
    spec = get_spec(gpu)
    by_kernel = _kernel_times(run.stdout)
    assert set(by_kernel) == {"scale_add", "block_reduce"}
    for kernel, rows in by_kernel.items():
        times_ms = [float(r["ms"]) for r in rows]
        assert all(t > 0 for t in times_ms), f"{kernel}: event elapsed must be positive: {times_ms}"
        assert times_ms == sorted(times_ms) and len(set(times_ms)) == len(times_ms), \
            f"{kernel}: times must grow with N: {times_ms}"
        for r in rows:
            floor_s = int(r["bytes"]) / spec.hbm_bytes_per_s
            assert float(r["ms"]) * 1e-3 >= floor_s, \
                f"{kernel} n={r['n']} took {r['ms']} ms, faster than HBM allows ({floor_s * 1e3:.4f} ms)"
    assert float(run.summary["virtual_time_s"]) > 0

    rows = kernel_rows(run)
    # the program warms each kernel up once with a single block first
    kernels = [r for r in rows if r["kind"] == "kernel" and r["grid"] != "1x1x1"]
    scale = [r for r in kernels if r["name"].startswith("scale_add(")]
    reduce = [r for r in kernels if r["name"].startswith("void block_reduce<256>(")
              or r["name"].startswith("block_reduce<256>(")]
    assert len(scale) == 4, [r["name"] for r in kernels]
    assert len(reduce) == 4, [r["name"] for r in kernels]
    for r in scale + reduce:
        assert r["mangled_name"].startswith("_Z"), r
        assert r["model"] != "floor", "no predictor answered (the coordinator was not reached)"
        assert float(r["duration_us"]) > 0
    printed_grids = sorted((int(r["grid"]), 1, 1) for r in by_kernel["scale_add"])
    assert sorted(dims(r["grid"]) for r in scale) == printed_grids
    assert all(dims(r["block"]) == (256, 1, 1) for r in scale + reduce)
    # Launches of growing N, in issue order: each CSV duration respects its own roofline.
    for csv_row, printed in zip(sorted(scale, key=lambda r: int(r["seq"])), by_kernel["scale_add"], strict=True):
        floor_us = int(printed["bytes"]) / spec.hbm_bytes_per_s * 1e6
        assert float(csv_row["duration_us"]) >= floor_us * 0.999, (csv_row, floor_us)
    assert_nothing_unimplemented(run)


def test_slower_gpu_predicts_longer_kernels(emulate, build) -> None:  # noqa: ANN001
    exe = build("app_kernels")
    fast, slow = emulate([exe], gpu="h100"), emulate([exe], gpu="l4")
    assert_ok(fast)
    assert_ok(slow)
    fast_ms = float(_kernel_times(fast.stdout)["scale_add"][-1]["ms"])
    slow_ms = float(_kernel_times(slow.stdout)["scale_add"][-1]["ms"])
    # 3.35 TB/s against 300 GB/s: the 768 MB kernel must be several times slower on the L4.
    assert slow_ms > 4 * fast_ms, (fast_ms, slow_ms)


def test_event_wait_orders_streams_and_streams_overlap_without_it(emulate, build) -> None:  # noqa: ANN001
    run = emulate([build("app_streams")])
    assert_ok(run)
    cases = {r["case"]: {k: float(v) for k, v in r.items() if k != "case"}
             for r in parse_results(run.stdout) if "case" in r}
    wait, nowait = cases["wait"], cases["nowait"]
    rows = kernel_rows(run)
    spec = get_spec("h100")
    (long_us,) = {float(r["duration_us"]) for r in rows if r["name"].startswith("long_kernel(")}
    (short_us,) = {float(r["duration_us"]) for r in rows if r["name"].startswith("short_kernel(")}
    # A reads x and reads+writes y: 3 x 256 MiB at the H100's HBM bandwidth at least
    assert long_us * 1e-6 >= 3 * (64 << 20) * 4 / spec.hbm_bytes_per_s
    latency_ms = spec.launch_latency_ns / 1e6
    for case in (wait, nowait):  # A starts a launch latency after the base event, then runs
        assert case["a_end_ms"] >= (long_us / 1e3 + latency_ms) * 0.999, case
    # with the wait, B's start event is A's end and B runs right after it, for its own duration
    assert wait["b_begin_ms"] == pytest.approx(wait["a_end_ms"], abs=1e-6), wait
    assert (wait["b_end_ms"] - wait["b_begin_ms"]) * 1e3 == pytest.approx(short_us, abs=0.002), wait
    # without it, B is done long before A
    assert nowait["b_end_ms"] < nowait["a_end_ms"] - long_us / 2e3, nowait
    res = result_map(run.stdout)
    assert int(res["query_pending"]) == CUDA_ERROR_NOT_READY
    assert int(res["query_done"]) == 0
    long_streams = {r["stream"] for r in rows if r["name"].startswith("long_kernel(")}
    short_streams = {r["stream"] for r in rows if r["name"].startswith("short_kernel(")}
    assert len(long_streams) == 1 and len(short_streams) == 1 and long_streams != short_streams
    assert_nothing_unimplemented(run)


def test_graph_replays_are_recorded_and_timed(emulate, build) -> None:  # noqa: ANN001
    run = emulate([build("app_graph")])
    assert_ok(run)
    res = result_map(run.stdout)
    assert res["capturing"] == "1"
    assert int(res["nodes"]) == 4
    rows = kernel_rows(run)
    replays: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        if int(r["graph_id"]) != 0:
            replays.setdefault(r["seq"], []).append(r)
    assert len(replays) == 11
    ordered = sorted(replays.values(), key=lambda ops: float(ops[0]["start_us"]))
    # the four nodes form one chain: a replay lasts the sum of their durations
    chain_us = sum(float(r["duration_us"]) for r in ordered[0])
    for ops in ordered:
        span = max(float(r["end_us"]) for r in ops) - min(float(r["start_us"]) for r in ops)
        assert span == pytest.approx(chain_us, abs=0.002)
    one, ten = float(res["one_replay_ms"]) * 1e3, float(res["ten_replays_ms"]) * 1e3
    spec = get_spec("h100")
    # one replay: a launch latency after the start event, then the chain
    assert one >= chain_us + spec.launch_latency_ns / 1e3 - 0.002, (one, chain_us)
    # ten replays issued back to back: the events span exactly the ten replays on the timeline
    ends = [max(float(r["end_us"]) for r in ops) for ops in ordered]
    assert ten == pytest.approx(ends[-1] - ends[0], abs=0.002), (ten, ends)
    assert ten >= 10 * chain_us - 0.02
    for name in ("graph_fill(", "graph_axpy(", "graph_square("):
        mine = [r for r in rows if r["name"].startswith(name)]
        assert len(mine) == 11, f"{name}: {len(mine)} rows (captured ops must not run at capture)"
        assert all(int(r["graph_id"]) != 0 for r in mine), f"{name}: replayed ops need their graph_id"
        assert len({r["graph_id"] for r in mine}) == 1
    memsets = [r for r in rows if r["kind"] == "memset" and int(r["graph_id"]) != 0]
    assert len(memsets) == 11
    assert_nothing_unimplemented(run)


def _oom_run(emulate, build, gpu: str, chunk: int) -> dict[str, str]:  # noqa: ANN001
    run = emulate([build("app_oom"), str(chunk)], gpu=gpu)
    assert_ok(run)
    assert_nothing_unimplemented(run)
    res = result_map(run.stdout)
    spec = get_spec(gpu)
    free0, total = int(res["free0"]), int(res["total"])
    assert total == spec.memory_bytes
    assert 0 < free0 <= total
    assert int(res["first_fail"]) == free0 // chunk, f"{gpu}: {res}"
    assert int(res["err"]) == CUDA_ERROR_MEMORY_ALLOCATION
    assert int(res["last_error"]) == CUDA_ERROR_MEMORY_ALLOCATION
    assert int(res["last_error_after"]) == 0
    assert int(res["small_after_fail"]) == 0, "a small allocation after an OOM must still succeed"
    assert int(res["free_end"]) == free0, "freeing everything must give the memory back"
    frees = [int(r["free"]) for r in parse_results(run.stdout) if "alloc" in r]
    steps = [a - b for a, b in zip([free0, *frees[:-1]], frees, strict=True)]
    assert all(step >= chunk for step in steps), f"cudaMemGetInfo must drop by each allocation: {steps}"
    return res


def test_allocation_past_capacity_fails_on_h100(emulate, build) -> None:  # noqa: ANN001
    res = _oom_run(emulate, build, "h100", 30 * 10**9)
    assert int(res["first_fail"]) == 2  # 3 x 30 GB do not fit in 80 GB


def test_capacity_follows_the_chosen_gpu(emulate, build) -> None:  # noqa: ANN001
    big = _oom_run(emulate, build, "a100-80g", 10 * GIB)
    small = _oom_run(emulate, build, "l4", 10 * GIB)
    assert int(big["first_fail"]) > int(small["first_fail"])
    assert int(small["first_fail"]) == 2  # 24 GB card: two 10 GiB chunks fit


def test_host_dereference_of_device_memory_crashes_loudly(emulate, build) -> None:  # noqa: ANN001
    run = emulate([build("app_crash")])
    assert run.exit_status != 0
    res = result_map(run.stdout)
    base, size = int(res["ptr"], 16), int(res["bytes"])
    mentioned = [int(h, 16) for h in re.findall(r"0x[0-9a-fA-F]+", run.stderr)]
    assert any(base <= addr < base + size for addr in mentioned), \
        f"stderr must name the allocation at {hex(base)}:\n{run.stderr[-3000:]}"
    assert "survived" not in res
    summary = run.summary  # written although the program crashed
    assert summary["processes"], summary
    assert summary["processes"][0]["exit_signal"] == signal.SIGSEGV
    assert summary["processes"][0]["records"] > 0
    names = [r["name"] for r in kernel_rows(run)]
    assert any(n.startswith("before_crash(") for n in names), "records before the crash were lost"
    assert (run.run_dir / "trace.json").exists()


def test_synchronize_jumps_the_clock_by_the_predicted_gpu_time(emulate, build) -> None:  # noqa: ANN001
    launches = 3000
    run = emulate([build("app_sleep_sync"), str(launches)])
    assert_ok(run)
    res = result_map(run.stdout)
    spec = get_spec("h100")
    gpu_s = float(res["gpu_ms"]) * 1e-3
    roofline_s = launches * 2 * (4 << 30) * 4 / spec.hbm_bytes_per_s
    assert gpu_s >= roofline_s * 0.999, (gpu_s, roofline_s)
    mono = float(res["mono_delta_s"])
    assert mono >= gpu_s * 0.999, f"the program saw {mono} s for {gpu_s} s of GPU work"
    assert mono <= gpu_s + float(res["issue_s"]) + 1.0
    assert abs(float(res["real_delta_s"]) - mono) < 0.05 * mono, "gettimeofday must move with CLOCK_MONOTONIC"
    assert int(res["time_after_s"]) - int(res["time_before_s"]) >= int(mono) - 1
    assert run.summary["wall_time_s"] < mono / 3, "waiting on the GPU must not take wall time"
    assert run.summary["virtual_time_s"] >= mono


def test_unknown_gpu_lists_the_known_names(emulate) -> None:  # noqa: ANN001
    run = emulate(["true"], gpu="no-such-gpu")
    assert run.exit_status != 0
    for key in ("h100", "a100-80g", "l4"):
        assert key in run.stderr, run.stderr


def test_missing_command_exits_127(emulate) -> None:  # noqa: ANN001
    run = emulate(["/nonexistent/definitely-not-a-command"])
    assert run.exit_status == 127


def test_exit_status_is_propagated(emulate) -> None:  # noqa: ANN001
    run = emulate(["sh", "-c", "exit 3"])
    assert run.exit_status == 3
    assert run.summary["exit_status"] == 3


def test_a_multi_tensor_launch_its_decoder_rejects_is_reported(emulate, build) -> None:  # noqa: ANN001
    """A launch of torch's multi-tensor family whose metadata fits no known layout keeps the generic
    estimate, and the run says so (summary.json underdescribed, a warning line) though it reaches
    less than 1 MB: never a silent fallback."""
    run = emulate([build("app_multi_tensor_reject")])
    assert_ok(run)
    rows = [r for r in kernel_rows(run) if "multi_tensor_apply_kernel<" in r["name"]]
    assert len(rows) == 1, rows
    assert int(rows[0]["k"]) > 0                               # the family that rejected it (launch.c)
    assert int(rows[0]["n"]) != abi.constant("TW_DESCRIBED_FAMILY")
    assert 0 < int(rows[0]["m"]) <= 1 << 20
    reported = [u for u in run.summary["underdescribed"] if "multi_tensor_apply_kernel<" in u["name"]]
    assert [(u["count"], u["rejected"]) for u in reported] == [(1, 1)], run.summary["underdescribed"]
    assert "rejected by their family's decoder" in run.stderr
