"""The outputs of 2-rank runs under `emulate --gpus 2`. A C program of two processes talking
through NCCL (tests/shim/cuda/nccl_ranks.c): each rank's waiting, communication and steps equal,
to the ns, what the shim's records say. An unmodified torchrun DDP job: summary.json lists both
ranks (identified by their NCCL communicator) with their breakdown and step times, and trace.json
has a track per rank and flow arrows linking the ranks' ops of every all-reduce."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from timewarp_testing import EmulatedRun, requires_cuda_torch, run_emulated

from emulator.outputs.records import load_run, rec
from shim import abi

NCCL_RANKS = Path(__file__).resolve().parents[1] / "shim" / "cuda" / "nccl_ranks.c"
WORKLOAD = Path(__file__).resolve().parent / "workloads" / "ddp_train.py"
TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS = 3


@pytest.fixture(scope="module")
def nccl_ranks(shim_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from shim import build

    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None, "a C compiler is a prerequisite of the tests"
    exe = tmp_path_factory.mktemp("nccl") / "nccl_ranks"
    subprocess.run([cc, "-std=gnu11", "-Wall", "-Wextra", "-Werror", *[f"-I{d}" for d in build.vendor_include_dirs()],
                    "-o", str(exe), str(NCCL_RANKS), "-ldl"], check=True, capture_output=True, text=True)
    return exe


def rank_records(run: EmulatedRun) -> dict[int, dict]:
    """Per NCCL rank (= GPU): its pid, process span and GPU ops from the records."""
    out: dict[int, dict] = {}
    for proc in load_run(run.run_dir).processes:
        ops = proc.records[proc.records["kind"] == rec("GPU_OP")]
        colls = ops[ops["op_kind"] == abi.constant("TW_OP_COLLECTIVE")]
        if len(colls):
            out[int(colls[0]["dims"][2])] = {"pid": proc.pid, "start": proc.start_virtual_ns,
                                             "end": proc.end_virtual_ns, "colls": colls,
                                             "others": ops[ops["op_kind"] != abi.constant("TW_OP_COLLECTIVE")]}
    return out


def ns(seconds: float) -> int:
    return round(seconds * 1e9)


@pytest.fixture(scope="module")
def timing_run(nccl_ranks: Path, tmp_path_factory: pytest.TempPathFactory) -> EmulatedRun:
    """Rank r sleeps r x 10 ms before a 64 MiB all-reduce: rank 0 waits for rank 1."""
    run = run_emulated([str(nccl_ranks), "2", "timing"], tmp_path_factory.mktemp("timing") / "run",
                       extra=["--gpus", "2"])
    assert run.exit_status == 0, run.stderr[-3000:]
    return run


def test_waiting_is_the_arrival_gap_to_the_ns(timing_run: EmulatedRun) -> None:
    """Each rank's only GPU op is the all-reduce: it waits from its arrival to the last
    arrival (the transfer's begin), exposes the whole transfer and computes nothing."""
    records, summary = rank_records(timing_run), timing_run.summary
    assert sorted(records) == [0, 1]
    times = {}
    for r, got in records.items():
        [c] = got["colls"]
        assert len(got["others"]) == 0, got["others"]
        times[r] = (int(c["value"]), int(c["begin_ns"]), int(c["end_ns"]))
    begin, end = times[0][1], times[0][2]
    assert times[1][1:] == (begin, end)                      # one transfer for both
    arrivals = {r: t[0] for r, t in times.items()}
    gap = max(arrivals.values()) - min(arrivals.values())
    late = max(arrivals, key=lambda r: arrivals[r])
    assert gap > 0 and begin == arrivals[late]
    assert [(e["rank"], e["pid"], e["device"], e["comm_rank"], e["comm_size"]) for e in summary["ranks"]] == \
        [(r, records[r]["pid"], r, r, 2) for r in (0, 1)]
    for e in summary["ranks"]:
        r, got = e["rank"], records[e["rank"]]
        assert ns(e["span_s"]) == got["end"] - got["start"], e
        assert ns(e["waiting_s"]) == ns(e["wait_total_s"]) == begin - arrivals[r], e
        assert ns(e["exposed_comm_s"]) == ns(e["comm_s"]) == end - begin and e["hidden_comm_s"] == 0, e
        assert e["compute_s"] == 0 and e["comm_slowdown_s"] == 0 and e["collectives"] == 1, e
        assert ns(e["idle_s"]) == (got["end"] - got["start"]) - (end - arrivals[r]), e
        assert (e["arrived_last"], ns(e["made_others_wait_s"])) == ((1, gap) if r == late else (0, 0)), e
    [allreduce] = summary["collectives"]["by_name"]
    assert (allreduce["name"], allreduce["instances"], ns(allreduce["transfer_s"]), ns(allreduce["waiting_s"])) == \
        ("nccl:allreduce", 1, end - begin, gap)
    assert round(allreduce["max_arrival_spread_us"] * 1e3) == gap


def test_steps_include_the_wait_and_the_run_step_is_the_waiting_rank(timing_run: EmulatedRun) -> None:
    records, steps = rank_records(timing_run), timing_run.summary["steps"]
    t0 = load_run(timing_run.run_dir).start_virtual_ns
    arrivals = {r: int(got["colls"][0]["value"]) for r, got in records.items()}
    end = int(records[0]["colls"][0]["end_ns"])
    for r in steps["ranks"]:   # one step each, from its stream reaching the all-reduce to its end
        [step] = r["list"]
        assert (round(step["start_us"] * 1e3), round(step["end_us"] * 1e3)) == \
            (arrivals[r["rank"]] - t0, end - t0), (r["rank"], step)
    [run_step] = steps["across_ranks"]["list"]
    early = min(arrivals, key=lambda r: arrivals[r])
    assert run_step["ranks"] == [0, 1] and run_step["longest_rank"] == early, run_step
    assert round(run_step["span_us"] * 1e3) == end - arrivals[early], run_step


def test_trace_draws_the_wait_and_links_the_ranks(timing_run: EmulatedRun) -> None:
    records = rank_records(timing_run)
    t0 = load_run(timing_run.run_dir).start_virtual_ns
    events = json.loads((timing_run.run_dir / "trace.json").read_text())["traceEvents"]
    names = {e["args"]["name"]: e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    tracks = {r: names[f"rank {r} · GPU {r} · pid {got['pid']}"] for r, got in records.items()}
    arrivals = {r: int(got["colls"][0]["value"]) for r, got in records.items()}
    begin = int(records[0]["colls"][0]["begin_ns"])
    early, late = sorted(arrivals, key=lambda r: arrivals[r])
    [wait] = [e for e in events if e.get("cat") == "collective_wait"]
    assert wait["pid"] == tracks[early] and wait["args"]["last_rank"] == late
    assert (round(wait["ts"] * 1e3), round(wait["dur"] * 1e3)) == (arrivals[early] - t0, begin - arrivals[early])
    flow = {e["ph"]: e["pid"] for e in events if e.get("cat") == "rendezvous"}
    assert flow == {"s": tracks[early], "f": tracks[late]}


def test_what_the_collective_adds_to_a_kernel_beside_it_is_communication(nccl_ranks: Path, tmp_path: Path) -> None:
    """nccl_ranks.c overlap: a 4 GiB memset beside a 64 MiB all-reduce on another stream, then
    alone. The first memset's record says by how many ns the all-reduce slowed it (its `value`):
    those, its last ones, are communication; the rest of both memsets is compute."""
    run = run_emulated([str(nccl_ranks), "2", "overlap"], tmp_path / "run", extra=["--gpus", "2"])
    assert run.exit_status == 0, run.stderr[-3000:]
    records = rank_records(run)
    beside = abi.constant("TW_FLAG_BESIDE_COLLECTIVE")
    for e in run.summary["ranks"]:
        got = records[e["rank"]]
        [c] = got["colls"]
        first, alone = got["others"]
        assert int(first["flags"]) & beside and not int(alone["flags"]) & beside
        slowed = int(first["value"])
        assert slowed > 0 and int(alone["begin_ns"]) >= max(int(c["end_ns"]), int(first["end_ns"]))
        arrival, begin, end = int(c["value"]), int(c["begin_ns"]), int(c["end_ns"])
        work = (int(first["begin_ns"]), int(first["end_ns"]) - slowed)   # the first memset but its slowed tail
        tail = (work[1], int(first["end_ns"]))

        def overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
            return max(0, min(a[1], b[1]) - max(a[0], b[0]))

        alone_ns = int(alone["end_ns"] - alone["begin_ns"])
        assert ns(e["compute_s"]) == work[1] - work[0] + alone_ns, e
        assert ns(e["comm_slowdown_s"]) == slowed and e["slowed_ops"] == 1, e
        # the tail where no transfer runs (the transfer counts first), and the transfer where
        # the memset does not compute
        assert ns(e["exposed_slowdown_s"]) == slowed - overlap(tail, (begin, end)), e
        assert ns(e["exposed_comm_s"]) == ns(e["exposed_slowdown_s"]) + (end - begin) - overlap(work, (begin, end)), e
        assert ns(e["waiting_s"]) == (begin - arrival) - overlap((arrival, begin), work) - overlap((arrival, begin), tail)
        assert ns(e["compute_s"] + e["exposed_comm_s"] + e["waiting_s"] + e["idle_s"]) == got["end"] - got["start"]
    slowed_total = sum(int(got["others"][0]["value"]) for got in records.values())
    assert ns(run.summary["collectives"]["comm_slowdown_s"]) == slowed_total


@pytest.fixture(scope="module")
def ddp_run(shim_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict[int, dict]]:
    """(run dir, summary, per rank: its pid and its training steps' host windows and CUDA-event times)."""
    run = run_emulated([str(TORCHRUN), "--nproc-per-node", "2", str(WORKLOAD), "--steps", str(STEPS)],
                       tmp_path_factory.mktemp("ddp") / "run", extra=["--gpus", "2"],
                       env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=1200)
    assert run.exit_status == 0, f"{run.stdout[-3000:]}\n{run.stderr[-6000:]}\n{run.crash_reports()}"
    ranks: dict[int, dict] = defaultdict(lambda: {"steps": []})
    for line in run.stdout.splitlines():
        if line.startswith("RESULT "):
            fields = dict(f.split("=", 1) for f in line[len("RESULT "):].split())
            r = ranks[int(fields["rank"])]
            if "pid" in fields:
                r["pid"] = int(fields["pid"])
            elif "step" in fields:
                r["steps"].append((int(fields["begin_ns"]), int(fields["end_ns"]), float(fields["ms"])))
    assert sorted(ranks) == [0, 1] and all(len(r["steps"]) == STEPS for r in ranks.values()), run.stdout[-3000:]
    return run.run_dir, run.summary, dict(ranks)


@requires_cuda_torch
def test_summary_lists_both_ranks_with_their_breakdown(ddp_run: tuple[Path, dict, dict[int, dict]]) -> None:
    _, summary, ranks = ddp_run
    # torch.distributed's rank r is NCCL rank r of the world communicator, on GPU LOCAL_RANK = r
    assert [(r["rank"], r["pid"], r["device"], r["comm_rank"], r["comm_size"]) for r in summary["ranks"]] == \
        [(0, ranks[0]["pid"], 0, 0, 2), (1, ranks[1]["pid"], 1, 1, 2)]
    for r in summary["ranks"]:
        parts = r["compute_s"] + r["exposed_comm_s"] + r["waiting_s"] + r["idle_s"]
        assert parts == pytest.approx(r["span_s"], abs=1e-9), r
        assert r["compute_s"] > 0 and r["comm_s"] > 0 and r["hidden_comm_s"] >= 0, r
    # the same model on the same batch on both ranks: the same kernels and predictions (to 0.5 %:
    # an element-wise kernel's bytes reach to its allocation's end, which the allocator places
    # differently per process; tests/e2e/test_distributed.py)
    compute = [r["compute_s"] for r in summary["ranks"]]
    assert abs(compute[0] - compute[1]) <= 5e-3 * max(compute), compute
    names = {c["name"]: c for c in summary["collectives"]["by_name"]}
    # the workload's all-reduce, its broadcast and all-gather, DDP's gradient buckets per step
    assert names["nccl:allreduce"]["instances"] >= 1 + STEPS and names["nccl:allreduce"]["max_participants"] == 2
    assert summary["collectives"]["ops"] == 2 * summary["collectives"]["instances"]


@requires_cuda_torch
def test_steps_per_rank_and_across_ranks(ddp_run: tuple[Path, dict, dict[int, dict]]) -> None:
    """Each rank's training steps (between two `end.synchronize()`) are steps of its own: inside
    the step's host window, no longer than its CUDA events say (they are recorded on the step's
    stream before its first op and after its last); the run's step is the longer of the two."""
    run_dir, summary, ranks = ddp_run
    t0 = load_run(run_dir).start_virtual_ns
    steps = summary["steps"]
    by_rank = {r["rank"]: r for r in steps["ranks"]}
    assert sorted(by_rank) == [0, 1]
    for rank, r in ranks.items():
        mine = by_rank[rank]
        assert mine["pid"] == r["pid"] and mine["device"] == rank and mine["count"] >= STEPS, mine
        for begin_ns, end_ns, event_ms in r["steps"][1:]:   # step 0 warms up (DDP rebuilds its buckets after it)
            inside = [s for s in mine["list"] if begin_ns <= t0 + s["start_us"] * 1e3 and t0 + s["end_us"] * 1e3 <= end_ns]
            assert inside, (rank, begin_ns, end_ns, mine["list"])
            span_us = max(s["end_us"] for s in inside) - min(s["start_us"] for s in inside)
            assert span_us <= event_ms * 1e3 + 1.0, (rank, span_us, event_ms, inside)
    across = steps["across_ranks"]
    last_begin = min(r["steps"][-1][0] for r in ranks.values())
    last = [s for s in across["list"] if t0 + s["start_us"] * 1e3 >= last_begin and s["ops"] > 100]
    assert last, across["list"]
    for s in last:   # the last training step: both ranks, linked by its gradient all-reduces
        assert s["ranks"] == [0, 1] and s["span_us"] == max(s["rank_span_us"]), s
        assert s["longest_rank"] == s["rank_span_us"].index(s["span_us"]), s


@requires_cuda_torch
def test_trace_has_two_rank_tracks_and_flows_for_the_all_reduces(ddp_run: tuple[Path, dict, dict[int, dict]]) -> None:
    run_dir, summary, ranks = ddp_run
    events = json.loads((run_dir / "trace.json").read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    tracks = {rank: next(pid for pid, name in names.items() if name == f"rank {rank} · GPU {rank} · pid {ranks[rank]['pid']}")
              for rank in (0, 1)}
    rank_of_track = {pid: rank for rank, pid in tracks.items()}
    allreduces: dict[str, dict[int, dict]] = defaultdict(dict)
    for e in events:
        if e["ph"] == "X" and e.get("cat") == "collective" and e["name"] == "nccl:allreduce":
            allreduces[e["args"]["rendezvous"]][rank_of_track[e["pid"]]] = e
    assert len(allreduces) == next(c["instances"] for c in summary["collectives"]["by_name"]
                                   if c["name"] == "nccl:allreduce")
    slices = [e for e in events if e["ph"] == "X" and "rendezvous" in e.get("args", {})]

    def instance_at(flow: dict) -> str:
        [hit] = {e["args"]["rendezvous"] for e in slices
                 if e["pid"] == flow["pid"] and e["tid"] == flow["tid"] and e["ts"] <= flow["ts"] <= e["ts"] + e["dur"]}
        return hit

    flows: dict[int, dict[str, dict]] = defaultdict(dict)
    for e in events:
        if e.get("cat") == "rendezvous":
            flows[e["id"]][e["ph"]] = e
    linked: dict[str, set[int]] = defaultdict(set)
    for flow in flows.values():
        start, finish = flow["s"], flow["f"]
        assert start["ts"] <= finish["ts"] and instance_at(start) == instance_at(finish), flow
        linked[instance_at(start)] |= {rank_of_track[start["pid"]], rank_of_track[finish["pid"]]}
    for rid, ops in allreduces.items():
        assert sorted(ops) == [0, 1], (rid, ops)                   # one op per rank, one transfer
        assert ops[0]["ts"] == ops[1]["ts"] and ops[0]["dur"] == ops[1]["dur"], ops
        assert linked[rid] == {0, 1}, (rid, linked.get(rid))       # an arrow joins the two ranks
        late = max(ops.values(), key=lambda e: e["args"]["arrival_us"])
        for rank, op in ops.items():                                # who waited shows it as waiting
            waits = [e for e in events if e.get("cat") == "collective_wait" and e["args"]["rendezvous"] == rid
                     and e["pid"] == tracks[rank]]
            if op is late or op["args"]["arrival_us"] == op["ts"]:
                assert not waits
            else:
                [wait] = waits
                assert wait["ts"] == op["args"]["arrival_us"] and wait["args"]["last_rank"] == rank_of_track[late["pid"]]
                assert wait["ts"] + wait["dur"] == pytest.approx(op["ts"], abs=2e-3)
