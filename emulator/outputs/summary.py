"""summary.json: the run in numbers (schema in docs/internals.md)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emulator.outputs.ops import NON_KERNEL_KINDS
from emulator.outputs.ranks import Rank, collectives_summary, find_ranks, ranks_summary
from emulator.outputs.records import RunRecords, rec
from emulator.outputs.serving import serving_summary
from emulator.outputs.steps import steps_summary
from shim import abi

MAX_KERNEL_NAMES = 200
UNDERDESCRIBED_BYTES = 1 << 20  # a kernel reaching more than this must not be predicted blind


def _record_time(r: np.ndarray) -> np.ndarray:
    return np.where(r["begin_ns"] != 0, r["begin_ns"], r["issue_ns"])


def memory_peaks(run: RunRecords) -> dict[int, int]:
    """Peak bytes in use per device, summed over processes at each moment. Each ALLOC/FREE
    record carries the process's bytes in use on that device after the call."""
    times, devices, deltas = [], [], []
    for proc in run.processes:
        r = proc.records[np.isin(proc.records["kind"], [rec("ALLOC"), rec("FREE")])]
        for device in np.unique(r["device"]).tolist():
            d = r[r["device"] == device]
            values = d["value"].astype(np.int64)
            deltas.append(np.diff(values, prepend=0))
            times.append(_record_time(d))
            devices.append(np.full(len(d), device, dtype=np.int64))
    peaks: dict[int, int] = {}
    if not times:
        return peaks
    t, dev, delta = np.concatenate(times), np.concatenate(devices), np.concatenate(deltas)
    for device in np.unique(dev).tolist():
        sel = dev == device
        order = np.argsort(t[sel], kind="stable")
        in_use = np.cumsum(delta[sel][order])
        peaks[int(device)] = int(max(in_use.max(), 0))
    return peaks


def unique_jumps(run: RunRecords) -> np.ndarray:
    """(from_ns, to_ns) of every clock jump; the same jump seen by several processes counts once."""
    jumps = [p.of_kind("JUMP")[["begin_ns", "end_ns"]] for p in run.processes]
    if not jumps:
        return np.zeros((0, 2), dtype=np.int64)
    j = np.concatenate(jumps)
    pairs = np.stack([j["begin_ns"], j["end_ns"]], axis=1).astype(np.int64) if len(j) else \
        np.zeros((0, 2), dtype=np.int64)
    return np.unique(pairs, axis=0)


def jump_refusals(run_dir: Path) -> dict[str, int]:
    """Why blocked threads' jumps did not happen, by reason (the run's actor table)."""
    from coordinator.actors import read_refusals

    page = run_dir / "actors.page"
    ffi = abi.ffi()
    if not page.exists() or page.stat().st_size < ffi.sizeof("tw_actor_table"):
        return {}
    return read_refusals(ffi.from_buffer("tw_actor_table *", bytearray(page.read_bytes())))


def clock_summary(run_dir: Path) -> dict[str, Any]:
    """How the run's clock moved: jumps, the governor's dilation of CPU work, the emulator's pauses
    (shim/src/clock_page.h, shim/tools/governor.c)."""
    page = run_dir / "clock.page"
    ffi = abi.ffi()
    if not page.exists() or page.stat().st_size < ffi.sizeof("tw_clock_page"):
        return {}
    c = ffi.from_buffer("tw_clock_page *", bytearray(page.read_bytes()))
    one = abi.constant("TW_RATE_ONE_PPM")
    return {"jumps": int(c.jump_count), "jumped_s": int(c.jumped_ns_total) / 1e9,
            "dilated_s": int(c.dilated_ns_total) / 1e9, "paused_host_s": int(c.paused_host_ns_total) / 1e9,
            "cpu_speed": int(c.cpu_speed_ppm) / one, "host_cores": int(c.host_cores),
            "governor_updates": int(c.governor_samples), "governed": int(c.governor_pid) != 0}


def _marks(run: RunRecords, prefix: str, key: str) -> list[dict[str, Any]]:
    """The shim's MARK records whose text starts with prefix: [{pid, key: the rest}]."""
    return [{"pid": p.pid, key: rest} for p in run.processes for _, rest, _ in p.marks(prefix)]


def degraded_causes(run: RunRecords) -> list[dict[str, Any]]:
    """The processes that went on with floor predictions (emulate --allow-degraded) and why."""
    return _marks(run, "degraded: ", "cause")


def collectives_not_met(run: RunRecords) -> list[dict[str, Any]]:
    """All-reduce kernels through peers' memory that reached no peer's memory, so were timed alone
    instead of meeting their peers' launches (shim/src/launch.c report_unmet)."""
    return _marks(run, "collective not met: ", "kernel")


def underdescribed_kernels(ops: pd.DataFrame, floor_ns: int) -> list[dict[str, Any]]:
    """Kernels whose prediction did not see their bytes: those whose pointer arguments reach more
    than UNDERDESCRIBED_BYTES with no parameter layout, no element count (bytes capped per
    thread), or a duration at the per-launch floor; and, whatever they reach, launches of a
    family whose decoder (kernel_shapes.c) could not read them, which kept the generic estimate.
    For kernels, m = bytes reached, n = enum tw_described (records.h), k = the family that
    rejected the launch, 0 for none (launch.c)."""
    kernels = ops[ops["kind"] == "kernel"]
    if not len(kernels):
        return []
    rejected = kernels["k"] > 0
    blind = kernels["n"].isin([abi.constant("TW_DESCRIBED_NONE"), abi.constant("TW_DESCRIBED_THREADS")])
    at_floor = (kernels["model"] == "floor") | ((kernels["end_ns"] - kernels["begin_ns"]) <= floor_ns)
    picked = kernels[rejected | ((kernels["m"] > UNDERDESCRIBED_BYTES) & (blind | at_floor))]
    out = []
    for name, group in picked.groupby("name", sort=False):
        out.append({"name": str(name), "count": int(len(group)), "reach_bytes": int(group["m"].max()),
                    "described": int(group["n"].iloc[0]), "rejected": int((group["k"] > 0).sum()),
                    "total_s": int((group["end_ns"] - group["begin_ns"]).sum()) / 1e9})
    return sorted(out, key=lambda u: (-u["rejected"], -u["reach_bytes"]))[:MAX_KERNEL_NAMES]


def _int_or_none(value: Any) -> int | None:  # noqa: ANN401 - json value
    return None if value is None else int(value)


def build_summary(run: RunRecords, ops: pd.DataFrame, ranks: list[Rank] | None = None) -> dict[str, Any]:
    """The summary; `ranks` as find_ranks gives them (found here when not given)."""
    if ranks is None:
        ranks = find_ranks(run, ops)
    info = run.run_info
    t0 = run.start_virtual_ns
    virtual_s = max(run.end_virtual_ns - t0, 0) / 1e9
    wall_s = float(info.get("wall_time_s") or 0.0)
    gpu = info.get("gpu") or {}
    spec = run.spec
    gpu_out = {
        "key": str(gpu.get("key", spec.get("key", ""))),
        "name": str(gpu.get("name", spec.get("name", ""))),
        "count": int(gpu.get("count", spec.get("device_count", 0)) or 0),
    }

    processes = []
    for p in run.processes:
        exited = p.exit_virtual_ns != 0
        processes.append({
            "pid": p.pid, "ppid": p.ppid, "command": p.command,
            "exit_status": p.exit_status if exited and not p.exit_signal else None,
            "exit_signal": p.exit_signal or None,
            "virtual_start_s": (p.start_virtual_ns - t0) / 1e9,
            "virtual_end_s": (p.end_virtual_ns - t0) / 1e9,
            "records": int(len(p.records)),
        })

    peaks = memory_peaks(run)
    total_bytes = int(spec.get("memory_bytes", "0") or 0)
    device_ids = set(range(gpu_out["count"])) | set(peaks) | set(ops["device"].unique().tolist())
    devices = [{"device": d, "memory_peak_bytes": peaks.get(d, 0), "memory_total_bytes": total_bytes}
               for d in sorted(device_ids)]

    kernels = ops[~ops["kind"].isin(NON_KERNEL_KINDS)]
    by_name = []
    if len(kernels):
        dur = kernels["end_ns"] - kernels["begin_ns"]
        grouped = dur.groupby(kernels["name"], sort=False).agg(["count", "sum"])
        grouped = grouped.sort_values("sum", ascending=False, kind="stable").head(MAX_KERNEL_NAMES)
        models = kernels.groupby(["name", "model"], sort=False).size()
        for name, row in grouped.iterrows():
            count, total_ns = int(row["count"]), int(row["sum"])
            by_name.append({
                "name": name, "count": count, "total_s": total_ns / 1e9,
                "mean_us": total_ns / count / 1e3,
                "models": {str(m): int(c) for m, c in models.loc[name].items()},
            })

    op_dur = ops["end_ns"] - ops["begin_ns"]
    ops_by_kind = {str(kind): {"count": int(g.size), "total_s": int(g.sum()) / 1e9}
                   for kind, g in op_dur.groupby(ops["kind"], sort=True)}

    unimplemented: Counter[str] = Counter()
    for p in run.processes:
        u = p.of_kind("UNIMPLEMENTED")
        ids, counts = np.unique(u["name_id"], return_counts=True)
        for name_id, count in zip(ids.tolist(), counts.tolist(), strict=True):
            unimplemented[p.name(name_id, f"<name {name_id}>")] += count

    jumps = unique_jumps(run)
    floor = ops[ops["model"] == "floor"]
    steps = steps_summary(run, ops, ranks)
    return {
        "timewarp_version": str(info.get("timewarp_version", "")),
        "gpu": gpu_out,
        "predictor": str(info.get("predictor", "")),
        "allow_degraded": bool(info.get("allow_degraded", False)),
        "command": [str(c) for c in info.get("command", [])],
        "exit_status": _int_or_none(info.get("exit_status")),
        "exit_signal": _int_or_none(info.get("exit_signal")),
        "ended_by": info.get("ended_by"),   # why the run ended early (a crash), else None
        "environment_set": info.get("environment_set") or {},   # switches emulate set (docs/design.md)
        "client": info.get("client"),       # a serving run's client (emulate --client), else None
        "virtual_time_s": virtual_s,
        "wall_time_s": wall_s,
        "speedup": virtual_s / wall_s if wall_s > 0 else 0.0,
        "processes": processes,
        "unreadable": list(run.unreadable),   # files of the run directory skipped as damaged
        "devices": devices,
        "kernels": {"count": int(len(kernels)), "gpu_time_s": int((kernels["end_ns"] - kernels["begin_ns"]).sum()) / 1e9,
                    "by_name": by_name},
        "ops_by_kind": ops_by_kind,
        "predictions_by_model": {str(m): int(c) for m, c in ops["model"].value_counts().items()},
        # Ops whose duration is the spec's per-launch floor, by name: a degraded run (predictions
        # unavailable) or a process started outside emulate. Empty in a sound run.
        "floor_predicted": [{"name": str(n), "count": int(c)}
                            for n, c in floor["name"].value_counts().head(MAX_KERNEL_NAMES).items()],
        # Kernels reaching more than 1 MB through their arguments that were predicted without
        # their bytes (or at the floor): the run's end says so too.
        "underdescribed": underdescribed_kernels(ops, int(spec.get("kernel_floor_ns", 0) or 0)),
        "degraded": degraded_causes(run),
        "collectives_not_met": collectives_not_met(run),
        "unimplemented": [{"name": n, "count": c} for n, c in unimplemented.most_common()],
        "waits": {"count": int(sum(len(p.of_kind("WAIT")) for p in run.processes)),
                  "jumped_s": int((jumps[:, 1] - jumps[:, 0]).sum()) / 1e9,
                  "jump_refusals": jump_refusals(run.run_dir)},
        "clock": clock_summary(run.run_dir),
        "steps": steps,
        # ranks whose GPUs met in collectives (none for a run of one): identity and where their
        # time went; the collective instances among them
        "ranks": ranks_summary(ranks, ops, t0),
        "collectives": collectives_summary(ranks, ops),
        "serving": serving_summary(run, ops),   # a serving benchmark's requests, else None
    }
