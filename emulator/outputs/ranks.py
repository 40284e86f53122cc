"""The ranks of a run whose GPUs met in collectives (NCCL across processes, ncclCommInitAll in one
process, kernels synchronised through peers' memory): which (process, device) is which rank,
where each rank's GPU time went, and each collective instance with its participants in arrival
order (docs/outputs.md, "Ranks").

A collective's record (records.h TW_FLAG_RENDEZVOUS, written by shim/src/timeline.c) carries
`addr` = the rendezvous id (the same on every participant), `value` = when this participant's
stream reached the op, `begin_ns` = the latest arrival (the transfer starts when every participant
is there), and for NCCL ops dims = (communicator size, count, rank in the communicator, sequence
number). [arrival, begin] is time spent waiting for late ranks, [begin, end] the transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emulator.outputs.records import RunRecords

# NCCL ops whose dims[2] is the participant's rank in its communicator (shim/src/api_nccl.c
# coll_names); a p2p record's dims[2] is 0 for the sender, 1 for the receiver, and a group's is
# its first member's.
RANKED_COLLECTIVES = frozenset({
    "nccl:allreduce", "nccl:allgather", "nccl:reducescatter", "nccl:broadcast", "nccl:reduce",
    "nccl:alltoall", "nccl:gather", "nccl:scatter",
})
BREAKDOWN = ("compute", "exposed_comm", "waiting", "idle")


@dataclass(frozen=True)
class Rank:
    """One participant of the run's collectives: a device driven by a process."""

    rank: int
    pid: int
    device: int
    comm_rank: int | None     # its rank in its largest NCCL communicator (None: no NCCL op)
    comm_size: int | None
    start_ns: int             # its process's span on the virtual timeline
    end_ns: int

    @property
    def label(self) -> str:
        return f"rank {self.rank} · GPU {self.device} · pid {self.pid}"


def _identity(comm: pd.DataFrame) -> pd.DataFrame:
    """Per (pid, device) with NCCL ops: comm_size, comm_rank and the order key of its largest
    communicator (the first one it used among those of that size): the lowest device ordinal,
    then the lowest pid, of that communicator's participants."""
    ranked = comm[(comm["kind"] == "collective") & comm["name"].isin(RANKED_COLLECTIVES)]
    if ranked.empty:
        return pd.DataFrame(columns=["pid", "device", "comm_size", "comm_rank", "order_device", "order_pid"])
    ranked = ranked.sort_values(["arrival_ns", "pid", "device"], kind="stable")
    largest = ranked["m"] == ranked.groupby(["pid", "device"])["m"].transform("max")
    first = ranked[largest].groupby(["pid", "device"], sort=False).head(1)
    members = comm[comm["rendezvous"].isin(first["rendezvous"])]
    order = members.groupby("rendezvous").agg(order_device=("device", "min"), order_pid=("pid", "min"))
    out = first[["pid", "device", "m", "k", "rendezvous"]].rename(columns={"m": "comm_size", "k": "comm_rank"})
    return out.join(order, on="rendezvous")


def find_ranks(run: RunRecords, ops: pd.DataFrame) -> list[Rank]:
    """The run's ranks, numbered as docs/outputs.md defines; [] unless at least two (process,
    device) pairs took part in collectives of more than one participant."""
    comm = ops[ops["rendezvous"] != 0]
    if comm.empty:
        return []
    pairs = comm[["pid", "device"]].drop_duplicates()
    if len(pairs) < 2:
        return []
    ident = _identity(comm)
    table = pairs.merge(ident, on=["pid", "device"], how="left")
    known = table["comm_rank"].notna()
    # communicators in order of their lowest (device, pid); a rank = its offset + its rank in it
    comms = (table[known].groupby(["order_device", "order_pid"])["comm_size"].max().sort_index())
    offsets = comms.cumsum() - comms
    numbers = np.full(len(table), -1, dtype=np.int64)
    if known.any():
        keyed = table[known]
        offset = offsets.loc[list(zip(keyed["order_device"], keyed["order_pid"], strict=True))].to_numpy()
        numbers[known.to_numpy()] = (offset + keyed["comm_rank"].to_numpy()).astype(np.int64)
    if len(np.unique(numbers[numbers >= 0])) < int(known.sum()):
        # overlapping communicators gave two participants one number: number them in that order
        order = np.lexsort((table["comm_rank"].fillna(0), table["order_pid"].fillna(0),
                            table["order_device"].fillna(0), ~known.to_numpy()))
        numbers[order[: int(known.sum())]] = np.arange(int(known.sum()))
    unknown = np.flatnonzero(~known.to_numpy())
    unknown = unknown[np.lexsort((table["pid"].to_numpy()[unknown], table["device"].to_numpy()[unknown]))]
    numbers[unknown] = (numbers.max() + 1 if known.any() else 0) + np.arange(len(unknown))
    spans = {p.pid: (p.start_virtual_ns, p.end_virtual_ns) for p in run.processes}
    ranks = []
    for i, row in enumerate(table.itertuples(index=False)):
        pid, device = int(row.pid), int(row.device)
        start, end = spans.get(pid, (0, 0))
        if not start:   # no trace header for it: the span of its ops
            mine = comm[(comm["pid"] == pid) & (comm["device"] == device)]
            start, end = int(mine["arrival_ns"].min()), int(mine["end_ns"].max())
        ranks.append(Rank(rank=int(numbers[i]), pid=pid, device=device,
                          comm_rank=None if pd.isna(row.comm_rank) else int(row.comm_rank),
                          comm_size=None if pd.isna(row.comm_size) else int(row.comm_size),
                          start_ns=int(start), end_ns=int(max(end, start))))
    return sorted(ranks, key=lambda r: r.rank)


def rank_of_ops(ops: pd.DataFrame, ranks: list[Rank]) -> np.ndarray:
    """Each op's rank number, -1 for ops of no rank."""
    out = np.full(len(ops), -1, dtype=np.int64)
    if not ranks or not len(ops):
        return out
    key = ops["pid"].to_numpy(np.int64) << 16 | ops["device"].to_numpy(np.int64)
    rank_keys = np.array([r.pid << 16 | r.device for r in ranks], dtype=np.int64)
    order = np.argsort(rank_keys)
    pos = np.clip(np.searchsorted(rank_keys[order], key), 0, len(ranks) - 1)
    hit = rank_keys[order][pos] == key
    out[hit] = np.array([r.rank for r in ranks], dtype=np.int64)[order][pos[hit]]
    return out


def rendezvous_ops(ops: pd.DataFrame, ranks: list[Rank]) -> pd.DataFrame:
    """The ops of ranks that met others, one row each, ordered by (rendezvous, arrival, rank):
    `op` (row of ops), `rank`, `order` (0 = first to arrive), `participants`, `last_rank` (the
    rank the others waited for) and the op's pid, device, stream, name, times."""
    rank = rank_of_ops(ops, ranks)
    sel = np.flatnonzero((ops["rendezvous"].to_numpy() != 0) & (rank >= 0))
    cols = ["pid", "device", "stream", "display_name", "rendezvous", "arrival_ns", "begin_ns", "end_ns"]
    table = ops.iloc[sel][cols].reset_index(drop=True)
    table.insert(0, "op", sel)
    table.insert(1, "rank", rank[sel])
    table = table.sort_values(["rendezvous", "arrival_ns", "rank"], kind="stable").reset_index(drop=True)
    grouped = table.groupby("rendezvous", sort=False)
    table["order"] = grouped.cumcount()
    table["participants"] = grouped["rank"].transform("size")
    table["last_rank"] = grouped["rank"].transform("last")
    return table


def exclusive_ns(lo: int, hi: int, classes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list[int], list[int]]:
    """For intervals of several classes, in priority order: the time of [lo, hi] each class covers
    where no earlier class does, and the time each covers at all (its union). One sort over the
    endpoints: linear in the intervals."""
    clipped = [(np.clip(np.asarray(b, np.int64), lo, hi), np.clip(np.asarray(e, np.int64), lo, hi))
               for b, e in classes]
    clipped = [(b[e > b], e[e > b]) for b, e in clipped]
    points = np.sort(np.concatenate([np.array([lo, hi], dtype=np.int64), *[np.concatenate(c) for c in clipped]]))
    points = points[np.r_[True, points[1:] != points[:-1]]]
    segment = np.diff(points)
    taken = np.zeros(len(segment), dtype=bool)
    exclusive, union = [], []
    for begin, end in clipped:
        edges = np.bincount(np.searchsorted(points, begin), minlength=len(points)) - \
            np.bincount(np.searchsorted(points, end), minlength=len(points))
        covered = np.cumsum(edges)[:-1] > 0
        exclusive.append(int(segment[covered & ~taken].sum()))
        union.append(int(segment[covered].sum()))
        taken |= covered
    return exclusive, union


def rank_breakdown(rank: Rank, ops: pd.DataFrame) -> dict[str, Any]:
    """Where the rank's GPU time went over its process's span: compute (any op that is not a
    collective, less what a collective beside it added to it), exposed communication (transfers
    and those additions where no compute runs), waiting for late ranks (the part of a collective
    before its last participant arrived, with neither compute nor communication under it) and
    idle; the four add up to the span. A slowed kernel's added ns are its last ones: without the
    collective it would have ended that much earlier."""
    met = ops["rendezvous"].to_numpy() != 0
    begin, end = ops["begin_ns"].to_numpy(np.int64), ops["end_ns"].to_numpy(np.int64)
    arrival = ops["arrival_ns"].to_numpy(np.int64)
    slowed = np.minimum(ops["slowed_ns"].to_numpy(np.int64), end - begin)
    work = ~met
    slowed_end = end - np.where(work, slowed, 0)
    (compute, transfer_exposed, slowdown_exposed, waiting), (_, comm, _, wait_total) = exclusive_ns(
        rank.start_ns, rank.end_ns, [(begin[work], slowed_end[work]), (begin[met], end[met]),
                                     (slowed_end[work], end[work]), (arrival[met], begin[met])])
    exposed = transfer_exposed + slowdown_exposed
    span = rank.end_ns - rank.start_ns
    return {
        "rank": rank.rank, "pid": rank.pid, "device": rank.device, "comm_rank": rank.comm_rank,
        "comm_size": rank.comm_size, "label": rank.label,
        "span_s": span / 1e9, "compute_s": compute / 1e9, "exposed_comm_s": exposed / 1e9,
        "waiting_s": waiting / 1e9, "idle_s": (span - compute - exposed - waiting) / 1e9,
        "comm_s": comm / 1e9, "hidden_comm_s": (comm - transfer_exposed) / 1e9, "wait_total_s": wait_total / 1e9,
        "comm_slowdown_s": int(slowed[work].sum()) / 1e9, "exposed_slowdown_s": slowdown_exposed / 1e9,
        "slowed_ops": int(np.count_nonzero(slowed[work])), "collectives": int(met.sum()),
    }


def ranks_summary(ranks: list[Rank], ops: pd.DataFrame, t0_ns: int) -> list[dict[str, Any]]:
    """summary.json's `ranks`: per rank its identity, span and breakdown, and how often the
    others waited for it (it arrived last at a collective of several participants)."""
    if not ranks:
        return []
    rank = rank_of_ops(ops, ranks)
    table = rendezvous_ops(ops, ranks)
    # each rank's rows are copied: the columns its breakdown reads, not every column
    times = ops[["rendezvous", "arrival_ns", "begin_ns", "end_ns", "slowed_ns"]]
    several = table[table["participants"] > 1]
    last = several[several["order"] == several["participants"] - 1]
    lateness = (last["begin_ns"] - several.groupby("rendezvous")["arrival_ns"].transform("min")[last.index])
    last_counts = last.groupby("rank").size()
    late_ns = lateness.groupby(last["rank"]).sum()
    out = []
    for r in ranks:
        entry = rank_breakdown(r, times.iloc[np.flatnonzero(rank == r.rank)])
        entry["virtual_start_s"] = (r.start_ns - t0_ns) / 1e9
        entry["virtual_end_s"] = (r.end_ns - t0_ns) / 1e9
        entry["arrived_last"] = int(last_counts.get(r.rank, 0))
        entry["made_others_wait_s"] = int(late_ns.get(r.rank, 0)) / 1e9
        out.append(entry)
    return out


def collectives_summary(ranks: list[Rank], ops: pd.DataFrame) -> dict[str, Any]:
    """summary.json's `collectives`: the instances (rendezvous) among the ranks, by name, and
    what collectives added to the kernels that ran beside them (every op of the run)."""
    slowed = ops["slowed_ns"].to_numpy(np.int64)
    slowdown = {"comm_slowdown_s": int(slowed.sum()) / 1e9, "slowed_ops": int(np.count_nonzero(slowed))}
    table = rendezvous_ops(ops, ranks) if ranks else None
    if table is None or table.empty:
        return {"instances": 0, "ops": 0, "by_name": [], **slowdown}
    table["wait_ns"] = table["begin_ns"] - table["arrival_ns"]
    table["transfer_ns"] = table["end_ns"] - table["begin_ns"]
    per = table.groupby("rendezvous", sort=False).agg(
        name=("display_name", "first"), participants=("rank", "size"), transfer_ns=("transfer_ns", "max"),
        wait_ns=("wait_ns", "sum"), first_ns=("arrival_ns", "min"), last_ns=("arrival_ns", "max"))
    per["spread_ns"] = per["last_ns"] - per["first_ns"]
    by_name = per.groupby("name").agg(instances=("participants", "size"), transfer_ns=("transfer_ns", "sum"),
                                      wait_ns=("wait_ns", "sum"), spread_ns=("spread_ns", "max"),
                                      participants=("participants", "max"))
    by_name = by_name.sort_values("transfer_ns", ascending=False, kind="stable")
    return {
        "instances": int(len(per)), "ops": int(len(table)),
        "by_name": [{"name": str(name), "instances": int(row.instances), "max_participants": int(row.participants),
                     "transfer_s": int(row.transfer_ns) / 1e9, "waiting_s": int(row.wait_ns) / 1e9,
                     "max_arrival_spread_us": int(row.spread_ns) / 1e3}
                    for name, row in by_name.iterrows()],
        **slowdown,
    }
