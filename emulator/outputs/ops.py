"""The GPU operations of a run as one table (pandas), shared by summary, kernels.csv, the trace
and the plots. Built column-wise from the records: no per-record Python loop."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emulator.outputs.demangle import demangle, short_name
from emulator.outputs.records import (
    ProcessRecords,
    RunRecords,
    copy_kind_names,
    model_names,
    op_kind_names,
    rec,
)
from shim import abi

# Kinds that are not work on the GPU: excluded from the "kernels" section of the summary.
NON_KERNEL_KINDS = frozenset({"memcpy", "memset", "event_record", "event_wait", "host_func", "none"})

OP_COLUMNS = [
    "pid", "seq", "name", "mangled_name", "kind", "device", "stream", "graph_id", "tid", "name_id",
    "issue_ns", "begin_ns", "end_ns", "grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z",
    "smem", "bytes", "flops", "model", "copy_kind", "m", "n", "k", "batch", "display_name",
    "rendezvous", "arrival_ns", "slowed_ns",
]


def _fallback_name(kind: str, copy_kind: int) -> str:
    if kind == "memcpy":
        return f"memcpy {copy_kind_names().get(copy_kind, 'unknown')}"
    return kind.replace("_", " ")


def process_ops(proc: ProcessRecords) -> pd.DataFrame:
    """One process's TW_REC_GPU_OP records as a table (names resolved and demangled)."""
    r = proc.records[proc.records["kind"] == rec("GPU_OP")]
    kinds = op_kind_names()
    models = model_names()
    kind_col = pd.Categorical.from_codes(
        np.where(np.isin(r["op_kind"], list(kinds)), r["op_kind"], 0).astype(np.int64),
        categories=[kinds.get(i, f"kind{i}") for i in range(max(kinds) + 1)],
    ).astype(str)
    copy_kind = np.where(r["value"] != 0, r["value"], r["dims"][:, 0]).astype(np.int64)
    copy_kind = np.where(r["op_kind"] == abi.constant("TW_OP_MEMCPY"), copy_kind, 0)
    # Resolve names once per distinct (name_id, kind, copy kind), then broadcast.
    keys = (r["name_id"].astype(np.int64) << 24) | (r["op_kind"].astype(np.int64) << 8) | (copy_kind & 0xFF)
    uniq, inverse = np.unique(keys, return_inverse=True)
    inverse = inverse.reshape(-1)
    mangled, full, display = [], [], []
    for key in uniq.tolist():
        name_id, op_kind, ck = key >> 24, (key >> 8) & 0xFFFF, key & 0xFF
        raw = proc.names.get(name_id, "") if name_id else ""
        if not raw:
            raw = _fallback_name(kinds.get(op_kind, f"kind{op_kind}"), ck)
        mangled.append(raw)
        d = demangle(raw)
        full.append(d)
        display.append(short_name(d))
    m_arr = np.array(mangled, dtype=object)
    f_arr = np.array(full, dtype=object)
    d_arr = np.array(display, dtype=object)
    # An op that met other processes' ops (records.h TW_FLAG_RENDEZVOUS): its rendezvous id (the
    # same on every participant; 0 = none) and when its stream reached it (else its start).
    met = (r["flags"] & abi.constant("TW_FLAG_RENDEZVOUS")) != 0
    rendezvous = np.where(met, r["addr"], np.uint64(0)).astype(np.uint64).view(np.int64)
    arrival = np.where(met, r["value"], r["begin_ns"]).astype(np.int64)
    # A kernel that ran beside a collective on its GPU (TW_FLAG_BESIDE_COLLECTIVE): the ns the
    # collective's share of SMs and bandwidth added to it (a copy's value stays its copy kind).
    beside = ((r["flags"] & abi.constant("TW_FLAG_BESIDE_COLLECTIVE")) != 0) & \
        (r["op_kind"] != abi.constant("TW_OP_MEMCPY"))
    slowed = np.where(beside, r["value"], 0).astype(np.int64)
    model_ids, model_inverse = np.unique(r["model"], return_inverse=True)
    model_col = np.array([models.get(int(v), f"model{int(v)}") for v in model_ids.tolist()],
                         dtype=object)[model_inverse.reshape(-1)]
    return pd.DataFrame({
        "pid": np.full(len(r), proc.pid, dtype=np.int64), "seq": r["seq"].astype(np.int64),
        "name": f_arr[inverse], "mangled_name": m_arr[inverse], "kind": kind_col,
        "device": r["device"].astype(np.int64), "stream": r["stream_id"].astype(np.int64),
        "graph_id": r["graph_id"].astype(np.int64), "tid": r["tid"].astype(np.int64),
        "name_id": r["name_id"].astype(np.int64),
        "issue_ns": r["issue_ns"], "begin_ns": r["begin_ns"], "end_ns": r["end_ns"],
        "grid_x": r["grid"][:, 0], "grid_y": r["grid"][:, 1], "grid_z": r["grid"][:, 2],
        "block_x": r["block"][:, 0], "block_y": r["block"][:, 1], "block_z": r["block"][:, 2],
        "smem": r["smem_bytes"], "bytes": r["bytes"], "flops": r["flops"], "model": model_col,
        "copy_kind": copy_kind,
        "m": r["dims"][:, 0], "n": r["dims"][:, 1], "k": r["dims"][:, 2], "batch": r["dims"][:, 3],
        "display_name": d_arr[inverse], "rendezvous": rendezvous, "arrival_ns": arrival,
        "slowed_ns": slowed,
    }, columns=OP_COLUMNS)


def run_ops(run: RunRecords) -> pd.DataFrame:
    """All GPU ops of the run, ordered by start time, with µs times relative to run start."""
    frames = [process_ops(p) for p in run.processes]
    ops = pd.concat(frames, ignore_index=True) if frames else process_ops_empty()
    t0 = run.start_virtual_ns
    ops["issue_us"] = (ops["issue_ns"] - t0) / 1e3
    ops["start_us"] = (ops["begin_ns"] - t0) / 1e3
    ops["end_us"] = (ops["end_ns"] - t0) / 1e3
    ops["duration_us"] = (ops["end_ns"] - ops["begin_ns"]) / 1e3
    return ops.sort_values(["begin_ns", "pid", "seq"], kind="stable").reset_index(drop=True)


def process_ops_empty() -> pd.DataFrame:
    from emulator.outputs.records import struct_dtype

    empty = ProcessRecords(0, 0, 0, 0, 0, 0, 0, np.zeros(0, dtype=struct_dtype("tw_record")))
    return process_ops(empty)
