"""PNG plots of a run: where the GPU time went, and the top kernels."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from emulator.outputs.demangle import short_name  # noqa: E402

if TYPE_CHECKING:
    from emulator.outputs.records import RunRecords

log = logging.getLogger(__name__)

TIMELINE_BINS = 400
MAX_TIMELINE_TRACKS = 24


def _busy_integral(begin: np.ndarray, end: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Busy time of the intervals up to each edge: sum of clip(edge - begin, 0, end - begin)."""
    def ramp(points: np.ndarray) -> np.ndarray:
        points = np.sort(points)
        csum = np.concatenate([[0.0], np.cumsum(points, dtype=np.float64)])
        n = np.searchsorted(points, edges, side="left")
        return n * edges - csum[n]
    return ramp(begin.astype(np.float64)) - ramp(end.astype(np.float64))


def stream_utilisation(ops: pd.DataFrame, t_end_us: float, bins: int = TIMELINE_BINS,
                       rank_of: dict[tuple[int, int], int] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per (pid, device, stream) track, the busy fraction in each of `bins` equal time bins; a
    track of a rank (rank_of: (pid, device) -> rank) is labelled by its rank."""
    rank_of = rank_of or {}
    edges = np.linspace(0.0, max(t_end_us, 1e-3), bins + 1)
    labels, rows = [], []
    busy_ops = ops[ops["duration_us"] > 0]
    totals = busy_ops.groupby(["pid", "device", "stream"])["duration_us"].sum().sort_values(ascending=False)
    multi_pid = busy_ops["pid"].nunique() > 1
    for pid, device, stream in sorted(totals.index[:MAX_TIMELINE_TRACKS]):
        sel = busy_ops[(busy_ops["pid"] == pid) & (busy_ops["device"] == device) & (busy_ops["stream"] == stream)]
        integral = _busy_integral(sel["start_us"].to_numpy(), sel["end_us"].to_numpy(), edges)
        rows.append(np.clip(np.diff(integral) / np.diff(edges), 0.0, 1.0))
        if (pid, device) in rank_of:
            labels.append(f"rank {rank_of[(pid, device)]} GPU {device} s{stream}")
        else:
            labels.append((f"pid {pid} " if multi_pid else "") + f"GPU {device} s{stream}")
    util = np.array(rows) if rows else np.zeros((0, bins))
    return labels, util, edges


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3g} s"
    if us >= 1e3:
        return f"{us / 1e3:.3g} ms"
    return f"{us:.3g} µs"


def _time_unit(t_end_us: float) -> tuple[float, str]:
    if t_end_us >= 2e6:
        return 1e6, "s"
    if t_end_us >= 2e3:
        return 1e3, "ms"
    return 1.0, "µs"


BREAKDOWN_COLOURS = {"compute": "tab:blue", "exposed_comm": "tab:red", "waiting": "tab:orange", "idle": "0.85"}
BREAKDOWN_LABELS = {"compute": "compute", "exposed_comm": "exposed communication", "waiting": "waiting for late ranks",
                    "idle": "idle"}


def plot_rank_breakdown(ranks: list[dict[str, Any]], ax_share: plt.Axes, ax_busy: plt.Axes) -> None:
    """Per rank: the four parts of its span as shares (left), and its busy parts in time (right:
    idle, often most of a span, would hide them)."""
    labels = [f"rank {r['rank']}" for r in ranks][::-1]
    rows = ranks[::-1]
    y = np.arange(len(rows))
    left_share = np.zeros(len(rows))
    left_time = np.zeros(len(rows))
    busy_max_us = max((sum(r[f"{p}_s"] for p in ("compute", "exposed_comm", "waiting")) for r in rows), default=0.0)
    scale, unit = _time_unit(busy_max_us * 1e6)
    for part, colour in BREAKDOWN_COLOURS.items():
        seconds = np.array([r[f"{part}_s"] for r in rows])
        spans = np.array([r["span_s"] or 1.0 for r in rows])
        ax_share.barh(y, 100 * seconds / spans, left=left_share, color=colour, label=BREAKDOWN_LABELS[part])
        left_share += 100 * seconds / spans
        if part != "idle":
            ax_busy.barh(y, seconds * 1e6 / scale, left=left_time, color=colour)
            left_time += seconds * 1e6 / scale
    for i, r in enumerate(rows):
        slowdown = f" (slowed kernels {_fmt_us(r['exposed_slowdown_s'] * 1e6)})" if r.get("exposed_slowdown_s") else ""
        ax_busy.annotate(f" compute {_fmt_us(r['compute_s'] * 1e6)}, comm {_fmt_us(r['exposed_comm_s'] * 1e6)}{slowdown}, "
                         f"wait {_fmt_us(r['waiting_s'] * 1e6)}", (left_time[i], i), va="center", fontsize=8)
    for ax in (ax_share, ax_busy):
        ax.set_yticks(y, labels, fontsize=8)
    ax_busy.margins(x=0.45)
    ax_share.set_xlim(0, 100)
    ax_share.set_xlabel("share of the rank's span (%)")
    ax_share.set_title("Per rank: where its span went")
    ax_share.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=2)
    ax_busy.set_xlabel(f"time ({unit})")
    ax_busy.set_title("Per rank: compute, exposed communication, waiting")


def plot_time_breakdown(summary: dict[str, Any], ops: pd.DataFrame, path: Path) -> None:
    ranks = summary.get("ranks") or []
    rank_rows = 0.35 + 0.25 * len(ranks) if ranks else 0.0
    fig = plt.figure(figsize=(13, 9 + 3 * rank_rows), constrained_layout=True)
    grid = fig.add_gridspec(3 if ranks else 2, 2, height_ratios=[1.0, rank_rows, 1.0] if ranks else [1.0, 1.0],
                            width_ratios=[1.0, 1.6])
    ax_kind, ax_top, ax_line = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[-1, :])
    if ranks:
        plot_rank_breakdown(ranks, fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1]))
    gpu = summary["gpu"]
    fig.suptitle(f"{gpu['name'] or gpu['key']} ×{gpu['count']}: virtual {summary['virtual_time_s']:.4g} s, "
                 f"wall {summary['wall_time_s']:.4g} s, speedup {summary['speedup']:.3g}×", fontsize=13)

    kinds = sorted(((k, v["total_s"], v["count"]) for k, v in summary["ops_by_kind"].items() if v["total_s"] > 0),
                   key=lambda x: x[1])
    scale, unit = _time_unit(max((t for _, t, _ in kinds), default=0.0) * 1e6)
    if kinds:
        ax_kind.barh([k for k, _, _ in kinds], [t * 1e6 / scale for _, t, _ in kinds], color="tab:blue")
        for y, (_, t, c) in enumerate(kinds):
            ax_kind.annotate(f" {_fmt_us(t * 1e6)}, {c} ops", (t * 1e6 / scale, y), va="center", fontsize=8)
        ax_kind.margins(x=0.3)
    ax_kind.set_xlabel(f"GPU time ({unit})")
    ax_kind.set_title("GPU time by op kind")

    top = summary["kernels"]["by_name"][:10][::-1]
    scale, unit = _time_unit(max((k["total_s"] for k in top), default=0.0) * 1e6)
    if top:
        ax_top.barh(range(len(top)), [k["total_s"] * 1e6 / scale for k in top], color="tab:orange")
        ax_top.set_yticks(range(len(top)), [short_name(k["name"], 60) for k in top], fontsize=8)
        for y, k in enumerate(top):
            ax_top.annotate(f" {_fmt_us(k['total_s'] * 1e6)}, ×{k['count']}", (k["total_s"] * 1e6 / scale, y),
                            va="center", fontsize=8)
        ax_top.margins(x=0.2)
    ax_top.set_xlabel(f"GPU time ({unit})")
    ax_top.set_title("Top kernels")

    t_end_us = summary["virtual_time_s"] * 1e6
    labels, util, edges = stream_utilisation(ops, t_end_us, rank_of={(r["pid"], r["device"]): r["rank"] for r in ranks})
    scale, unit = _time_unit(t_end_us)
    if len(labels):
        image = ax_line.imshow(util, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1,
                               extent=(edges[0] / scale, edges[-1] / scale, len(labels) - 0.5, -0.5))
        ax_line.set_yticks(range(len(labels)), labels, fontsize=8)
        fig.colorbar(image, ax=ax_line, label="busy fraction", shrink=0.8)
    ax_line.set_xlabel(f"virtual time ({unit})")
    ax_line.set_title("Stream utilisation over the run")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_top_kernels(summary: dict[str, Any], path: Path, count: int = 25) -> None:
    top = summary["kernels"]["by_name"][:count][::-1]
    fig, ax = plt.subplots(figsize=(12, 1.5 + 0.32 * max(len(top), 1)), constrained_layout=True)
    total = summary["kernels"]["gpu_time_s"] or 1.0
    scale, unit = _time_unit(max((k["total_s"] for k in top), default=0.0) * 1e6)
    if top:
        ax.barh(range(len(top)), [k["total_s"] * 1e6 / scale for k in top], color="tab:orange")
        ax.set_yticks(range(len(top)), [short_name(k["name"], 80) for k in top], fontsize=8)
        for y, k in enumerate(top):
            ax.annotate(f" {100 * k['total_s'] / total:.1f}%  ×{k['count']}  mean {_fmt_us(k['mean_us'])}",
                        (k["total_s"] * 1e6 / scale, y), va="center", fontsize=8)
        ax.margins(x=0.25)
    ax.set_xlabel(f"GPU time ({unit})")
    ax.set_title(f"Top {len(top)} kernels by GPU time ({summary['kernels']['count']} launches)")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_serving(summary: dict[str, Any], run: RunRecords, path: Path) -> None:
    """A serving benchmark: TTFT and TPOT CDFs per benchmark, and each benchmark's request
    timeline (each request from its send to its first token, then to its last)."""
    from emulator.outputs.serving import serving_requests

    benchmarks = [(Path(name).stem, table) for name, table in serving_requests(run)][:4]
    fig = plt.figure(figsize=(13, 9), constrained_layout=True)
    grid = fig.add_gridspec(2, max(len(benchmarks), 2), height_ratios=[1.0, 1.3])
    ax_ttft, ax_tpot = fig.add_subplot(grid[0, : grid.ncols // 2]), fig.add_subplot(grid[0, grid.ncols // 2:])
    gpu = summary["gpu"]
    fig.suptitle(f"Serving on {gpu['name'] or gpu['key']} (virtual time)", fontsize=13)
    for name, table in benchmarks:
        ok = table[table["ok"]]
        if ok.empty:
            continue
        ttft = np.sort(ok["ttft_s"].to_numpy() * 1e3)
        ax_ttft.plot(ttft, np.arange(1, len(ttft) + 1) / len(ttft), drawstyle="steps-post", label=name)
        many = ok[ok["output_len"] > 1]
        tpot = np.sort(((many["e2e_s"] - many["ttft_s"]) / (many["output_len"] - 1)).to_numpy() * 1e3)
        if len(tpot):
            ax_tpot.plot(tpot, np.arange(1, len(tpot) + 1) / len(tpot), drawstyle="steps-post", label=name)
    for ax, what, title in ((ax_ttft, "TTFT (ms)", "Time to first token"),
                            (ax_tpot, "TPOT (ms)", "Time per output token (after the first)")):
        ax.set_xlabel(what)
        ax.set_ylabel("fraction of requests")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    for column, (name, table) in enumerate(benchmarks):
        ax = fig.add_subplot(grid[1, column])
        sent = table["sent_s"].to_numpy()
        origin = np.nanmin(sent) if np.isfinite(sent).any() else 0.0
        for row, (t, ttft, e2e, ok) in enumerate(zip(sent, table["ttft_s"], table["e2e_s"], table["ok"], strict=True)):
            if np.isnan(t):
                continue
            if ok:
                ax.barh(row, ttft, left=t - origin, color="tab:orange", height=0.8)
                ax.barh(row, e2e - ttft, left=t - origin + ttft, color="tab:blue", height=0.8)
            else:
                ax.barh(row, max(e2e, 1e-4), left=t - origin, color="tab:red", height=0.8)
        ax.set_xlabel("virtual time from its first request (s)")
        ax.set_ylabel("request")
        ax.set_title(f"{name}: to first token (queued + prefill), then decode", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)
