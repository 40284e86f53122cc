"""Property tests of the causal virtual clock (DESIGN §3, issue part 5).

Hypothesis generates multi-process programs — sleeps, GPU ops and syncs, messages over pipes and
unix sockets — that workloads/clock_program.py runs under `emulate`. A small discrete-event model
computes when each step should end; the test checks, for every step of every process:

- virtual time never goes backward in a process;
- no message is received (in the receiver's clock) before it was sent (in the sender's);
- no wait ends before its target: a sleep lasts at least its duration, a GPU sync returns no
  earlier than the predicted end of its last op (the run's records), a receive no earlier than
  the send;
- no wait ends after its target by more than the CPU time the process spent in the step plus a
  small per-wait allowance (WAKE_SLACK_NS: wake-up, scheduling on a loaded machine);
- the times agree with the reference model: never earlier, and later at most by the CPU time
  (plus WAKE_SLACK_NS per step) along the causal chain that leads to the step.

Programs cannot deadlock: steps have one global order in which every receive comes after its send
and takes the head of its channel; each process runs its own steps in that order.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from timewarp_testing import REPO, run_emulated

WORKLOAD = REPO / "tests" / "e2e" / "workloads" / "clock_program.py"

# Virtual time follows real time while anything runs, so a step may end later than its target by
# the CPU time the process spent in it and the time it sat runnable waiting for a core (its
# run-queue wait, /proc/thread-self/schedstat; other tests share the machine). On top of both,
# per step: a woken thread returns from the kernel, a jumper settles 100 µs for fd waiters.
WAKE_SLACK_NS = 1_000_000

SIZES = [1 << 28, 1 << 30, 4 << 30, 16 << 30]   # memset bytes: ~0.1, 0.4, 1.5, 6 ms on an H100
SYNCS = ["device", "stream", "event"]

# CI: a fixed, short search (a run is ~3 s of wall time). The slow variants search at random.
CI = settings(max_examples=8, deadline=None, derandomize=True, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
              phases=[Phase.explicit, Phase.generate])
THOROUGH = settings(max_examples=100, deadline=None, derandomize=False, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def programs(draw: st.DrawFn, min_procs: int = 2, max_procs: int = 4, max_steps: int = 30,
             gpu: bool = True, waits: tuple[str, ...] = ("poll", "select")) -> dict:
    """A program for clock_program.py: steps in one global order, each receive after its send."""
    n = draw(st.integers(min_procs, max_procs))
    steps: list[list] = []
    pending: dict[str, deque[int]] = defaultdict(deque)   # channel "a>b" -> messages in flight
    used: set[str] = set()
    msg = 0
    for _ in range(draw(st.integers(1, max_steps))):
        p = draw(st.integers(0, n - 1))
        inbound = [c for c, q in pending.items() if q and c.endswith(f">{p}")]
        kinds = ["sleep"] + (["gpu"] if gpu else []) + (["send"] if n > 1 else []) + (["recv"] if inbound else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "sleep":
            steps.append([p, "sleep", draw(st.integers(1, 400)) / 1000])
        elif kind == "gpu":
            sizes = draw(st.lists(st.sampled_from(SIZES), min_size=1, max_size=3))
            steps.append([p, "gpu", sizes, draw(st.sampled_from(SYNCS))])
        elif kind == "send":
            to = draw(st.sampled_from([q for q in range(n) if q != p]))
            channel = f"{p}>{to}"
            steps.append([p, "send", to, msg])
            pending[channel].append(msg)
            used.add(channel)
            msg += 1
        else:
            channel = draw(st.sampled_from(sorted(inbound)))
            steps.append([p, "recv", int(channel.split(">")[0]), pending[channel].popleft(), draw(st.sampled_from(waits))])
    for channel, queue in sorted(pending.items()):   # every message is received
        a, b = (int(x) for x in channel.split(">"))
        while queue:
            steps.append([b, "recv", a, queue.popleft(), draw(st.sampled_from(waits))])
    channels = {c: draw(st.sampled_from(["pipe", "socket"])) for c in sorted(used)}
    return {"procs": n, "channels": channels, "steps": steps}


@dataclass
class Observed:
    """One process's log (see clock_program.py) and the GPU ops the run recorded for it."""
    pid: int
    steps: list[dict]
    end_ns: int    # after the last step
    exit_ns: int   # after the end barrier
    gpu_ops: list[tuple[int, int, int, int]]   # (issue_ns, begin_ns, end_ns, duration_ns) in seq order


def run_program(program: dict) -> tuple[list[Observed], int]:
    """Run under emulate; returns each process's log and the predicted launch latency."""
    from emulator.outputs.ops import run_ops
    from emulator.outputs.records import load_run

    with tempfile.TemporaryDirectory(prefix="tw-clock-prop-") as tmp:
        tmp_dir = Path(tmp)
        (tmp_dir / "program.json").write_text(json.dumps(program))
        out = tmp_dir / "out"
        out.mkdir()
        run = run_emulated([sys.executable, str(WORKLOAD), str(tmp_dir / "program.json"), str(out)],
                           tmp_dir / "run", timeout=300)
        assert run.exit_status == 0, f"exit {run.exit_status}\n{run.stderr[-4000:]}"
        records = load_run(run.run_dir)
        ops = run_ops(records).sort_values(["pid", "seq"])
        latency_ns = int(records.spec["launch_latency_ns"])
        observed = []
        for p in range(program["procs"]):
            log = json.loads((out / f"proc{p}.json").read_text())
            mine = ops[ops["pid"] == log["pid"]]
            gpu_ops = [(int(r.issue_ns), int(r.begin_ns), int(r.end_ns), int(r.end_ns - r.begin_ns))
                       for r in mine.itertuples()]
            observed.append(Observed(log["pid"], log["steps"], log["end_ns"], log["exit_ns"], gpu_ops))
    return observed, latency_ns


def spent(log: dict) -> int:
    """CPU time of the step plus the time its thread waited for a core, ns."""
    return log["cpu1"] - log["cpu0"] + log["wait1"] - log["wait0"]


def check_program(program: dict, observed: list[Observed], latency_ns: int) -> None:
    """Assert the invariants and agreement with the reference model; messages name the step."""
    n = program["procs"]
    own = [[s for s in program["steps"] if s[0] == p] for p in range(n)]
    for p in range(n):
        assert len(observed[p].steps) == len(own[p]), f"process {p} logged {len(observed[p].steps)} steps"

    # Per process: time never goes backward; each wait ends no earlier than its target and not
    # later than its own CPU time plus WAKE_SLACK_NS.
    sent_at: dict[int, int] = {}
    for p in range(n):
        ops = iter(observed[p].gpu_ops)
        prev = None
        for i, (step, log) in enumerate(zip(own[p], observed[p].steps, strict=True)):
            where = f"process {p} step {i} {step[1:]}"
            assert log["t0"] <= log["t1"], f"{where}: time went backward inside the step"
            if prev is not None:
                assert prev["t1"] <= log["t0"], f"{where}: time went backward between steps"
            prev = log
            cpu = spent(log)
            if step[1] == "sleep":
                lasted, want = log["t1"] - log["t0"], round(step[2] * 1e9)
                assert lasted >= want, f"{where}: slept {lasted} ns of {want}"
                assert lasted <= want + cpu + WAKE_SLACK_NS, f"{where}: slept {lasted} ns of {want} (cpu {cpu})"
            elif step[1] == "gpu":
                mine = [next(ops) for _ in step[2]]
                end = max(op[2] for op in mine)
                assert mine[0][0] >= log["t0"], f"{where}: first op issued before the step began"
                assert log["t1"] >= end, f"{where}: sync returned {end - log['t1']} ns before the GPU finished"
                assert log["t1"] <= end + cpu + WAKE_SLACK_NS, f"{where}: sync returned {log['t1'] - end} ns late"
            elif step[1] == "send":
                sent_at[step[3]] = log["t0"]
        if prev is not None:
            assert prev["t1"] <= observed[p].end_ns, f"process {p}: time went backward after the last step"
        assert observed[p].end_ns <= observed[p].exit_ns, f"process {p}: time went backward in the end barrier"
        assert next(ops, None) is None, f"process {p}: more GPU ops recorded than launched"

    for p in range(n):
        for i, (step, log) in enumerate(zip(own[p], observed[p].steps, strict=True)):
            if step[1] != "recv":
                continue
            where = f"process {p} step {i} {step[1:]}"
            assert log["msg"] == step[3], f"{where}: got message {log['msg']}"
            assert log["sent_ns"] == sent_at[step[3]]
            assert log["t1"] >= log["sent_ns"], \
                f"{where}: received {(log['sent_ns'] - log['t1']) / 1e6:.3f} ms before it was sent"
            target = max(log["t0"], log["sent_ns"])
            cpu = spent(log)
            assert log["t1"] <= target + cpu + WAKE_SLACK_NS, \
                f"{where}: received {(log['t1'] - target) / 1e6:.3f} ms after it was there (cpu {cpu} ns)"

    # The reference model, in the global step order: (model time, tolerance) per process, from
    # each process's first observed timestamp. Tolerance = CPU time + WAKE_SLACK_NS per step along
    # the longest causal chain.
    model_t = [observed[p].steps[0]["t0"] if observed[p].steps else 0 for p in range(n)]
    model_tol = [0] * n
    next_step = [0] * n
    next_op = [0] * n
    sends: dict[int, tuple[int, int]] = {}
    for step in program["steps"]:
        p = step[0]
        i = next_step[p]
        next_step[p] += 1
        log = observed[p].steps[i]
        where = f"process {p} step {i} {step[1:]}"
        if i > 0:   # CPU between the steps (logging, the loop)
            before = observed[p].steps[i - 1]
            model_tol[p] += log["cpu0"] - before["cpu1"] + log["wait0"] - before["wait1"] + WAKE_SLACK_NS
        assert model_t[p] <= log["t0"] <= model_t[p] + model_tol[p], \
            f"{where}: began at {log['t0']}, model {model_t[p]} + {model_tol[p]}"
        if step[1] == "sleep":
            model_t[p] += round(step[2] * 1e9)
        elif step[1] == "gpu":
            durations = [observed[p].gpu_ops[next_op[p] + k][3] for k in range(len(step[2]))]
            next_op[p] += len(step[2])
            model_t[p] += latency_ns + sum(durations)
        elif step[1] == "send":
            sends[step[3]] = (model_t[p], model_tol[p])
        else:
            send_t, send_tol = sends[step[3]]
            reach = max(model_t[p] + model_tol[p], send_t + send_tol)
            model_t[p] = max(model_t[p], send_t)
            model_tol[p] = reach - model_t[p]
        model_tol[p] += spent(log) + WAKE_SLACK_NS
        assert model_t[p] <= log["t1"], f"{where}: ended {(model_t[p] - log['t1']) / 1e6:.3f} ms before the model"
        assert log["t1"] <= model_t[p] + model_tol[p], \
            f"{where}: ended {(log['t1'] - model_t[p]) / 1e6:.3f} ms after the model (tolerance {model_tol[p] / 1e6:.3f} ms)"


def check(program: dict) -> None:
    observed, latency_ns = run_program(program)
    check_program(program, observed, latency_ns)


@CI
@given(programs(min_procs=1, max_procs=1, max_steps=25))
def test_one_process_sleeps_and_gpu_syncs(shim_lib: Path, program: dict) -> None:
    check(program)


@CI
@given(programs(gpu=False, waits=("poll", "select", "read")))
def test_processes_exchange_messages_causally(shim_lib: Path, program: dict) -> None:
    check(program)


@CI
@given(programs(max_procs=3, max_steps=20))
def test_processes_with_gpu_work_keep_one_clock(shim_lib: Path, program: dict) -> None:
    check(program)


# Found by these tests: the receiver's GPU syncs made prediction round trips, which its clock
# alone hid, so it read the message as received about one round trip before it was sent. The
# pause is now run-wide (shim/src/clock.c); this is the minimal example, kept as a regression.
HIDDEN_SKEW = {"procs": 2, "channels": {"1>0": "pipe"},
               "steps": [[0, "gpu", [SIZES[0]], "device"], [0, "gpu", [SIZES[1]], "stream"],
                         [0, "gpu", [SIZES[2]], "event"], [1, "sleep", 0.1], [1, "send", 0, 0],
                         [0, "recv", 1, 0, "poll"]]}


def test_gpu_work_keeps_clocks_of_processes_together(shim_lib: Path) -> None:
    check(HIDDEN_SKEW)


@pytest.mark.slow
@THOROUGH
@given(programs(min_procs=1, max_procs=4, max_steps=40, gpu=False, waits=("poll", "select", "read")))
def test_thorough_messages(shim_lib: Path, program: dict) -> None:
    check(program)


@pytest.mark.slow
@THOROUGH
@given(programs(min_procs=1, max_procs=4, max_steps=40))
def test_thorough_gpu_programs(shim_lib: Path, program: dict) -> None:
    check(program)
