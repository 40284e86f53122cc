"""Engine steps: the GPU work a program issues between two host waits on the GPU of its loop
thread, with each step's GPU time and, for LLM engines, whether it is a prefill or a decode; with
several ranks, each rank's steps and the run's steps over its ranks.

Rule (docs/outputs.md, "steps"):
* window: the cudaProfilerStart/Stop ranges if any process marked one, else the whole run;
* engine: the process that issued most compute ops in the window (for a rank: its process, and
  only the ops on its device);
* loop thread: of that process's threads that wait on the GPU, the one that issued most compute
  ops (the busiest thread when none waits): torch's backward runs on an autograd thread that
  never waits, the training loop's thread does;
* a step: the process's GPU ops (every thread's) issued after one of the loop thread's host
  waits on the GPU (a synchronize, a blocking copy, an event wait; sleeps excluded) up to the
  next one. A serving loop reads each step's sampled tokens back, so every step ends with such a
  wait. Groups without a compute op (input copies alone) are not steps;
* tokens: the GEMM `n` most of the step's GEMMs share (torch's linear layers put the rows of
  the activation, the step's tokens, in cuBLAS's n); sequences: the `n` of the widest GEMM
  (largest m: the vocabulary projection, which an LLM runs once per sampled sequence);
* phase: `decode` when the step ran fewer than 2 tokens per sequence (one each, plus CUDA-graph
  padding to the next capture size, always < 2x), `prefill` otherwise (prompt tokens, alone or
  mixed with decodes), `other` when the step has no GEMM;
* across ranks: rank steps that hold the same collective instance are one step of the run, whose
  time is its longest rank step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emulator.outputs.ops import NON_KERNEL_KINDS
from emulator.outputs.ranks import Rank
from emulator.outputs.records import RunRecords

WAIT_REASON_SLEEP = 2       # tw_wait_reason in shim/src/tw_core.h: a sleep is not a wait on the GPU
PROFILER_START, PROFILER_STOP = "cudaProfilerStart", "cudaProfilerStop"
DECODE_TOKENS_PER_SEQUENCE = 2.0  # below: one token per sequence (graph padding < 2x)
MAX_STEPS_LISTED = 1000
MAX_RANK_STEPS_LISTED = 250
PHASES = ("prefill", "decode", "other")
STEP_COLUMNS = ["pid", "device", "tid", "kind", "issue_ns", "seq", "arrival_ns", "begin_ns", "end_ns", "m", "n",
                "graph_id", "rendezvous"]


@dataclass
class Step:
    """One engine step on the virtual timeline (µs from the run's origin, as kernels.csv)."""

    index: int
    phase: str
    start_us: float       # first op start (a collective: when its stream reached it)
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


def _phase(tokens: int | None, sequences: int | None) -> str:
    if tokens is None or not sequences:
        return "other"
    return "decode" if tokens < DECODE_TOKENS_PER_SEQUENCE * sequences else "prefill"


def window_mask(ops: pd.DataFrame, windows: list[tuple[int, int]]) -> np.ndarray:
    """The ops issued inside the profiler windows (all of them without windows)."""
    issue = ops["issue_ns"].to_numpy()
    if not windows:
        return np.ones(len(ops), dtype=bool)
    inside = np.zeros(len(ops), dtype=bool)
    for lo, hi in windows:
        inside |= (issue >= lo) & (issue <= hi)
    return inside


TIME_THEN_SEQ = np.dtype([("ns", "<i8"), ("seq", "<i8")])


def _time_then_seq(ns: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Keys ordered by time, then by issue sequence: an op issued at the very time a wait began
    (the clock stood still) is before it when its seq is at most the wait's (records.h: a WAIT's
    seq is the latest op issued when it began). Not the record files' order: an op's record is
    written when its times are computed, a collective's only once its peers arrived."""
    keys = np.empty(len(ns), dtype=TIME_THEN_SEQ)
    keys["ns"], keys["seq"] = ns, seq
    return keys


def _gpu_waits(run: RunRecords) -> dict[tuple[int, int], np.ndarray]:
    """(pid, tid) -> the thread's host waits on the GPU (sleeps excluded), as sorted
    _time_then_seq keys of their start."""
    out: dict[tuple[int, int], np.ndarray] = {}
    for proc in run.processes:
        wait = proc.of_kind("WAIT")
        wait = wait[wait["value"] != WAIT_REASON_SLEEP]
        tids = wait["tid"].astype(np.int64)
        for tid in np.unique(tids).tolist():
            mine = wait[tids == tid]
            out[(proc.pid, tid)] = np.sort(_time_then_seq(mine["begin_ns"], mine["seq"].astype(np.int64)))
    return out


def _wait_index(waits: np.ndarray, issue_ns: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """How many of the (sorted) waits each op comes after: by time, and for an op issued at a
    wait's very start, by issue sequence (one search by time; the ties searched again)."""
    wait_ns = np.ascontiguousarray(waits["ns"])
    index = np.searchsorted(wait_ns, issue_ns, side="left")
    tie = np.flatnonzero(wait_ns[np.minimum(index, len(wait_ns) - 1)] == issue_ns) if len(wait_ns) else index[:0]
    index[tie] = np.searchsorted(waits, _time_then_seq(issue_ns[tie], seq[tie]), side="left")
    return index


def _first_per_group(group: np.ndarray, *keys: np.ndarray) -> np.ndarray:
    """Index of the first row of each group when rows are sorted by (group, *keys)."""
    order = np.lexsort((*keys[::-1], group))
    return order[_segments(group[order])]


def _busy_by_group(group: np.ndarray, begin: np.ndarray, end: np.ndarray, groups: int) -> np.ndarray:
    """Length of the union of each group's [begin, end] intervals: one sort for all groups."""
    order = np.lexsort((begin, group))
    g, b, e = group[order], begin[order], end[order]
    new_group = np.ones(len(g), dtype=bool)
    new_group[1:] = g[1:] != g[:-1]
    reach = pd.Series(e).groupby(g).cummax().to_numpy()   # furthest end so far within the group
    starts = new_group.copy()
    starts[1:] |= b[1:] > reach[:-1]                        # a gap: a new busy interval starts
    start_idx = np.flatnonzero(starts)
    end_idx = np.append(start_idx[1:] - 1, len(g) - 1)
    return np.bincount(g[start_idx], weights=(reach[end_idx] - b[start_idx]).astype(np.float64), minlength=groups)


@dataclass
class StepCut:
    """A thread's steps, and the rendezvous (collective instances) each step holds."""

    pid: int | None
    tid: int | None
    steps: list[Step]
    rendezvous: pd.DataFrame    # columns: step (index into steps), rendezvous


def _no_steps(pid: int | None) -> StepCut:
    return StepCut(pid, None, [], pd.DataFrame({"step": np.zeros(0, np.int64), "rendezvous": np.zeros(0, np.int64)}))


def cut_steps(ops: pd.DataFrame, pid: int, waits: dict[tuple[int, int], np.ndarray], t0_ns: int) -> StepCut:
    """The steps of one process's ops (already restricted to the window, and to a device for a
    rank): every thread's ops, cut at the host waits of the thread that issued most compute ops
    among the threads that wait on the GPU (the busiest thread when none does). Vectorised:
    one pass per statistic over all steps."""
    compute = ops[~ops["kind"].isin(NON_KERNEL_KINDS)]
    if compute.empty:
        return _no_steps(pid)
    busiest = compute["tid"].value_counts().index.tolist()
    waiting = [t for t in busiest if len(waits.get((pid, int(t)), ()))]
    tid = int(waiting[0] if waiting else busiest[0])
    mine = ops.sort_values("issue_ns", kind="stable")
    # an op issued up to a wait's start belongs to the step that wait ends
    group = _wait_index(waits.get((pid, tid), _time_then_seq(np.zeros(0), np.zeros(0))),
                        mine["issue_ns"].to_numpy(np.int64), mine["seq"].to_numpy(np.int64))
    kind = mine["kind"].to_numpy()
    is_compute = ~np.isin(kind, list(NON_KERNEL_KINDS))
    keep_group = np.zeros(int(group.max()) + 1, dtype=bool)
    keep_group[group[is_compute]] = True                  # groups without compute ops are not steps
    step_of_group = np.cumsum(keep_group) - 1
    keep = keep_group[group]
    step = step_of_group[group[keep]].astype(np.int64)
    n = int(keep_group.sum())
    kind, is_compute = kind[keep], is_compute[keep]
    begin, end = mine["begin_ns"].to_numpy(np.int64)[keep], mine["end_ns"].to_numpy(np.int64)[keep]
    m, nn = mine["m"].to_numpy(np.int64)[keep], mine["n"].to_numpy(np.int64)[keep]
    graph = mine["graph_id"].to_numpy(np.int64)[keep]
    position = np.arange(len(step))

    count = np.bincount(step, minlength=n)
    compute_ops = np.bincount(step, weights=is_compute, minlength=n).astype(np.int64)
    is_gemm = kind == "gemm"
    gemms = np.bincount(step, weights=is_gemm, minlength=n).astype(np.int64)
    # a collective's part of the step starts when the stream reached it: waiting for other ranks
    # is step time (the GPU's stream is held), though not busy time
    arrival = mine["arrival_ns"].to_numpy(np.int64)[keep]
    first_ns = pd.Series(np.minimum(arrival, begin)).groupby(step).min().reindex(range(n)).to_numpy(np.int64)
    last_ns = pd.Series(end).groupby(step).max().reindex(range(n)).to_numpy(np.int64)
    busy = _busy_by_group(step, begin, end, n)
    graph_pairs = np.unique(np.stack([step[graph != 0], graph[graph != 0]]), axis=1)
    graphs = np.bincount(graph_pairs[0], minlength=n) if graph_pairs.size else np.zeros(n, np.int64)
    # tokens: the n most of a step's GEMMs share (ties: the smallest); sequences: the n of the
    # widest GEMM (largest m; ties: the last issued)
    tokens = np.full(n, -1, dtype=np.int64)
    sequences = np.full(n, -1, dtype=np.int64)
    if is_gemm.any():
        g_step, g_n, g_m, g_pos = step[is_gemm], nn[is_gemm], m[is_gemm], position[is_gemm]
        pairs, votes = np.unique(np.stack([g_step, g_n]), axis=1, return_counts=True)
        top = _first_per_group(pairs[0], -votes, pairs[1])
        tokens[pairs[0][top]] = pairs[1][top]
        widest = _first_per_group(g_step, -g_m, -g_pos)
        sequences[g_step[widest]] = g_n[widest]

    steps = []
    for i in range(n):
        tok = int(tokens[i]) if tokens[i] >= 0 else None
        seqs = int(sequences[i]) if sequences[i] >= 0 else None
        steps.append(Step(
            index=i, phase=_phase(tok, seqs), start_us=(int(first_ns[i]) - t0_ns) / 1e3,
            end_us=(int(last_ns[i]) - t0_ns) / 1e3, span_us=(int(last_ns[i]) - int(first_ns[i])) / 1e3,
            busy_us=float(busy[i]) / 1e3, ops=int(count[i]), compute_ops=int(compute_ops[i]), gemms=int(gemms[i]),
            graphs=int(graphs[i]), tokens=tok, sequences=seqs,
        ))
    rendezvous = mine["rendezvous"].to_numpy(np.int64)[keep]
    met = rendezvous != 0
    return StepCut(pid, tid, steps, pd.DataFrame({"step": step[met], "rendezvous": rendezvous[met]}))


def _engine_cut(run: RunRecords, window_ops: pd.DataFrame, waits: dict[tuple[int, int], np.ndarray]) -> StepCut:
    compute = window_ops[~window_ops["kind"].isin(NON_KERNEL_KINDS)]
    if compute.empty:
        return _no_steps(None)
    pid = int(compute["pid"].value_counts().index[0])
    return cut_steps(window_ops[window_ops["pid"] == pid], pid, waits, run.start_virtual_ns)


def engine_steps(run: RunRecords, ops: pd.DataFrame) -> tuple[int | None, int | None, list[tuple[int, int]],
                                                                list[Step]]:
    """(engine pid, engine tid, windows, steps): the steps as the module docstring defines them."""
    windows = profiler_windows(run)
    cut = _engine_cut(run, ops[STEP_COLUMNS][window_mask(ops, windows)], _gpu_waits(run))
    return cut.pid, cut.tid, windows, cut.steps


def link_steps(cuts: list[StepCut]) -> tuple[np.ndarray, np.ndarray]:
    """(label, offsets): steps of different ranks that hold the same collective instance are one
    step of the run; label[offsets[r] + i] names the run step that rank r's step i belongs to
    (connected components by label propagation: a few vectorised passes)."""
    offsets = np.cumsum([0] + [len(c.steps) for c in cuts])
    label = np.arange(int(offsets[-1]), dtype=np.int64)
    node = np.concatenate([c.rendezvous["step"].to_numpy(np.int64) + off
                           for c, off in zip(cuts, offsets[:-1].tolist(), strict=True)] or [np.zeros(0, np.int64)])
    if not len(node):
        return label, offsets
    rendezvous = np.concatenate([c.rendezvous["rendezvous"].to_numpy(np.int64) for c in cuts])
    _, instance = np.unique(rendezvous, return_inverse=True)
    while True:
        lowest = np.full(int(instance.max()) + 1, len(label), dtype=np.int64)
        np.minimum.at(lowest, instance, label[node])      # per instance: the lowest label among its steps
        linked = label.copy()
        np.minimum.at(linked, node, lowest[instance])      # per step: the lowest among its instances
        linked = linked[linked]                            # follow labels to their root
        if np.array_equal(linked, label):
            return label, offsets
        label = linked


def _segments(keys: np.ndarray) -> np.ndarray:
    """Start indices of the runs of equal keys in a sorted array."""
    return np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, np.int64)


def across_ranks(ranks: list[Rank], cuts: list[StepCut]) -> dict[str, Any]:
    """The run's steps over its ranks: each is one or more rank steps linked by a shared
    collective instance; its time is the longest rank's (that rank's span over its steps).
    Vectorised: sorts and segment reductions, a Python loop only to write the list."""
    label, _ = link_steps(cuts)
    all_steps = [s for c in cuts for s in c.steps]
    if not all_steps:
        return {"count": 0, "by_phase": {}, "listed": 0, "list": []}
    rank = np.concatenate([np.full(len(c.steps), r.rank, dtype=np.int64) for r, c in zip(ranks, cuts, strict=True)])
    start = np.fromiter((s.start_us for s in all_steps), np.float64, len(all_steps))
    end = np.fromiter((s.end_us for s in all_steps), np.float64, len(all_steps))
    busy = np.fromiter((s.busy_us for s in all_steps), np.float64, len(all_steps))
    # per (run step, rank): from its first step's start to its last step's end, busy summed
    order = np.lexsort((start, rank, label))
    pair = _segments(label[order] * (len(ranks) + 1) + rank[order])
    first = order[pair]
    p_label, p_rank = label[first], rank[first]
    p_start = np.minimum.reduceat(start[order], pair)
    p_end = np.maximum.reduceat(end[order], pair)
    p_busy = np.round(np.add.reduceat(busy[order], pair), 3)   # µs to the ns, as the ranks' steps
    p_span = np.round(p_end - p_start, 3)
    # per run step: its rank pairs are contiguous (sorted by label, then rank)
    bounds = np.append(_segments(p_label), len(p_label))
    longest = _first_per_group(p_label, -p_span)
    run_start = np.minimum.reduceat(p_start, bounds[:-1])
    run_end = np.maximum.reduceat(p_end, bounds[:-1])
    steps: list[Step] = []
    extra: list[dict[str, Any]] = []
    for i in np.argsort(run_start, kind="stable").tolist():
        lo, hi, top = int(bounds[i]), int(bounds[i + 1]), int(longest[i])
        model = all_steps[int(first[top])]      # the longest rank's (first) step in it
        steps.append(Step(
            index=len(steps), phase=model.phase, start_us=float(run_start[i]), end_us=float(run_end[i]),
            span_us=float(p_span[top]), busy_us=float(p_busy[top]), ops=model.ops, compute_ops=model.compute_ops,
            gemms=model.gemms, graphs=model.graphs, tokens=model.tokens, sequences=model.sequences))
        if len(extra) < MAX_STEPS_LISTED:
            extra.append({"longest_rank": int(p_rank[top]), "ranks": p_rank[lo:hi].tolist(),
                          "rank_span_us": p_span[lo:hi].tolist(), "rank_busy_us": p_busy[lo:hi].tolist()})
    return {
        "count": len(steps), "by_phase": phase_summary(steps), "listed": min(len(steps), MAX_STEPS_LISTED),
        "list": [_as_dict(s) | x for s, x in zip(steps[:MAX_STEPS_LISTED], extra, strict=True)],
    }


def _as_dict(step: Step) -> dict[str, Any]:
    return dict(vars(step))   # dataclasses.asdict deep-copies every field: 10x slower


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


def steps_summary(run: RunRecords, ops: pd.DataFrame, ranks: list[Rank] | None = None) -> dict[str, Any]:
    """summary.json's "steps" section: the engine's steps and, with several ranks, each rank's
    and the run's over its ranks."""
    windows = profiler_windows(run)
    window_ops = ops[STEP_COLUMNS][window_mask(ops, windows)]   # narrow: filters copy every column
    waits = _gpu_waits(run)
    cut = _engine_cut(run, window_ops, waits)
    t0 = run.start_virtual_ns
    out: dict[str, Any] = {
        "window": PROFILER_START if windows else "run",
        "windows_us": [[(lo - t0) / 1e3, (hi - t0) / 1e3] for lo, hi in windows],
        "pid": cut.pid, "tid": cut.tid, "count": len(cut.steps),
        "by_phase": phase_summary(cut.steps),
        "listed": min(len(cut.steps), MAX_STEPS_LISTED),
        "list": [_as_dict(s) for s in cut.steps[:MAX_STEPS_LISTED]],
        "ranks": [], "across_ranks": None,
    }
    if not ranks:
        return out
    by_rank = dict(tuple(window_ops.groupby(["pid", "device"], sort=False)))
    cuts = [cut_steps(by_rank.get((r.pid, r.device), window_ops.iloc[0:0]), r.pid, waits, t0) for r in ranks]
    out["ranks"] = [{"rank": r.rank, "pid": r.pid, "device": r.device, "tid": c.tid, "count": len(c.steps),
                     "by_phase": phase_summary(c.steps), "listed": min(len(c.steps), MAX_RANK_STEPS_LISTED),
                     "list": [_as_dict(s) for s in c.steps[:MAX_RANK_STEPS_LISTED]]}
                    for r, c in zip(ranks, cuts, strict=True)]
    out["across_ranks"] = across_ranks(ranks, cuts)
    return out
