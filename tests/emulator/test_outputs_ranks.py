"""The outputs of a multi-rank run, from synthesised records laid out as the shim writes them
(shim/src/timeline.c emit_coll_record: a collective's record has TW_FLAG_RENDEZVOUS, addr = the
rendezvous id, value = this participant's arrival, begin = the latest arrival, dims = communicator
size, count, rank in the communicator, sequence number): rank identity, the per-rank breakdown
with exact numbers, the trace's rank tracks, wait slices and flows, per-rank steps."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from test_outputs import T0, TraceFile, gpu_op

from emulator.outputs import write_outputs
from emulator.outputs.ranks import exclusive_ns
from shim import abi

US = 1_000
RENDEZVOUS = abi.constant("TW_FLAG_RENDEZVOUS")
C1, C2 = 0x1111_0000_0000_0001, 0x1111_0000_0000_0002   # rendezvous ids (the same on every participant)


def collective(t: TraceFile, name: str, rid: int, arrival_us: int, begin_us: int, end_us: int, comm: tuple[int, int],
               seq: int, **fields: object) -> None:
    """A collective's record as emit_coll_record writes it; comm = (size, rank in it)."""
    gpu_op(t, "COLLECTIVE", name, begin_us * US, end_us * US, flags=RENDEZVOUS, addr=rid,
           value=T0 + arrival_us * US, dims=(comm[0], 1 << 20, comm[1], seq), **fields)


def sync(t: TraceFile, begin_us: int, end_us: int) -> None:
    t.add("WAIT", "stream synchronize", begin_ns=T0 + begin_us * US, end_ns=T0 + end_us * US, value=1)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A launcher (pid 599) and two rank processes over 1000 µs. Rank 0 of the communicator is
    pid 601 on GPU 1, rank 1 is pid 600 on GPU 0: ranks come from the communicator, not from pids
    or devices. Times in µs:

    pid 601 (rank 0, GPU 1)                     pid 600 (rank 1, GPU 0)
      stream 0: kernel [100, 300] issued 90       stream 0: kernel [150, 400] issued 140
      stream 2: allreduce C1 arrives 250,          stream 2: allreduce C1 arrives 400 (last),
                transfer [400, 500] issued 240               transfer [400, 500] issued 145
      stream 0: kernel [450, 600] issued 260      wait 160..500
      wait 270..600                               stream 2: allreduce C2 arrives 620,
      stream 0: kernel [650, 800] issued 640                transfer [800, 850] issued 610
      stream 0: allreduce C2 arrives 800 (last),  wait 630..850
                transfer [800, 850] issued 650
      wait 660..850
    """
    run_dir = tmp_path_factory.mktemp("ranks")
    launcher = TraceFile(pid=599, ppid=1, start_ns=T0, exit_ns=T0 + 1000 * US)
    launcher.add("WAIT", "sleep", begin_ns=T0, end_ns=T0 + 1000 * US, value=2)
    launcher.write(run_dir)

    a = TraceFile(pid=601, ppid=599, start_ns=T0, exit_ns=T0 + 1000 * US)
    gpu_op(a, "KERNEL", "k1", 100 * US, 300 * US, seq=1, issue_ns=T0 + 90 * US, device=1)
    collective(a, "nccl:allreduce", C1, 250, 400, 500, (2, 0), seq=1, device=1, stream_id=2, issue_ns=T0 + 240 * US)
    gpu_op(a, "KERNEL", "k2", 450 * US, 600 * US, seq=3, issue_ns=T0 + 260 * US, device=1)
    sync(a, 270, 600)
    gpu_op(a, "KERNEL", "k4", 650 * US, 800 * US, seq=4, issue_ns=T0 + 640 * US, device=1)
    collective(a, "nccl:allreduce", C2, 800, 800, 850, (2, 0), seq=2, device=1, issue_ns=T0 + 650 * US)
    sync(a, 660, 850)
    a.write(run_dir)

    b = TraceFile(pid=600, ppid=599, start_ns=T0, exit_ns=T0 + 1000 * US)
    gpu_op(b, "KERNEL", "k3", 150 * US, 400 * US, seq=1, issue_ns=T0 + 140 * US)
    collective(b, "nccl:allreduce", C1, 400, 400, 500, (2, 1), seq=1, stream_id=2, issue_ns=T0 + 145 * US)
    sync(b, 160, 500)
    collective(b, "nccl:allreduce", C2, 620, 800, 850, (2, 1), seq=2, stream_id=2, issue_ns=T0 + 610 * US)
    sync(b, 630, 850)
    b.write(run_dir)

    (run_dir / "run.json").write_text(json.dumps({
        "command": ["torchrun", "--nproc-per-node", "2", "train.py"], "exit_status": 0, "wall_time_s": 1.0,
        "gpu": {"key": "h100", "name": "NVIDIA H100 80GB HBM3", "count": 2}, "predictor": "roofline"}))
    return run_dir, write_outputs(run_dir)


def test_ranks_come_from_the_communicator(two_ranks: tuple[Path, dict]) -> None:
    _, summary = two_ranks
    identity = [(r["rank"], r["pid"], r["device"], r["comm_rank"], r["comm_size"], r["label"]) for r in summary["ranks"]]
    assert identity == [(0, 601, 1, 0, 2, "rank 0 · GPU 1 · pid 601"), (1, 600, 0, 1, 2, "rank 1 · GPU 0 · pid 600")]


def test_breakdown_of_a_hand_built_overlap(two_ranks: tuple[Path, dict]) -> None:
    """Rank 0: compute [100,300] + [450,600] + [650,800] = 500 µs; C1's wait [250,400] has compute
    under it until 300: 100 µs waiting; C1's transfer [400,500] has k2 under it from 450, C2's
    [800,850] nothing: 50 + 50 µs exposed; idle 1000 - 700 = 300 µs. Rank 1: compute [150,400] =
    250, both transfers exposed (150), C2's wait [620,800] = 180, idle 420."""
    _, summary = two_ranks
    r0, r1 = summary["ranks"]
    expected = {0: (1000, 500, 100, 100, 300, 150, 50), 1: (1000, 250, 150, 180, 420, 150, 0)}
    for r in (r0, r1):
        got = tuple(round(r[k] * 1e6, 6) for k in ("span_s", "compute_s", "exposed_comm_s", "waiting_s", "idle_s",
                                                      "comm_s", "hidden_comm_s"))
        assert got == expected[r["rank"]], (r["rank"], got)
        assert r["compute_s"] + r["exposed_comm_s"] + r["waiting_s"] + r["idle_s"] == pytest.approx(r["span_s"])
        assert r["collectives"] == 2
    # each arrived last once: rank 1 at C1 (rank 0 waited 150 µs), rank 0 at C2 (rank 1 waited 180)
    assert (r0["arrived_last"], r0["made_others_wait_s"]) == (1, pytest.approx(180e-6))
    assert (r1["arrived_last"], r1["made_others_wait_s"]) == (1, pytest.approx(150e-6))
    collectives = summary["collectives"]
    assert (collectives["instances"], collectives["ops"]) == (2, 4)
    [allreduce] = collectives["by_name"]
    assert allreduce["transfer_s"] == pytest.approx(150e-6) and allreduce["waiting_s"] == pytest.approx(330e-6)
    assert allreduce["max_arrival_spread_us"] == pytest.approx(180.0)


def test_exclusive_ns_gives_earlier_classes_priority() -> None:
    import numpy as np

    first = (np.array([0, 50]), np.array([20, 60]))
    second = (np.array([10, 40]), np.array([45, 70]))
    third = (np.array([-100]), np.array([5]))
    exclusive, union = exclusive_ns(0, 100, [first, second, third])
    # second covers [10, 70]: [20, 50] and [60, 70] outside the first; the third lies under the first
    assert exclusive == [30, 30 + 10, 0]
    assert union == [20 + 10, 60, 5]          # the third clipped to [0, 100]


def test_trace_has_a_track_per_rank_with_its_streams(two_ranks: tuple[Path, dict]) -> None:
    run_dir, _ = two_ranks
    events = json.loads((run_dir / "trace.json").read_text())["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    sort = {e["pid"]: e["args"]["sort_index"] for e in events if e["ph"] == "M" and e["name"] == "process_sort_index"}
    track = {name: pid for pid, name in names.items()}
    rank0, rank1 = track["rank 0 · GPU 1 · pid 601"], track["rank 1 · GPU 0 · pid 600"]
    assert not any(n.startswith("GPU ") for n in names.values())   # every GPU track is a rank's
    assert names[601] == "pid 601 · rank 0" and names[600] == "pid 600 · rank 1"
    assert sort[rank0] < sort[rank1] < min(sort[599], sort[600], sort[601])   # ranks first, in order
    threads = {(e["pid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {(rank0, "stream 0"), (rank0, "stream 2"), (rank1, "stream 0"), (rank1, "stream 2")} <= threads


def test_waiting_is_drawn_apart_from_the_transfer(two_ranks: tuple[Path, dict]) -> None:
    run_dir, _ = two_ranks
    events = json.loads((run_dir / "trace.json").read_text())["traceEvents"]
    names = {e["args"]["name"]: e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    rank0, rank1 = names["rank 0 · GPU 1 · pid 601"], names["rank 1 · GPU 0 · pid 600"]
    waits = sorted((e["pid"], e["tid"], e["ts"], e["dur"], e["args"]["last_rank"], e["args"]["rendezvous"])
                   for e in events if e.get("cat") == "collective_wait")
    # rank 0 waited for rank 1 at C1 on stream 2, rank 1 for rank 0 at C2 on stream 2; no slice
    # where a rank arrived last
    assert waits == sorted([(rank0, 3, 250.0, 150.0, 1, f"{C1:#x}"), (rank1, 3, 620.0, 180.0, 0, f"{C2:#x}")])
    transfers = sorted((e["pid"], e["ts"], e["dur"]) for e in events if e.get("cat") == "collective" and e["ph"] == "X")
    assert transfers == sorted([(rank0, 400.0, 100.0), (rank0, 800.0, 50.0), (rank1, 400.0, 100.0),
                                (rank1, 800.0, 50.0)])
    c1 = next(e for e in events if e.get("cat") == "collective" and e["pid"] == rank0 and e["ts"] == 400.0)
    assert c1["args"]["rendezvous"] == f"{C1:#x}" and c1["args"]["arrival_us"] == 250.0


def flow_chains(events: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Per collective instance (the slices the flows bind to, found by their rendezvous id), the
    (track, ts) of each participant along its flows, in flow order."""
    slices = [e for e in events if e["ph"] == "X" and "rendezvous" in e.get("args", {})]

    def rendezvous_at(pid: int, tid: int, ts: float) -> str:
        [hit] = {e["args"]["rendezvous"] for e in slices
                 if e["pid"] == pid and e["tid"] == tid and e["ts"] <= ts <= e["ts"] + e["dur"]}
        return hit

    by_id: dict[int, dict[str, dict]] = defaultdict(dict)
    for e in events:
        if e.get("cat") == "rendezvous":
            by_id[e["id"]][e["ph"]] = e
    chains: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for flow in sorted(by_id.values(), key=lambda f: f["s"]["ts"]):
        s, f = flow["s"], flow["f"]
        assert f["bp"] == "e" and s["ts"] <= f["ts"], flow
        rid = rendezvous_at(s["pid"], s["tid"], s["ts"])
        assert rendezvous_at(f["pid"], f["tid"], f["ts"]) == rid, flow   # both ends on the same instance
        chain = chains[rid]
        if not chain:
            chain.append((s["pid"], s["ts"]))
        assert chain[-1] == (s["pid"], s["ts"]), (chain, flow)          # each flow continues the chain
        chain.append((f["pid"], f["ts"]))
    return chains


def test_flows_link_every_rank_of_each_collective_in_arrival_order(two_ranks: tuple[Path, dict]) -> None:
    run_dir, _ = two_ranks
    events = json.loads((run_dir / "trace.json").read_text())["traceEvents"]
    names = {e["args"]["name"]: e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    rank0, rank1 = names["rank 0 · GPU 1 · pid 601"], names["rank 1 · GPU 0 · pid 600"]
    chains = flow_chains(events)
    # C1: rank 0 arrived first (its wait slice, midpoint 325), then rank 1 (its transfer, 450);
    # C2: rank 1 first (its wait slice, 710), then rank 0 (its transfer, 825)
    assert chains == {f"{C1:#x}": [(rank0, 325.0), (rank1, 450.0)], f"{C2:#x}": [(rank1, 710.0), (rank0, 825.0)]}


def test_steps_per_rank_and_across_ranks(two_ranks: tuple[Path, dict]) -> None:
    """Rank 0's steps: {k1, C1, k2} cut at its wait at 270, {k4, C2} at 660; rank 1's: {k3, C1}
    and {C2}, whose step starts when its stream reached C2 (620): waiting is step time."""
    _, summary = two_ranks
    steps = summary["steps"]
    shape = {r["rank"]: (r["pid"], r["device"], r["count"],
                         [(s["start_us"], s["end_us"], s["span_us"], s["busy_us"]) for s in r["list"]])
             for r in steps["ranks"]}
    assert shape == {0: (601, 1, 2, [(100.0, 600.0, 500.0, 400.0), (650.0, 850.0, 200.0, 200.0)]),
                     1: (600, 0, 2, [(150.0, 500.0, 350.0, 350.0), (620.0, 850.0, 230.0, 50.0)])}
    across = steps["across_ranks"]
    run_steps = [(s["ranks"], s["rank_span_us"], s["longest_rank"], s["span_us"], s["start_us"], s["end_us"])
                 for s in across["list"]]
    assert run_steps == [([0, 1], [500.0, 350.0], 0, 500.0, 100.0, 600.0),
                         ([0, 1], [200.0, 230.0], 1, 230.0, 620.0, 850.0)]
    assert across["count"] == 2
    assert steps["pid"] in (600, 601) and steps["count"] == 2    # the engine section stays as it was


def test_time_breakdown_has_the_rank_panel(two_ranks: tuple[Path, dict]) -> None:
    import matplotlib.image

    run_dir, _ = two_ranks
    pixels = matplotlib.image.imread(run_dir / "time_breakdown.png")
    assert pixels.shape[0] > 900   # taller than a run of one rank (900 px): the per-rank row is there


def test_one_process_driving_two_devices_is_two_ranks(tmp_path: Path) -> None:
    """ncclCommInitAll: one process, one communicator, a rank per device."""
    p = TraceFile(pid=700, ppid=1, start_ns=T0, exit_ns=T0 + 100 * US)
    for device in (0, 1):
        collective(p, "nccl:allreduce", C1, 10 + 5 * device, 15, 20, (2, device), seq=1, device=device,
                   stream_id=2, issue_ns=T0 + 5 * US)
    p.write(tmp_path)
    summary = write_outputs(tmp_path)
    assert [(r["rank"], r["pid"], r["device"]) for r in summary["ranks"]] == [(0, 700, 0), (1, 700, 1)]
    assert summary["ranks"][0]["waiting_s"] == pytest.approx(5e-6)
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert {"rank 0 · GPU 0 · pid 700", "rank 1 · GPU 1 · pid 700", "pid 700 · ranks 0, 1"} <= names
    assert len(flow_chains(events)[f"{C1:#x}"]) == 2


def test_disjoint_communicators_are_numbered_by_their_lowest_device(tmp_path: Path) -> None:
    """Data parallel x tensor parallel without a world communicator: two TP groups of 2 (GPUs 2, 3
    and GPUs 0, 1), each with its own ranks 0 and 1: numbered group by group from the lowest device."""
    for pid, device, group, comm_rank in ((800, 2, 0xA, 0), (801, 3, 0xA, 1), (802, 1, 0xB, 1), (803, 0, 0xB, 0)):
        p = TraceFile(pid=pid, ppid=1, start_ns=T0, exit_ns=T0 + 100 * US)
        collective(p, "nccl:allreduce", group, 10, 10, 20, (2, comm_rank), seq=1, device=device, issue_ns=T0 + 5 * US)
        p.write(tmp_path)
    summary = write_outputs(tmp_path)
    assert [(r["rank"], r["device"], r["comm_rank"]) for r in summary["ranks"]] == \
        [(0, 0, 0), (1, 1, 1), (2, 2, 0), (3, 3, 1)]


def test_a_run_of_one_rank_has_no_rank_sections(tmp_path: Path) -> None:
    """vLLM at TP 1 has a one-rank NCCL world: its records meet nobody."""
    p = TraceFile(pid=900, ppid=1, start_ns=T0, exit_ns=T0 + 100 * US)
    collective(p, "nccl:allreduce", C1, 10, 10, 20, (1, 0), seq=1, issue_ns=T0 + 5 * US)
    p.write(tmp_path)
    summary = write_outputs(tmp_path)
    assert summary["ranks"] == [] and summary["collectives"]["instances"] == 0
    assert summary["steps"]["ranks"] == [] and summary["steps"]["across_ranks"] is None
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    assert "GPU 0 (pid 900)" in {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert not [e for e in events if e.get("cat") in ("rendezvous", "collective_wait")]


def test_time_a_collective_added_to_kernels_beside_it_is_communication(tmp_path: Path) -> None:
    """Rank 0 (pid 1001, GPU 0): kernel kA [100, 400] on stream 0, slowed 60 µs by the all-reduce
    C1 (arrival 150, transfer [200, 300]) on stream 2; kernel kB [380, 390] on stream 1; a copy
    [500, 550] whose value is its copy kind. Rank 1 (pid 1002, GPU 1): C1 arrives 200, transfer
    [200, 300]; kernel kC [300, 500]. Times in µs."""
    beside = abi.constant("TW_FLAG_BESIDE_COLLECTIVE")
    a = TraceFile(pid=1001, ppid=1, start_ns=T0, exit_ns=T0 + 1000 * US)
    gpu_op(a, "KERNEL", "kA", 100 * US, 400 * US, seq=1, issue_ns=T0 + 90 * US, flags=beside, value=60 * US)
    collective(a, "nccl:allreduce", C1, 150, 200, 300, (2, 0), seq=1, stream_id=2, issue_ns=T0 + 95 * US)
    gpu_op(a, "KERNEL", "kB", 380 * US, 390 * US, seq=3, issue_ns=T0 + 96 * US, stream_id=1)
    gpu_op(a, "MEMCPY", "", 500 * US, 550 * US, seq=4, issue_ns=T0 + 97 * US, flags=beside,
           value=abi.constant("TW_COPY_D2H_PINNED"))
    a.write(tmp_path)
    b = TraceFile(pid=1002, ppid=1, start_ns=T0, exit_ns=T0 + 1000 * US)
    collective(b, "nccl:allreduce", C1, 200, 200, 300, (2, 1), seq=1, device=1, stream_id=2, issue_ns=T0 + 95 * US)
    gpu_op(b, "KERNEL", "kC", 300 * US, 500 * US, seq=2, issue_ns=T0 + 96 * US, device=1)
    b.write(tmp_path)
    summary = write_outputs(tmp_path)
    r0, r1 = summary["ranks"]
    fields = ("compute_s", "exposed_comm_s", "waiting_s", "idle_s", "comm_s", "hidden_comm_s", "comm_slowdown_s",
              "exposed_slowdown_s", "slowed_ops")
    # rank 0: compute kA's first 240 µs [100, 340], kB 10, the copy 50 = 300; kA's slowed tail
    # [340, 400] is communication, exposed but for kB's 10 µs: 50; C1's transfer and its wait
    # lie under kA's compute: hidden
    assert [round(r0[k] * 1e6, 6) if k.endswith("_s") else r0[k] for k in fields] == \
        [300, 50, 0, 650, 100, 100, 60, 50, 1]
    assert [round(r1[k] * 1e6, 6) if k.endswith("_s") else r1[k] for k in fields] == [200, 100, 0, 700, 100, 0, 0, 0, 0]
    collectives = summary["collectives"]
    assert (round(collectives["comm_slowdown_s"] * 1e6, 6), collectives["slowed_ops"]) == (60, 1)
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    ops = [e for e in events if e["ph"] == "X" and e.get("cat") in ("kernel", "memcpy")]
    slowed = sorted((e["name"], e["args"].get("comm_slowdown_us")) for e in ops)
    assert slowed == [("kA", 60.0), ("kB", None), ("kC", None), ("memcpy DtoH pinned", None)], slowed
