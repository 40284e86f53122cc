"""trace.json: Chrome / Perfetto trace-event JSON of the run.

Processes are the OS processes (threads carry CPU API spans, waits and marks); each (process,
device) gets a synthetic process "GPU d (pid p)" with one thread per virtual stream carrying the
GPU ops, named "rank r · GPU d · pid p" when the device is a rank of a multi-rank run (there the
part of a collective before its last participant arrived is a "waiting for ranks" slice, and flow
arrows link the participants of each collective instance in arrival order); a "virtual clock"
process carries the jumps. Times are µs of virtual time from the run's start. Events are
formatted as strings column-wise: a run may have millions of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from emulator.outputs.ranks import Rank, find_ranks, rendezvous_ops
from emulator.outputs.records import ProcessRecords, RunRecords, rec
from emulator.outputs.summary import unique_jumps

# Synthetic pids sit above Linux's largest pid (2^22) so they never collide with a real one.
SYNTHETIC_PID_BASE = 1 << 23
CLOCK_PID = SYNTHETIC_PID_BASE


def gpu_track_pid(pid: int, device: int, table: dict[tuple[int, int], int]) -> int:
    key = (pid, device)
    if key not in table:
        table[key] = SYNTHETIC_PID_BASE + 1 + len(table)
    return table[key]


def stream_tid(stream_id: int) -> int:
    return stream_id + 1  # tid 0 is special to some viewers; stream 0 (legacy) is a real track


def _us(ns: np.ndarray | pd.Series, t0: int) -> list[str]:
    return [f"{v:.3f}" for v in ((np.asarray(ns, dtype=np.int64) - t0) / 1e3).tolist()]


def _dur(begin: np.ndarray | pd.Series, end: np.ndarray | pd.Series) -> list[str]:
    d = np.maximum(np.asarray(end, dtype=np.int64) - np.asarray(begin, dtype=np.int64), 0) / 1e3
    return [f"{v:.3f}" for v in d.tolist()]


def _meta(name: str, pid: int, tid: int | None, value: str | int, arg: str = "name") -> str:
    tid_part = f',"tid":{tid}' if tid is not None else ""
    return f'{{"ph":"M","name":"{name}","pid":{pid}{tid_part},"args":{{"{arg}":{json.dumps(value)}}}}}'


class _Writer:
    def __init__(self, f: IO[str]) -> None:
        self.f = f
        self.first = True
        self.count = 0

    def emit(self, event: str) -> None:
        self.f.write(event if self.first else ",\n" + event)
        self.first = False
        self.count += 1

    def emit_all(self, events: list[str]) -> None:
        if not events:
            return
        self.f.write(("" if self.first else ",\n") + ",\n".join(events))
        self.first = False
        self.count += len(events)


def _process_label(proc: ProcessRecords, run: RunRecords, root_pids: set[int], ranks: list[Rank]) -> str:
    command = run.run_info.get("command") or []
    mine = [str(r.rank) for r in ranks if r.pid == proc.pid]
    rank = f" · rank{'s' if len(mine) > 1 else ''} {', '.join(mine)}" if mine else ""
    if proc.pid in root_pids and command:
        return f"pid {proc.pid}{rank}: {' '.join(str(c) for c in command)[:200]}"
    return f"pid {proc.pid}{rank}"


def _name_json(proc: ProcessRecords, ids: np.ndarray, default: str) -> list[str]:
    cache: dict[int, str] = {}
    out = []
    for i in ids.tolist():
        s = cache.get(i)
        if s is None:
            s = cache[i] = json.dumps(proc.name(i, default) or default)
        out.append(s)
    return out


def _cpu_events(w: _Writer, proc: ProcessRecords, t0: int) -> None:
    """API spans, waits and marks on the process's OS threads."""
    pid = proc.pid
    recs = proc.records
    tids = set(recs["tid"][np.isin(recs["kind"], [rec("API"), rec("WAIT"), rec("MARK")])].tolist())
    for tid in sorted(tids):
        w.emit(_meta("thread_name", pid, tid, "main" if tid == pid else f"thread {tid}"))
    api = proc.of_kind("API")
    names = _name_json(proc, api["name_id"], "api")
    w.emit_all([f'{{"ph":"X","cat":"api","name":{n},"pid":{pid},"tid":{t},"ts":{ts},"dur":{d}}}'
                for n, t, ts, d in zip(names, api["tid"].tolist(), _us(api["begin_ns"], t0),
                                       _dur(api["begin_ns"], api["end_ns"]), strict=True)])
    wait = proc.of_kind("WAIT")
    names = _name_json(proc, wait["name_id"], "wait")
    w.emit_all([f'{{"ph":"X","cat":"wait","name":{n},"pid":{pid},"tid":{t},"ts":{ts},"dur":{d},'
                f'"args":{{"reason":{r}}}}}'
                for n, t, ts, d, r in zip(names, wait["tid"].tolist(), _us(wait["begin_ns"], t0),
                                          _dur(wait["begin_ns"], wait["end_ns"]), wait["value"].tolist(), strict=True)])
    mark = proc.of_kind("MARK")
    names = _name_json(proc, mark["name_id"], "mark")
    w.emit_all([f'{{"ph":"i","s":"t","cat":"mark","name":{n},"pid":{pid},"tid":{t},"ts":{ts}}}'
                for n, t, ts in zip(names, mark["tid"].tolist(), _us(np.where(
                    mark["begin_ns"] != 0, mark["begin_ns"], mark["issue_ns"]), t0), strict=True)])


def _launch_spans(proc: ProcessRecords, ops: pd.DataFrame) -> np.ndarray:
    """For each op, the index into the process's API records of the innermost API span on the
    issuing thread that contains its issue time, or -1."""
    api = proc.of_kind("API")
    found = np.full(len(ops), -1, dtype=np.int64)
    if not len(api) or not len(ops):
        return found
    op_tid = ops["tid"].to_numpy()
    op_issue = ops["issue_ns"].to_numpy()
    for tid in np.unique(op_tid).tolist():
        span_idx = np.flatnonzero(api["tid"] == tid)
        if not len(span_idx):
            continue
        order = span_idx[np.argsort(api["begin_ns"][span_idx], kind="stable")]
        begins, ends = api["begin_ns"][order], api["end_ns"][order]
        sel = np.flatnonzero(op_tid == tid)
        pos = np.searchsorted(begins, op_issue[sel], side="right") - 1
        ok = (pos >= 0) & (ends[np.maximum(pos, 0)] >= op_issue[sel])
        found[sel[ok]] = order[pos[ok]]
    return found


def _collective_args(ops: pd.DataFrame, t0: int) -> list[str]:
    """The extra args of ops that met other ranks' ops (the rendezvous id and the arrival) and of
    kernels a collective beside them slowed (the ns it added)."""
    out = [""] * len(ops)
    met = np.flatnonzero(ops["rendezvous"].to_numpy() != 0)
    ids = ops["rendezvous"].to_numpy()[met].astype(np.int64).view(np.uint64).tolist()
    for i, rid, arrival in zip(met.tolist(), ids, _us(ops["arrival_ns"].to_numpy()[met], t0), strict=True):
        out[i] = f',"rendezvous":"{rid:#x}","arrival_us":{arrival}'
    slowed_ns = ops["slowed_ns"].to_numpy(np.int64)
    slowed = np.flatnonzero(slowed_ns)
    for i, ns in zip(slowed.tolist(), slowed_ns[slowed].tolist(), strict=True):
        out[i] += f',"comm_slowdown_us":{ns / 1e3:.3f}'
    return out


def _gpu_events(w: _Writer, proc: ProcessRecords, ops: pd.DataFrame, t0: int,
                tracks: dict[tuple[int, int], int], flow_base: int, ranks: dict[tuple[int, int], Rank]) -> int:
    """GPU ops on per-stream tracks, graph launches, memory counters, launch flows.
    Returns the number of flow ids used."""
    pid = proc.pid
    streams = proc.of_kind("STREAM")
    priorities = dict(zip(streams["stream_id"].tolist(), streams["value"].tolist(), strict=True))
    graph_launches = proc.of_kind("GRAPH_LAUNCH")
    mem = proc.records[np.isin(proc.records["kind"], [rec("ALLOC"), rec("FREE")])]
    devices = sorted(set(ops["device"].tolist()) | set(graph_launches["device"].tolist())
                     | set(mem["device"].tolist()))
    for device in devices:
        gpid = gpu_track_pid(pid, device, tracks)
        rank = ranks.get((pid, device))
        w.emit(_meta("process_name", gpid, None, rank.label if rank else f"GPU {device} (pid {pid})"))
        # ranks first, in rank order; then the OS processes (0, 1, ...) and other GPU tracks
        w.emit(_meta("process_sort_index", gpid, None, rank.rank - len(ranks) if rank else gpid, arg="sort_index"))
        dev_streams = set(ops["stream"][ops["device"] == device].tolist()) | \
            set(graph_launches["stream_id"][graph_launches["device"] == device].tolist())
        for s in sorted(dev_streams):
            label = f"stream {s}" + (f" (priority {priorities[s]})" if priorities.get(s) else "")
            w.emit(_meta("thread_name", gpid, stream_tid(s), label))
            w.emit(_meta("thread_sort_index", gpid, stream_tid(s), s, arg="sort_index"))

    if len(ops):
        gpids = [tracks[(pid, d)] for d in ops["device"].tolist()]
        display = {n: json.dumps(n) for n in ops["display_name"].unique().tolist()}
        mangled = {n: json.dumps(n) for n in ops["mangled_name"].unique().tolist()}
        full = {n: json.dumps(n) for n in ops["name"].unique().tolist()}
        met = _collective_args(ops, t0)
        events = []
        for (met_args, g, s, ts, d, dn, fn, mn, kind, seq, issue, gx, gy, gz, bx, by, bz, smem, nbytes, flops, model,
             m, n, k, b, graph, copy) in zip(
                met, gpids, ops["stream"].tolist(), _us(ops["begin_ns"], t0), _dur(ops["begin_ns"], ops["end_ns"]),
                ops["display_name"].tolist(), ops["name"].tolist(), ops["mangled_name"].tolist(),
                ops["kind"].tolist(), ops["seq"].tolist(), _us(ops["issue_ns"], t0),
                ops["grid_x"].tolist(), ops["grid_y"].tolist(), ops["grid_z"].tolist(),
                ops["block_x"].tolist(), ops["block_y"].tolist(), ops["block_z"].tolist(),
                ops["smem"].tolist(), ops["bytes"].tolist(), ops["flops"].tolist(), ops["model"].tolist(),
                ops["m"].tolist(), ops["n"].tolist(), ops["k"].tolist(), ops["batch"].tolist(),
                ops["graph_id"].tolist(), ops["copy_kind"].tolist(), strict=True):
            extra = (f',"graph_id":{graph}' if graph else "") + (f',"copy_kind":{copy}' if copy else "") + met_args
            if fn != dn:
                extra += f',"full_name":{full[fn]}'
            if mn != fn:
                extra += f',"mangled":{mangled[mn]}'
            events.append(
                f'{{"ph":"X","cat":"{kind}","name":{display[dn]},"pid":{g},"tid":{s + 1},"ts":{ts},"dur":{d},'
                f'"args":{{"seq":{seq},"issue_us":{issue},"grid":"{gx}x{gy}x{gz}","block":"{bx}x{by}x{bz}",'
                f'"smem":{smem},"bytes":{nbytes},"flops":{flops},"model":"{model}","dims":[{m},{n},{k},{b}]'
                f'{extra}}}}}')
        w.emit_all(events)

    if len(graph_launches):
        w.emit_all([
            f'{{"ph":"X","cat":"graph","name":"graph {gid}","pid":{tracks[(pid, dev)]},"tid":{s + 1},'
            f'"ts":{ts},"dur":{d},"args":{{"graph_id":{gid},"seq":{seq}}}}}'
            for gid, dev, s, ts, d, seq in zip(
                graph_launches["graph_id"].tolist(), graph_launches["device"].tolist(),
                graph_launches["stream_id"].tolist(), _us(graph_launches["begin_ns"], t0),
                _dur(graph_launches["begin_ns"], graph_launches["end_ns"]), graph_launches["seq"].tolist(), strict=True)])

    if len(mem):
        times = np.where(mem["begin_ns"] != 0, mem["begin_ns"], mem["issue_ns"])
        w.emit_all([f'{{"ph":"C","name":"memory in use","pid":{tracks[(pid, dev)]},"ts":{ts},'
                    f'"args":{{"bytes":{v}}}}}'
                    for dev, ts, v in zip(mem["device"].tolist(), _us(times, t0), mem["value"].tolist(), strict=True)])

    # Flow arrows from the launching API span to the op (correlated by issue time on the thread).
    spans = _launch_spans(proc, ops)
    with_span = np.flatnonzero(spans >= 0)
    if len(with_span):
        api = proc.of_kind("API")
        sel = ops.iloc[with_span]
        issue_us = _us(np.clip(sel["issue_ns"].to_numpy(), api["begin_ns"][spans[with_span]],
                               api["end_ns"][spans[with_span]]), t0)
        events = []
        for i, (tid, ts_s, ts_f, dev, s) in enumerate(zip(
                sel["tid"].tolist(), issue_us, _us(sel["begin_ns"], t0), sel["device"].tolist(),
                sel["stream"].tolist(), strict=True)):
            fid = flow_base + i
            events.append(f'{{"ph":"s","cat":"launch","name":"launch","id":{fid},"pid":{pid},"tid":{tid},'
                          f'"ts":{ts_s}}}')
            events.append(f'{{"ph":"f","bp":"e","cat":"launch","name":"launch","id":{fid},'
                          f'"pid":{tracks[(pid, dev)]},"tid":{s + 1},"ts":{ts_f}}}')
        w.emit_all(events)
    return len(with_span)


def _anchor_ns(table: pd.DataFrame) -> np.ndarray:
    """Where a flow meets a participant: inside its wait slice, else inside its op (a flow binds
    to the slice that encloses its time)."""
    arrival, begin, end = (table[c].to_numpy(np.int64) for c in ("arrival_ns", "begin_ns", "end_ns"))
    return np.where(arrival < begin, (arrival + begin) // 2, (begin + end) // 2)


def _collective_events(w: _Writer, ops: pd.DataFrame, ranks: list[Rank], t0: int,
                       tracks: dict[tuple[int, int], int], flow_base: int) -> None:
    """For each rank's collective op: a "waiting for ranks" slice from its arrival to the start of
    the transfer (the latest arrival), and flow arrows from each participant to the next to arrive:
    every collective instance links all its participants in arrival order."""
    table = rendezvous_ops(ops, ranks)
    if table.empty:
        return
    gpids = [tracks[(p, d)] for p, d in zip(table["pid"].tolist(), table["device"].tolist(), strict=True)]
    names = {n: json.dumps(n) for n in table["display_name"].unique().tolist()}
    rids = table["rendezvous"].to_numpy(np.int64).view(np.uint64).tolist()
    waits = np.flatnonzero(table["arrival_ns"].to_numpy() < table["begin_ns"].to_numpy())
    sel = table.iloc[waits]
    w.emit_all([
        f'{{"ph":"X","cat":"collective_wait","name":"waiting for ranks","pid":{gpids[i]},"tid":{s + 1},"ts":{ts},'
        f'"dur":{d},"args":{{"collective":{names[n]},"last_rank":{last},"rendezvous":"{rids[i]:#x}"}}}}'
        for i, s, ts, d, n, last in zip(
            waits.tolist(), sel["stream"].tolist(), _us(sel["arrival_ns"], t0), _dur(sel["arrival_ns"], sel["begin_ns"]),
            sel["display_name"].tolist(), sel["last_rank"].tolist(), strict=True)])
    rendezvous = table["rendezvous"].to_numpy()
    src = np.flatnonzero(rendezvous[:-1] == rendezvous[1:])   # each participant -> the next to arrive
    anchor = _us(_anchor_ns(table), t0)
    streams, display = table["stream"].tolist(), table["display_name"].tolist()
    events = []
    for fid, i in enumerate(src.tolist(), start=flow_base):
        name = names[display[i]]
        events.append(f'{{"ph":"s","cat":"rendezvous","name":{name},"id":{fid},"pid":{gpids[i]},'
                      f'"tid":{streams[i] + 1},"ts":{anchor[i]}}}')
        events.append(f'{{"ph":"f","bp":"e","cat":"rendezvous","name":{name},"id":{fid},"pid":{gpids[i + 1]},'
                      f'"tid":{streams[i + 1] + 1},"ts":{anchor[i + 1]}}}')
    w.emit_all(events)


def write_trace(run: RunRecords, ops: pd.DataFrame, path: Path, ranks: list[Rank] | None = None) -> int:
    """Write trace.json; returns the number of events. `ranks` as find_ranks gives them (found
    here when not given)."""
    if ranks is None:
        ranks = find_ranks(run, ops)
    rank_of = {(r.pid, r.device): r for r in ranks}
    t0 = run.start_virtual_ns
    pids = {p.pid for p in run.processes}
    roots = {p.pid for p in run.processes if p.ppid not in pids}
    tracks: dict[tuple[int, int], int] = {}
    ops_by_pid = dict(tuple(ops.groupby("pid", sort=False))) if len(ops) else {}
    tmp = path.with_suffix(".json.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write('{"displayTimeUnit":"ns","otherData":')
        f.write(json.dumps({"timewarp_version": str(run.run_info.get("timewarp_version", "")),
                            "gpu": run.run_info.get("gpu", {}), "time_origin_virtual_ns": t0,
                            "predictor": str(run.run_info.get("predictor", ""))}))
        f.write(',"traceEvents":[\n')
        w = _Writer(f)
        flows = 0
        for i, proc in enumerate(run.processes):
            w.emit(_meta("process_name", proc.pid, None, _process_label(proc, run, roots, ranks)))
            w.emit(_meta("process_sort_index", proc.pid, None, i, arg="sort_index"))
            _cpu_events(w, proc, t0)
            proc_ops = ops_by_pid.get(proc.pid, ops.iloc[0:0])
            flows += _gpu_events(w, proc, proc_ops, t0, tracks, flows + 1, rank_of)
        _collective_events(w, ops, ranks, t0, tracks, flows + 1)
        jumps = unique_jumps(run)
        if len(jumps):
            w.emit(_meta("process_name", CLOCK_PID, None, "virtual clock"))
            w.emit(_meta("thread_name", CLOCK_PID, 1, "jumps"))
            w.emit_all([f'{{"ph":"i","s":"t","cat":"jump","name":"jump","pid":{CLOCK_PID},"tid":1,"ts":{ts},'
                        f'"args":{{"to_us":{to},"jump_us":{d}}}}}'
                        for ts, to, d in zip(_us(jumps[:, 0], t0), _us(jumps[:, 1], t0),
                                             _dur(jumps[:, 0], jumps[:, 1]), strict=True)])
        f.write("\n]}\n")
    tmp.replace(path)
    return w.count
