"""Engine steps: the GPU work a program's busiest thread issues between two of its host waits
on the GPU, with each step's GPU time and, for LLM engines, whether it is a prefill or a decode.

Rule (docs/outputs.md, "steps"):
* window: the cudaProfilerStart/Stop ranges if any process marked one, else the whole run;
* engine: the process that issued most compute ops in the window, and in it the thread that
  issued most of them;
* a step: the engine thread's GPU ops issued after one of its host waits on the GPU (a
  synchronize, a blocking copy, an event wait; sleeps excluded) up to the next one. A serving
  loop reads each step's sampled tokens back, so every step ends with such a wait. Groups
  without a compute op (input copies alone) are not steps;
* tokens: the GEMM `n` most of the step's GEMMs share (torch's linear layers put the rows of
  the activation, the step's tokens, in cuBLAS's n); sequences: the `n` of the widest GEMM
  (largest m: the vocabulary projection, which an LLM runs once per sampled sequence);
* phase: `decode` when the step ran fewer than 2 tokens per sequence (one each, plus CUDA-graph
  padding to the next capture size, always < 2x), `prefill` otherwise (prompt tokens, alone or
  mixed with decodes), `other` when the step has no GEMM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from emulator.outputs.ops import NON_KERNEL_KINDS
from emulator.outputs.records import RunRecords

WAIT_REASON_SLEEP = 2       # tw_wait_reason in shim/src/tw_core.h: a sleep is not a wait on the GPU
PROFILER_START, PROFILER_STOP = "cudaProfilerStart", "cudaProfilerStop"
DECODE_TOKENS_PER_SEQUENCE = 2.0  # below: one token per sequence (graph padding < 2x)
MAX_STEPS_LISTED = 1000
PHASES = ("prefill", "decode", "other")


@dataclass
class Step:
    """One engine step on the virtual timeline (µs from the run's origin, as kernels.csv)."""

    index: int
    phase: str
    start_us: float       # first op start
    end_us: float         # last op end
    span_us: float        # end - start: includes GPU idle time while the host launches
    busy_us: float        # union of the ops' [start, end]: the time the GPU had work
    ops: int
    compute_ops: int
    gemms: int
    graphs: int           # distinct CUDA graphs replayed in the step
    tokens: int | None
    sequences: int | None


def profiler_windows(run: RunRecords) -> list[tuple[int, int]]:
    """[start, stop] virtual ns of each cudaProfilerStart/Stop range, over every process (one
    clock axis); a start with no stop runs to the end of the run."""
    marks: list[tuple[int, bool]] = []
    for proc in run.processes:
        mark = proc.of_kind("MARK")
        for name_id, at_ns in zip(mark["name_id"].tolist(), mark["begin_ns"].tolist(), strict=True):
            name = proc.name(name_id)
            if name in (PROFILER_START, PROFILER_STOP):
                marks.append((int(at_ns), name == PROFILER_START))
    windows: list[tuple[int, int]] = []
    open_ns: int | None = None
    for at_ns, is_start in sorted(marks):
        if is_start and open_ns is None:
            open_ns = at_ns
        elif not is_start and open_ns is not None:
            windows.append((open_ns, at_ns))
            open_ns = None
    if open_ns is not None:
        windows.append((open_ns, run.end_virtual_ns))
    return windows


def busy_ns(begin_ns: np.ndarray, end_ns: np.ndarray) -> int:
    """Length of the union of the intervals [begin, end]."""
    if len(begin_ns) == 0:
        return 0
    order = np.argsort(begin_ns, kind="stable")
    begin, reach = begin_ns[order], np.maximum.accumulate(end_ns[order])
    first = np.ones(len(begin), dtype=bool)
    first[1:] = begin[1:] > reach[:-1]  # a gap before this op: a new busy interval starts
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:] - 1, len(begin) - 1)
    return int((reach[ends] - begin[starts]).sum())


def _tokens_and_sequences(m: np.ndarray, n: np.ndarray) -> tuple[int | None, int | None]:
    """From a step's GEMM dims: the most common n (ties: the smallest), and the n of the widest."""
    if len(n) == 0:
        return None, None
    values, counts = np.unique(n, return_counts=True)
    widest = np.flatnonzero(m == m.max())[-1]
    return int(values[np.argmax(counts)]), int(n[widest])


def _phase(tokens: int | None, sequences: int | None) -> str:
    if tokens is None or not sequences:
        return "other"
    return "decode" if tokens < DECODE_TOKENS_PER_SEQUENCE * sequences else "prefill"


def _waits_ns(run: RunRecords, pid: int, tid: int) -> np.ndarray:
    for proc in run.processes:
        if proc.pid == pid:
            wait = proc.of_kind("WAIT")
            sel = (wait["tid"] == tid) & (wait["value"] != WAIT_REASON_SLEEP)
            return np.sort(wait["begin_ns"][sel].astype(np.int64))
    return np.zeros(0, dtype=np.int64)


def engine_steps(run: RunRecords, ops: pd.DataFrame) -> tuple[int | None, int | None, list[tuple[int, int]],
                                                                list[Step]]:
    """(engine pid, engine tid, windows, steps): the steps as the module docstring defines them."""
    windows = profiler_windows(run)
    issue = ops["issue_ns"].to_numpy()
    in_window = np.zeros(len(ops), dtype=bool) if windows else np.ones(len(ops), dtype=bool)
    for lo, hi in windows:
        in_window |= (issue >= lo) & (issue <= hi)
    window_ops = ops[in_window]
    compute = window_ops[~window_ops["kind"].isin(NON_KERNEL_KINDS)]
    if compute.empty:
        return None, None, windows, []
    pid = int(compute["pid"].value_counts().index[0])
    tid = int(compute[compute["pid"] == pid]["tid"].value_counts().index[0])
    mine = window_ops[(window_ops["pid"] == pid) & (window_ops["tid"] == tid)].sort_values("issue_ns", kind="stable")
    # an op issued up to a wait's start belongs to the step that wait ends
    group = np.searchsorted(_waits_ns(run, pid, tid), mine["issue_ns"].to_numpy(), side="left")
    bounds = np.flatnonzero(np.diff(group, prepend=-1, append=group[-1] + 1 if len(group) else 0))
    begin_all, end_all = mine["begin_ns"].to_numpy(np.int64), mine["end_ns"].to_numpy(np.int64)
    kind = mine["kind"].to_numpy()
    is_compute_all = ~np.isin(kind, list(NON_KERNEL_KINDS))
    is_gemm_all = kind == "gemm"
    m_all, n_all = mine["m"].to_numpy(np.int64), mine["n"].to_numpy(np.int64)
    graph_all = mine["graph_id"].to_numpy(np.int64)
    t0 = run.start_virtual_ns
    steps: list[Step] = []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        compute_ops = int(is_compute_all[lo:hi].sum())
        if compute_ops == 0:
            continue
        begin, end = begin_all[lo:hi], end_all[lo:hi]
        gemm = is_gemm_all[lo:hi]
        tokens, sequences = _tokens_and_sequences(m_all[lo:hi][gemm], n_all[lo:hi][gemm])
        graphs = graph_all[lo:hi]
        first_ns, last_ns = int(begin.min()), int(end.max())
        steps.append(Step(
            index=len(steps), phase=_phase(tokens, sequences), start_us=(first_ns - t0) / 1e3,
            end_us=(last_ns - t0) / 1e3, span_us=(last_ns - first_ns) / 1e3, busy_us=busy_ns(begin, end) / 1e3,
            ops=hi - lo, compute_ops=compute_ops, gemms=int(gemm.sum()),
            graphs=len(np.unique(graphs[graphs != 0])), tokens=tokens, sequences=sequences,
        ))
    return pid, tid, windows, steps


def _stats_us(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "mean": float(v.mean()),
            "min": float(v.min()), "max": float(v.max())}


def phase_summary(steps: list[Step]) -> dict[str, Any]:
    """Per phase: step count, busy and span statistics (µs), total busy time (s), median tokens."""
    out: dict[str, Any] = {}
    for phase in PHASES:
        mine = [s for s in steps if s.phase == phase]
        if not mine:
            continue
        tokens = [s.tokens for s in mine if s.tokens is not None]
        out[phase] = {
            "count": len(mine), "busy_us": _stats_us([s.busy_us for s in mine]),
            "span_us": _stats_us([s.span_us for s in mine]),
            "busy_total_s": sum(s.busy_us for s in mine) / 1e6,
            "tokens_median": float(np.median(tokens)) if tokens else None,
        }
    return out


def steps_summary(run: RunRecords, ops: pd.DataFrame) -> dict[str, Any]:
    """summary.json's "steps" section."""
    pid, tid, windows, steps = engine_steps(run, ops)
    t0 = run.start_virtual_ns
    return {
        "window": PROFILER_START if windows else "run",
        "windows_us": [[(lo - t0) / 1e3, (hi - t0) / 1e3] for lo, hi in windows],
        "pid": pid, "tid": tid, "count": len(steps),
        "by_phase": phase_summary(steps),
        "listed": min(len(steps), MAX_STEPS_LISTED),
        "list": [asdict(s) for s in steps[:MAX_STEPS_LISTED]],
    }
