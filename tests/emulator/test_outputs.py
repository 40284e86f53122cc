"""The run's outputs from a synthesised run directory: records written with cffi exactly as the
shim lays them out, then trace.json, summary.json, kernels.csv and the plots checked."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from emulator.outputs import demangle, load_run, short_name, write_outputs
from emulator.outputs.records import struct_dtype
from shim import abi

T0 = 1_000_000_000  # virtual ns at the start of the run
MIB = 1 << 20
VECADD = "_Z6vecAddPfS_S_i"
VECADD_DEMANGLED = "vecAdd(float*, float*, float*, int)"
LONG = "_Z4longv"


def C(name: str) -> int:  # noqa: N802 - reads like the C constant
    return abi.constant(name)


@dataclass
class TraceFile:
    """A proc/<pid>.trace under construction."""

    pid: int
    ppid: int
    start_ns: int
    exit_ns: int = 0
    exit_status: int = 0
    exit_signal: int = 0
    names: list[str] = field(default_factory=list)
    records: list[bytes] = field(default_factory=list)

    def name_id(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name) + 1

    def add(self, kind: str, name: str = "", **fields: object) -> None:
        ffi = abi.ffi()
        r = ffi.new("tw_record *")
        r.kind = C(f"TW_REC_{kind}")
        r.tid = self.pid
        if name:
            r.name_id = self.name_id(name)
        for key, value in fields.items():
            if key in ("grid", "block", "dims"):
                for i, v in enumerate(value):  # type: ignore[arg-type]
                    getattr(r, key)[i] = v
            else:
                setattr(r, key, value)
        self.records.append(bytes(ffi.buffer(r)))

    def write(self, run_dir: Path) -> None:
        ffi = abi.ffi()
        h = ffi.new("tw_trace_header *")
        h.magic = C("TW_TRACE_MAGIC")
        h.abi_version = C("TW_ABI_VERSION")
        h.record_bytes = ffi.sizeof("tw_record")
        h.record_count = len(self.records)
        h.pid, h.ppid = self.pid, self.ppid
        h.start_virtual_ns = self.start_ns
        h.exit_virtual_ns = self.exit_ns
        h.exit_status, h.exit_signal = self.exit_status, self.exit_signal
        header = bytes(ffi.buffer(h)).ljust(C("TW_TRACE_HEADER_BYTES"), b"\0")
        proc = run_dir / "proc"
        proc.mkdir(parents=True, exist_ok=True)
        # The shim pre-sizes the file: trailing unclaimed slots must be ignored.
        spare = b"\0" * ffi.sizeof("tw_record") * 3
        (proc / f"{self.pid}.trace").write_bytes(header + b"".join(self.records) + spare)
        (proc / f"{self.pid}.names").write_text("".join(f"{i + 1}\t{n}\n" for i, n in enumerate(self.names)))


def gpu_op(t: TraceFile, op: str, name: str, begin: int, end: int, **fields: object) -> None:
    t.add("GPU_OP", name, op_kind=C(f"TW_OP_{op}"), begin_ns=T0 + begin, end_ns=T0 + end, **fields)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    roofline, table = C("TW_MODEL_ROOFLINE"), C("TW_MODEL_TABLE")

    root = TraceFile(pid=100, ppid=1, start_ns=T0, exit_ns=T0 + 10_000_000)
    root.add("STREAM", stream_id=7, value=-1)
    root.add("ALLOC", device=0, begin_ns=T0 + 1_000, bytes=MIB, value=MIB)
    root.add("ALLOC", device=0, begin_ns=T0 + 1_500, bytes=2 * MIB, value=3 * MIB)
    root.add("API", "cudaLaunchKernel", begin_ns=T0 + 1_000, end_ns=T0 + 3_000)
    gpu_op(root, "KERNEL", VECADD, 5_000, 15_000, seq=1, issue_ns=T0 + 2_000, grid=(128, 1, 1),
           block=(256, 1, 1), smem_bytes=1024, model=roofline)
    root.records.append(b"\0" * abi.ffi().sizeof("tw_record"))  # a torn slot: TW_REC_EMPTY
    gpu_op(root, "KERNEL", VECADD, 20_000, 40_000, seq=2, issue_ns=T0 + 4_000, stream_id=7, model=table)
    gpu_op(root, "GEMM", "cublasSgemm_v2", 40_000, 100_000, seq=3, issue_ns=T0 + 4_500, stream_id=7,
           graph_id=3, dims=(512, 512, 512, 1), flops=2 * 512**3, model=roofline)
    gpu_op(root, "MEMCPY", "", 100_000, 102_000, seq=4, issue_ns=T0 + 5_000, bytes=4096,
           value=C("TW_COPY_D2H_PINNED"), model=roofline)
    root.add("WAIT", "cudaMemcpy", begin_ns=T0 + 50_000, end_ns=T0 + 102_000, value=1)
    root.add("JUMP", begin_ns=T0 + 50_100, end_ns=T0 + 102_000)
    for _ in range(3):
        root.add("UNIMPLEMENTED", "cudaFooBar")
    root.add("FREE", device=0, begin_ns=T0 + 700_000, bytes=MIB, value=2 * MIB)
    root.write(run_dir)

    child = TraceFile(pid=200, ppid=100, start_ns=T0 + 500_000, exit_signal=11)  # crashed: no exit time
    child.add("ALLOC", device=0, begin_ns=T0 + 600_000, bytes=2 * MIB, value=2 * MIB)
    gpu_op(child, "KERNEL", VECADD, 600_000, 650_000, seq=1, issue_ns=T0 + 590_000, device=1, model=roofline)
    gpu_op(child, "KERNEL", LONG, 2_000_000, 12_000_000, seq=2, issue_ns=T0 + 1_900_000, device=1,
           model=roofline)
    child.add("JUMP", begin_ns=T0 + 50_100, end_ns=T0 + 102_000)  # the same jump seen by both
    child.add("JUMP", begin_ns=T0 + 1_950_000, end_ns=T0 + 12_000_000)
    child.add("UNIMPLEMENTED", "cudaFooBar")
    child.add("UNIMPLEMENTED", "cuBarBaz")
    child.write(run_dir)

    (run_dir / "run.json").write_text(json.dumps({
        "command": ["python", "train.py"], "exit_status": 0, "exit_signal": None, "wall_time_s": 0.5,
        "gpu": {"key": "h100", "name": "NVIDIA H100 80GB HBM3", "count": 2}, "predictor": "auto",
        "timewarp_version": "0.1.0", "started_at": "2025-01-01T00:00:00"}))
    (run_dir / "spec.env").write_text("name=NVIDIA H100 80GB HBM3\nkey=h100\nmemory_bytes=85520809984\n")
    write_outputs(run_dir)
    return run_dir


def test_numpy_layout_matches_cffi() -> None:
    ffi = abi.ffi()
    dtype = struct_dtype("tw_record")
    assert dtype.itemsize == ffi.sizeof("tw_record")
    for name, fld in ffi.typeof("tw_record").fields:
        assert dtype.fields[name][1] == fld.offset


def test_load_run_skips_empty_and_unclaimed_slots(run_dir: Path) -> None:
    run = load_run(run_dir)
    by_pid = {p.pid: p for p in run.processes}
    assert set(by_pid) == {100, 200}
    assert len(by_pid[100].records) == 14  # 15 written, one torn
    assert by_pid[200].crashed and not by_pid[100].crashed
    assert by_pid[100].names[1] == "cudaLaunchKernel"


def test_summary(run_dir: Path) -> None:
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["virtual_time_s"] == pytest.approx(0.012)  # the crashed child's last record
    assert s["wall_time_s"] == 0.5
    assert s["speedup"] == pytest.approx(0.024)
    assert s["gpu"] == {"key": "h100", "name": "NVIDIA H100 80GB HBM3", "count": 2}
    assert s["command"] == ["python", "train.py"] and s["exit_status"] == 0
    procs = {p["pid"]: p for p in s["processes"]}
    assert procs[100]["exit_status"] == 0 and procs[100]["virtual_end_s"] == pytest.approx(0.010)
    assert procs[200]["exit_status"] is None and procs[200]["exit_signal"] == 11
    assert procs[200]["virtual_start_s"] == pytest.approx(0.0005)
    devices = {d["device"]: d for d in s["devices"]}
    # 3 MiB of the parent plus 2 MiB of the child at t=600 µs
    assert devices[0]["memory_peak_bytes"] == 5 * MIB
    assert devices[0]["memory_total_bytes"] == 85520809984
    assert devices[1]["memory_peak_bytes"] == 0
    assert s["unimplemented"] == [{"name": "cudaFooBar", "count": 4}, {"name": "cuBarBaz", "count": 1}]
    kernels = s["kernels"]
    assert kernels["count"] == 5
    assert [k["name"] for k in kernels["by_name"]] == ["long()", VECADD_DEMANGLED, "cublasSgemm_v2"]
    vecadd = kernels["by_name"][1]
    assert vecadd["count"] == 3 and vecadd["total_s"] == pytest.approx(80e-6)
    assert vecadd["mean_us"] == pytest.approx(80 / 3)
    assert vecadd["models"] == {"roofline": 2, "table": 1}
    assert s["ops_by_kind"]["memcpy"] == {"count": 1, "total_s": pytest.approx(2e-6)}
    assert s["ops_by_kind"]["gemm"]["count"] == 1
    assert s["predictions_by_model"] == {"roofline": 5, "table": 1}
    assert s["waits"]["count"] == 1
    assert s["waits"]["jumped_s"] == pytest.approx((51_900 + 10_050_000) / 1e9)
    # a program without profiler marks: one step (the ops before the parent's one wait)
    steps = s["steps"]
    assert (steps["window"], steps["pid"], steps["tid"], steps["count"]) == ("run", 100, 100, 1)
    assert steps["list"][0]["span_us"] == pytest.approx(97.0)
    assert steps["list"][0]["busy_us"] == pytest.approx(92.0)  # [5, 15] + [20, 102] µs


def test_trace_json(run_dir: Path) -> None:
    trace = json.loads((run_dir / "trace.json").read_text())
    events = trace["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert procs[100] == "pid 100: python train.py" and procs[200] == "pid 200"
    gpu_pid = {name: pid for pid, name in procs.items()}
    g0, g1 = gpu_pid["GPU 0 (pid 100)"], gpu_pid["GPU 1 (pid 200)"]
    streams = {(e["pid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {(g0, "stream 0"), (g0, "stream 7 (priority -1)"), (g1, "stream 0")} <= streams
    assert sum(1 for p, n in streams if p in (g0, g1)) == 3  # one track per stream

    ops = [e for e in events if e["ph"] == "X" and e["pid"] in (g0, g1)]
    first = next(e for e in ops if e["args"].get("seq") == 1 and e["pid"] == g0)
    assert first["name"] == "vecAdd" and first["cat"] == "kernel"
    assert first["ts"] == pytest.approx(5.0) and first["dur"] == pytest.approx(10.0)
    assert first["args"]["grid"] == "128x1x1" and first["args"]["block"] == "256x1x1"
    assert first["args"]["issue_us"] == pytest.approx(2.0) and first["args"]["model"] == "roofline"
    assert first["args"]["full_name"] == VECADD_DEMANGLED and first["args"]["mangled"] == VECADD
    gemm = next(e for e in ops if e["cat"] == "gemm")
    assert gemm["args"]["graph_id"] == 3 and gemm["args"]["dims"] == [512, 512, 512, 1]
    memcpy = next(e for e in ops if e["cat"] == "memcpy")
    assert memcpy["name"] == "memcpy DtoH pinned" and memcpy["ts"] == pytest.approx(100.0)
    child_op = next(e for e in ops if e["pid"] == g1 and e["name"] == "vecAdd")
    assert child_op["ts"] == pytest.approx(600.0) and child_op["dur"] == pytest.approx(50.0)

    api = [e for e in events if e.get("cat") == "api"]
    assert api == [{"ph": "X", "cat": "api", "name": "cudaLaunchKernel", "pid": 100, "tid": 100,
                    "ts": 1.0, "dur": 2.0}]
    wait = next(e for e in events if e.get("cat") == "wait")
    assert wait["ts"] == pytest.approx(50.0) and wait["dur"] == pytest.approx(52.0)
    jumps = [e for e in events if e.get("cat") == "jump"]
    assert [j["ts"] for j in jumps] == pytest.approx([50.1, 1950.0])  # deduplicated across processes
    flows = [e for e in events if e.get("cat") == "launch"]
    assert {(f["ph"], f["pid"], f["ts"]) for f in flows} == {("s", 100, 2.0), ("f", g0, 5.0)}
    counters = [e for e in events if e["ph"] == "C"]
    assert [c["args"]["bytes"] for c in counters if c["pid"] == g0] == [MIB, 3 * MIB, 2 * MIB]


def test_kernels_csv(run_dir: Path) -> None:
    rows = list(csv.DictReader(io.StringIO((run_dir / "kernels.csv").read_text())))
    assert list(rows[0]) == ["pid", "seq", "name", "mangled_name", "kind", "device", "stream", "graph_id",
                             "issue_us", "start_us", "end_us", "duration_us", "grid", "block", "smem", "bytes",
                             "flops", "model", "m", "n", "k", "batch"]
    assert len(rows) == 6
    assert [r["start_us"] for r in rows] == ["5.000", "20.000", "40.000", "100.000", "600.000", "2000.000"]
    first = rows[0]
    assert (first["name"], first["mangled_name"], first["kind"], first["grid"], first["smem"]) == \
        (VECADD_DEMANGLED, VECADD, "kernel", "128x1x1", "1024")
    gemm = rows[2]
    assert (gemm["kind"], gemm["graph_id"], gemm["m"], gemm["batch"], gemm["flops"]) == \
        ("gemm", "3", "512", "1", str(2 * 512**3))
    assert rows[3]["name"] == "memcpy DtoH pinned" and rows[3]["bytes"] == "4096"
    assert rows[5]["pid"] == "200" and rows[5]["device"] == "1" and rows[5]["duration_us"] == "10000.000"


def test_plots(run_dir: Path) -> None:
    import matplotlib.image

    for name in ("time_breakdown.png", "top_kernels.png"):
        path = run_dir / name
        assert path.stat().st_size > 10_000
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] > 200 and pixels.std() > 0.05


def test_stream_utilisation_bins() -> None:
    import numpy as np
    import pandas as pd

    from emulator.outputs.plots import stream_utilisation

    ops = pd.DataFrame({"pid": [1, 1], "device": [0, 0], "stream": [0, 0], "start_us": [0.0, 50.0],
                        "end_us": [25.0, 100.0], "duration_us": [25.0, 50.0]})
    labels, util, _ = stream_utilisation(ops, 100.0, bins=4)
    assert labels == ["GPU 0 s0"]
    assert np.allclose(util[0], [1.0, 0.0, 1.0, 1.0])


def test_demangle() -> None:
    assert demangle(VECADD) == VECADD_DEMANGLED
    name = demangle("_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEESt5arrayIPcLm1EEEEviT0_T1_")
    assert name.startswith("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>")
    assert demangle("triton_poi_fused_add_0") == "triton_poi_fused_add_0"
    assert demangle("_Znot_a_name") == "_Znot_a_name"
    assert short_name(name, 60) == "at::native::vectorized_elementwise_kernel<…>"
    assert short_name(VECADD_DEMANGLED) == "vecAdd"


def test_report_prints_summary(run_dir: Path) -> None:
    from emulator.report import main

    out = io.StringIO()
    assert main([str(run_dir)], out=out) == 0
    text = out.getvalue()
    assert "virtual time   12.000 ms" in text and "speedup        0.024x" in text
    assert "process 200 (parent 100) crashed: signal 11" in text
    assert "GPU 0 memory peak 5.0 MiB" in text
    assert "cudaFooBar" in text and "vecAdd" in text


def test_engine_steps_prefill_and_decode(tmp_path: Path) -> None:
    """An LLM engine's records: steps inside the cudaProfilerStart/Stop range, cut at the engine
    thread's GPU waits (not its sleeps), classified by tokens per sequence from the GEMMs."""
    engine = TraceFile(pid=300, ppid=1, start_ns=T0, exit_ns=T0 + 10_000_000)
    seq = iter(range(1, 1000))
    vocab, hidden = 32000, 4096

    def step(issue_us: int, tokens: int, sequences: int, graph_id: int = 0) -> None:
        at = issue_us * 1000
        gpu_op(engine, "MEMCPY", "", at + 1_000, at + 2_000, seq=next(seq), issue_ns=T0 + at,
               value=C("TW_COPY_H2D_PINNED"))
        for i, m in enumerate((hidden, 3 * hidden, hidden)):
            gpu_op(engine, "GEMM", "cublasLt", at + 3_000 + 10_000 * i, at + 12_000 + 10_000 * i, seq=next(seq),
                   issue_ns=T0 + at + 100 * (i + 1), dims=(m, tokens, hidden, 1), graph_id=graph_id)
        gpu_op(engine, "GEMM", "cublasLt", at + 40_000, at + 50_000, seq=next(seq), issue_ns=T0 + at + 500,
               dims=(vocab, sequences, hidden, 1))
        engine.add("WAIT", "cudaStreamSynchronize", begin_ns=T0 + at + 600, end_ns=T0 + at + 50_000, value=1)

    step(0, 8192, 1)                                        # warm-up before the profiler range
    engine.add("MARK", "cudaProfilerStart", begin_ns=T0 + 1_000_000, end_ns=T0 + 1_000_000)
    step(1_100, 130, 2)                                     # prefill: 2 prompts of 65 tokens
    gpu_op(engine, "MEMCPY", "", 1_300_000, 1_301_000, seq=next(seq), issue_ns=T0 + 1_250_000)
    engine.add("WAIT", "cudaMemcpy", begin_ns=T0 + 1_260_000, end_ns=T0 + 1_301_000, value=1)  # copies only
    step(1_400, 2, 2, graph_id=5)                           # decode, replayed
    engine.add("WAIT", "sleep", begin_ns=T0 + 1_500_000, end_ns=T0 + 1_600_000, value=2)
    step(1_700, 2, 2, graph_id=5)                           # the sleep does not cut the step before
    engine.add("MARK", "cudaProfilerStop", begin_ns=T0 + 2_000_000, end_ns=T0 + 2_000_000)
    step(3_000, 4, 4)                                       # after the range
    engine.write(tmp_path)
    helper = TraceFile(pid=301, ppid=300, start_ns=T0, exit_ns=T0 + 10_000_000)
    gpu_op(helper, "KERNEL", VECADD, 1_200_000, 1_210_000, seq=1, issue_ns=T0 + 1_200_000)
    helper.write(tmp_path)

    steps = write_outputs(tmp_path)["steps"]
    assert steps["window"] == "cudaProfilerStart" and steps["windows_us"] == [[1000.0, 2000.0]]
    assert (steps["pid"], steps["tid"]) == (300, 300)
    shape = [(s["phase"], s["tokens"], s["sequences"], s["graphs"], s["ops"]) for s in steps["list"]]
    assert shape == [("prefill", 130, 2, 0, 5), ("decode", 2, 2, 1, 5), ("decode", 2, 2, 1, 5)]
    first = steps["list"][0]
    assert first["start_us"] == pytest.approx(1101.0) and first["end_us"] == pytest.approx(1150.0)
    assert first["busy_us"] == pytest.approx(1.0 + 27.0 + 10.0)  # copy, 3 GEMMs back to back, logits
    assert steps["by_phase"]["decode"]["count"] == 2
    assert steps["by_phase"]["decode"]["busy_us"]["median"] == pytest.approx(38.0)
    assert steps["by_phase"]["prefill"]["tokens_median"] == 130


def test_an_op_issued_as_a_wait_began_is_in_the_step_of_its_issue_order(tmp_path: Path) -> None:
    """The clock stood still at 200 µs: GEMM 2 was issued, the thread waited (no time passed),
    GEMM 3 was issued. GEMM 2's record was written after the wait's (a collective's record is
    written once its peers arrived), GEMM 3's too. The wait's seq (the latest op issued when it
    began: 2) puts GEMM 2 in the first step and GEMM 3 in the second, whatever the file order."""
    engine = TraceFile(pid=400, ppid=1, start_ns=T0, exit_ns=T0 + 1_000_000)
    gemm = {"dims": (4096, 8, 4096, 1)}
    gpu_op(engine, "GEMM", "cublasLt", 110_000, 150_000, seq=1, issue_ns=T0 + 100_000, **gemm)
    engine.add("WAIT", "cudaStreamSynchronize", begin_ns=T0 + 200_000, end_ns=T0 + 200_000, value=1, seq=2)
    gpu_op(engine, "GEMM", "cublasLt", 210_000, 250_000, seq=2, issue_ns=T0 + 200_000, **gemm)
    gpu_op(engine, "GEMM", "cublasLt", 260_000, 300_000, seq=3, issue_ns=T0 + 200_000, **gemm)
    engine.add("WAIT", "cudaStreamSynchronize", begin_ns=T0 + 500_000, end_ns=T0 + 500_000, value=1, seq=3)
    engine.write(tmp_path)
    steps = write_outputs(tmp_path)["steps"]
    assert [(s["ops"], s["start_us"], s["end_us"]) for s in steps["list"]] == [(2, 110.0, 250.0), (1, 260.0, 300.0)]


def test_steps_of_a_run_without_gpu_ops(tmp_path: Path) -> None:
    TraceFile(pid=400, ppid=1, start_ns=T0, exit_ns=T0 + 1_000).write(tmp_path)
    steps = write_outputs(tmp_path)["steps"]
    assert steps["count"] == 0 and steps["pid"] is None and steps["list"] == [] and steps["by_phase"] == {}


def test_a_client_result_without_send_times_takes_them_from_its_http_requests(tmp_path: Path) -> None:
    """SGLang's bench_serving saves no send times: the requests' are the times its process wrote
    their request lines (the shim's marks), the last N POSTs to its busiest path. A warm-up POST
    comes before them and a GET of the server's state after; the shell that started the client
    names the file too but sends nothing."""
    run_dir = tmp_path / "run"
    result = run_dir / "bench" / "rate-4.jsonl"
    result.parent.mkdir(parents=True)
    shell = TraceFile(pid=300, ppid=1, start_ns=T0, exit_ns=T0 + 9_000_000_000)
    shell.add("MARK", f"command bash -c python -m sglang.bench_serving --output-file {result} && true", begin_ns=T0)
    shell.write(run_dir)
    client = TraceFile(pid=301, ppid=300, start_ns=T0, exit_ns=T0 + 9_000_000_000)
    client.add("MARK", f"command python -m sglang.bench_serving --request-rate 4 --output-file {result}",
               begin_ns=T0)
    sends = [T0 + 2_000_000_000 + k * 250_000_000 for k in range(3)]   # 0.25 s apart
    for at, what in [(T0 + 100_000_000, "GET /get_model_info"), (T0 + 500_000_000, "POST /generate"),
                     *[(at, "POST /generate") for at in sends], (T0 + 8_000_000_000, "GET /server_info")]:
        client.add("MARK", f"http request {what}", begin_ns=at)
    client.write(run_dir)
    # the server's side: each request read 1 ms after it was sent, its two events written after
    # 5 and 9 ms, on connections 7, 8, 9 (a health probe on connection 6 streams nothing)
    server = TraceFile(pid=302, ppid=1, start_ns=T0, exit_ns=T0 + 9_000_000_000)
    server.add("MARK", "http received GET /health", begin_ns=T0 + 50_000_000, value=6)
    for conn, at in enumerate(sends, start=7):
        server.add("MARK", "http received POST /generate", begin_ns=at + 1_000_000, value=conn)
        server.add("MARK", "http response 200", begin_ns=at + 2_000_000, value=conn)
        server.add("MARK", "http chunk", begin_ns=at + 6_000_000, value=conn)
        server.add("MARK", "http chunk", begin_ns=at + 10_000_000, value=conn)
    server.write(run_dir)
    result.write_text(json.dumps({"completed": 3, "ttfts": [0.01, 0.02, 0.01], "itls": [[0.005], [0.005], [0.005]],
                                  "output_lens": [2, 2, 2], "errors": ["", "", ""]}) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"command": ["bash"], "exit_status": 0, "gpu": {"key": "h100"}}))
    bench = write_outputs(run_dir)["serving"]["benchmarks"][0]
    assert bench["sent_from"] == "HTTP requests of pid 301 (POST /generate)"
    assert bench["inter_arrival_s"] == {"mean": pytest.approx(0.25), "count": 2}
    assert bench["begin_s"] == pytest.approx(2.0) and bench["duration_s"] == pytest.approx(0.5 + 0.015)
    served = bench["server"]
    assert (served["pid"], served["path"], served["requests"], served["statuses"]) == (302, "POST /generate", 3,
                                                                                        {"200": 3})
    assert served["ttft_ms"]["p50"] == pytest.approx(5.0) and served["e2e_ms"]["p50"] == pytest.approx(9.0)
    # the client's TTFT (10-20 ms from its send) is at least the server's (5 ms from its read)
    assert served["client_minus_server_ms"]["ttft_ms.p50"] == pytest.approx(10.0 - 5.0)
    commands = {p["pid"]: p["command"] for p in write_outputs(run_dir)["processes"]}
    assert commands[301].startswith("python -m sglang.bench_serving --request-rate 4")
