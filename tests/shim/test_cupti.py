"""CUPTI under `emulate`: a C program acts as an activity client (buffers, kernel / memcpy /
memset / runtime-API / external-correlation records) and gets the emulator's own GPU ops, with
their virtual times, correlation ids and names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shim.abi import constant, ffi

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
WHEEL = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / \
    "site-packages" / "nvidia" / "cu13"
CBID_LAUNCH_KERNEL, CBID_MEMCPY_ASYNC, CBID_MEMSET_ASYNC, CBID_STREAM_SYNC = 211, 41, 51, 131
EXTERNAL_CUSTOM0 = 3
MEMCPY_HTOD, MEMORY_PINNED = 1, 2
NOT_COMPATIBLE, QUEUE_EMPTY = 14, 18


@pytest.fixture(scope="session")
def cupti_client(nvcc: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client linked against the wheel's libcupti.so.13, as a real profiler is: under
    emulate the soname resolves to the shim."""
    out = tmp_path_factory.mktemp("cupti") / "app_cupti"
    subprocess.run([nvcc, "-cudart", "shared", "-arch=sm_90", f"-I{WHEEL / 'include'}", "-o", str(out),
                    str(CUDA_DIR / "app_cupti.cu"), f"-L{WHEEL / 'lib'}", "-l:libcupti.so.13"],
                   check=True, capture_output=True, text=True)
    return out


def gpu_ops(run_dir: Path) -> dict[int, dict[str, int | str]]:
    """The run's GPU-op records by seq, with virtual begin/end ns and names."""
    f = ffi()
    header_bytes, record_bytes = constant("TW_TRACE_HEADER_BYTES"), f.sizeof("tw_record")
    ops: dict[int, dict[str, int | str]] = {}
    for trace in (run_dir / "proc").glob("*.trace"):
        data = trace.read_bytes()
        names = dict(line.split("\t", 1) for line in trace.with_suffix(".names").read_text().splitlines())
        header = f.from_buffer("tw_trace_header *", data)
        for i in range(header.record_count):
            off = header_bytes + i * record_bytes
            rec = f.from_buffer("tw_record *", data[off:off + record_bytes])
            if rec.kind == constant("TW_REC_GPU_OP"):
                ops[rec.seq] = {"begin": rec.begin_ns, "end": rec.end_ns, "kind": rec.op_kind,
                                "name": names.get(str(rec.name_id), "")}
    return ops


def test_activity_records_are_the_emulated_ops(emulate, cupti_client: Path) -> None:  # noqa: ANN001
    run = emulate([str(cupti_client)])
    assert run.exit_status == 0, run.stdout + run.stderr[-3000:]
    rows = [dict(kv.split("=", 1) for kv in line[len("RESULT "):].split())
            for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    res: dict[str, str] = {}
    for row in rows:
        if "rec" not in row:
            res.update(row)
    records = [r for r in rows if "rec" in r]
    offset = int(res["realtime_minus_mono"])
    ops = gpu_ops(run.run_dir)

    kernels = [r for r in records if r["rec"] == "kernel"]
    # the four launches inside collection, none before or after it
    assert len(kernels) == 4
    assert len([op for op in ops.values() if op["name"] == "_Z11cupti_scalePffm"]) == 6
    for k in kernels:
        op = ops[int(k["corr"])]  # the correlation id is the op's issue sequence number
        assert k["name"] == op["name"] == "_Z11cupti_scalePffm"
        assert (int(k["grid"]), int(k["block"])) == ((1 << 24) // 256, 256)
        # virtual times, in CLOCK_REALTIME (the clock read once per delivery: within 1 us)
        assert abs(int(k["start"]) - offset - op["begin"]) <= 1000
        assert abs((int(k["end"]) - int(k["start"])) - (op["end"] - op["begin"])) <= 1
    (memcpy,) = [r for r in records if r["rec"] == "memcpy"]
    (memset,) = [r for r in records if r["rec"] == "memset"]
    assert (int(memcpy["copy_kind"]), int(memcpy["src_kind"]), int(memcpy["bytes"])) == \
        (MEMCPY_HTOD, MEMORY_PINNED, 1 << 20)
    assert int(memset["bytes"]) == 1 << 20
    for r in (memcpy, memset):
        op = ops[int(r["corr"])]
        assert abs((int(r["end"]) - int(r["start"])) - (op["end"] - op["begin"])) <= 1
    # all GPU work lies inside the host's window around it (the sync returned after it)
    for r in kernels + [memcpy, memset]:
        assert int(res["window_begin"]) <= int(r["start"]) <= int(r["end"]) <= int(res["window_end"]) + 1000

    # one runtime-API record per call, with the call's correlation id and name
    runtime = {int(r["corr"]): r for r in records if r["rec"] == "runtime"}
    for k in kernels:
        api = runtime[int(k["corr"])]
        assert (int(api["cbid"]), api["api"]) == (CBID_LAUNCH_KERNEL, "cudaLaunchKernel")
        assert int(api["start"]) <= int(api["end"]) <= int(k["start"]) + 1000
    assert int(runtime[int(memcpy["corr"])]["cbid"]) == CBID_MEMCPY_ASYNC
    assert int(runtime[int(memset["corr"])]["cbid"]) == CBID_MEMSET_ASYNC
    syncs = [r for r in runtime.values() if int(r["cbid"]) == CBID_STREAM_SYNC]
    assert len(syncs) == 1 and int(syncs[0]["end"]) >= max(int(r["end"]) for r in kernels + [memcpy, memset]) - 1000
    # the external correlation pushed around the launches names each of them, and only them
    external = {int(r["corr"]): r for r in records if r["rec"] == "external"}
    assert set(external) == {int(k["corr"]) for k in kernels}
    assert all((int(x["external"]), int(x["ext_kind"])) == (42, EXTERNAL_CUSTOM0) for x in external.values())
    assert (int(res["popped"]), int(res["empty_pop"])) == (42, QUEUE_EMPTY)
    assert int(res["unknown_kind"]) == NOT_COMPATIBLE
    assert int(res["buffers_requested"]) == int(res["buffers_completed"]) >= 2
    assert int(res["dropped"]) == 0
    assert run.summary["unimplemented"] == []
