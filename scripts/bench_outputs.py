"""Benchmark of the outputs stage: synthesise a run directory with N records (default 10^6) in
the shim's binary layout, then time reading it and writing each output.

    python scripts/bench_outputs.py [--records 1000000] [--processes 2] [--ranks] [--keep DIR]

--ranks makes each process a rank on its own device, with 2 % of its ops collectives of one
rendezvous per instance across the processes (records.h TW_FLAG_RENDEZVOUS).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from shim import abi


def _make_ranks(ops: np.ndarray, rank: int, processes: int, name_id: int, rng: np.random.Generator) -> None:
    """Every 50th op: a collective on stream 4 of this rank's device, rendezvous k of k in order."""
    C = abi.constant  # noqa: N806 - reads like the C constant
    ops["device"] = rank
    coll = ops[::50]
    coll["op_kind"] = C("TW_OP_COLLECTIVE")
    coll["stream_id"] = 4
    coll["name_id"] = name_id
    coll["flags"] = C("TW_FLAG_RENDEZVOUS")
    coll["addr"] = np.arange(1, len(coll) + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    coll["value"] = coll["begin_ns"] - rng.integers(0, 20_000, len(coll))
    coll["dims"] = np.stack([np.full(len(coll), processes), np.full(len(coll), 1 << 20),
                             np.full(len(coll), rank), np.arange(1, len(coll) + 1)], axis=1)
    ops[::50] = coll


def synthesise(run_dir: Path, records: int, processes: int, seed: int = 0, ranks: bool = False) -> None:
    """Write proc/<pid>.trace + .names for `processes` processes sharing `records` records:
    mostly GPU ops over 4 streams, an API span per launch, some waits, jumps and allocations."""
    from emulator.outputs.records import struct_dtype

    rng = np.random.default_rng(seed)
    rec_dtype, hdr_dtype = struct_dtype("tw_record"), struct_dtype("tw_trace_header")
    C = abi.constant  # noqa: N806 - reads like the C constant
    t0 = 10**12
    (run_dir / "proc").mkdir(parents=True)
    kernel_names = [f"_ZN4test6kernelILi{i}EEEvPfi" for i in range(400)]
    per_proc = records // processes
    for p in range(processes):
        pid = 1000 + p
        n_ops = per_proc * 45 // 100
        r = np.zeros(per_proc, dtype=rec_dtype)
        ops, api, rest = r[:n_ops], r[n_ops:2 * n_ops], r[2 * n_ops:]
        dur = rng.integers(2_000, 200_000, n_ops)
        gap = rng.integers(0, 5_000, n_ops)
        begin = t0 + np.cumsum(dur + gap) - dur
        ops["kind"] = C("TW_REC_GPU_OP")
        ops["op_kind"] = rng.choice([C("TW_OP_KERNEL"), C("TW_OP_GEMM"), C("TW_OP_MEMCPY")], n_ops, p=[.8, .15, .05])
        ops["model"] = rng.choice([C("TW_MODEL_ROOFLINE"), C("TW_MODEL_TABLE")], n_ops)
        ops["tid"] = pid
        ops["stream_id"] = rng.integers(0, 4, n_ops)
        ops["name_id"] = rng.integers(1, len(kernel_names) + 1, n_ops)
        ops["seq"] = np.arange(n_ops)
        ops["issue_ns"] = begin - 3_000
        ops["begin_ns"], ops["end_ns"] = begin, begin + dur
        ops["grid"] = [128, 1, 1]
        ops["block"] = [256, 1, 1]
        ops["dims"] = [1024, 1024, 512, 1]
        if ranks:
            _make_ranks(ops, p, processes, len(kernel_names) + 2, rng)
        api["kind"] = C("TW_REC_API")
        api["tid"] = pid
        api["name_id"] = len(kernel_names) + 1
        api["begin_ns"], api["end_ns"] = begin - 4_000, begin - 2_000
        kinds = rng.choice([C("TW_REC_WAIT"), C("TW_REC_JUMP"), C("TW_REC_ALLOC"), C("TW_REC_FREE")], len(rest))
        rest["kind"] = kinds
        rest["tid"] = pid
        at = np.sort(rng.integers(t0, int(begin[-1]), len(rest)))
        rest["begin_ns"], rest["end_ns"] = at, at + 1_000
        rest["value"] = rng.integers(0, 1 << 34, len(rest))
        header = np.zeros(1, dtype=hdr_dtype)
        header["magic"], header["abi_version"] = C("TW_TRACE_MAGIC"), C("TW_ABI_VERSION")
        header["record_bytes"], header["record_count"] = rec_dtype.itemsize, per_proc
        header["pid"], header["ppid"] = pid, (1000 if p else 1)
        header["start_virtual_ns"], header["exit_virtual_ns"] = t0, int(begin[-1] + dur[-1])
        with (run_dir / "proc" / f"{pid}.trace").open("wb") as f:
            f.write(header.tobytes().ljust(C("TW_TRACE_HEADER_BYTES"), b"\0"))
            f.write(r.tobytes())
        names = [*kernel_names, "cudaLaunchKernel", "nccl:allreduce"]
        (run_dir / "proc" / f"{pid}.names").write_text("".join(f"{i + 1}\t{n}\n" for i, n in enumerate(names)))
    (run_dir / "run.json").write_text(json.dumps({"command": ["bench"], "exit_status": 0, "exit_signal": None,
                                                  "wall_time_s": 1.0, "gpu": {"key": "h100", "name": "H100",
                                                                              "count": 1}, "predictor": "roofline"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--ranks", action="store_true", help="each process a rank, with collectives")
    parser.add_argument("--keep", type=Path, help="write the run here and keep it")
    args = parser.parse_args()

    from emulator.outputs.kernels_csv import write_kernels_csv
    from emulator.outputs.ops import run_ops
    from emulator.outputs.plots import plot_time_breakdown, plot_top_kernels
    from emulator.outputs.records import load_run
    from emulator.outputs.summary import build_summary
    from emulator.outputs.trace_json import write_trace

    run_dir = args.keep or Path(tempfile.mkdtemp(prefix="bench_outputs_")) / "run"
    synthesise(run_dir, args.records, args.processes, ranks=args.ranks)
    try:
        # wall and CPU seconds per step: on a shared machine the CPU time is the steadier figure
        steps: list[tuple[str, float, float]] = []
        t, cpu = time.perf_counter(), time.process_time()

        def step(name: str) -> None:
            nonlocal t, cpu
            now, now_cpu = time.perf_counter(), time.process_time()
            steps.append((name, now - t, now_cpu - cpu))
            t, cpu = now, now_cpu

        run = load_run(run_dir)
        step(f"load_run ({run.record_count} records)")
        ops = run_ops(run)
        step(f"ops table ({len(ops)} GPU ops)")
        summary = build_summary(run, ops)
        step("summary")
        write_kernels_csv(ops, run_dir / "kernels.csv")
        step("kernels.csv")
        events = write_trace(run, ops, run_dir / "trace.json")
        step(f"trace.json ({events} events)")
        plot_time_breakdown(summary, ops, run_dir / "time_breakdown.png")
        plot_top_kernels(summary, run_dir / "top_kernels.png")
        step("plots")
        print(f"{'step':<40} {'wall':>8}   {'cpu':>8}")
        for name, seconds, cpu_seconds in steps:
            print(f"{name:<40} {seconds:8.3f} s {cpu_seconds:8.3f} s")
        print(f"{'total':<40} {sum(s[1] for s in steps):8.3f} s {sum(s[2] for s in steps):8.3f} s")
    finally:
        if args.keep is None:
            shutil.rmtree(run_dir.parent)


if __name__ == "__main__":
    main()
