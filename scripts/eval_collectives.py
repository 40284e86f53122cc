#!/usr/bin/env python3
"""Fit and check the NCCL collective model (predictors/collectives.py) on Vidur's measured NCCL
timings (microsoft/vidur data/profiling/network, MIT), read in place from ../shared/data.

    python scripts/eval_collectives.py                 # held-out errors as markdown (docs/accuracy.md)
    python scripts/eval_collectives.py --write-model   # also refit predictors/models/nccl_collectives.json

Rows: intra-node all-reduce and send/recv (ranks on one server; the model covers one node).
`size` in Vidur's files is bytes (vidur/profiling/collectives/collectives_wrapper.py records
`size * 2  # bytes` of an fp16 buffer; its simulator divides by 2 to get elements). The median
column is the median NCCL kernel time (Kineto) over 11 back-to-back calls, medianed again over 3
repeats. Held out two ways: by size band (fit on the other bands) and by node type (fit on the
other node types); the error of each row comes from a fit that never saw it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from predictors.catalog import GpuSpec, get_spec  # noqa: E402
from predictors.collectives import MODEL_PATH, Calibration, collective_plan, p2p_plan  # noqa: E402
from predictors.descriptors import DType  # noqa: E402

log = logging.getLogger("eval_collectives")

DEFAULT_ROOT = REPO.parent / "shared" / "data" / "vidur-profiles"
SIZE_BANDS = ((0, 64 << 10), (64 << 10, 1 << 20), (1 << 20, 8 << 20), (8 << 20, 64 << 20), (64 << 20, 1 << 40))
BAND_NAMES = ("<64 KiB", "64 KiB-1 MiB", "1-8 MiB", "8-64 MiB", ">=64 MiB")
INITIAL = Calibration(overhead_us=5.0, latency_scale=1.0, nvlink_efficiency=0.75, pcie_efficiency=0.75,
                      p2p_overhead_us=8.0, p2p_nvlink_efficiency=0.8)


@functools.cache
def node_spec(node: str) -> GpuSpec:
    """The GPU and server of each Vidur topology. The pairwise A100 and H100 nodes are PCIe cards
    with NVLink bridges (600 GB/s both directions: A100 80GB PCIe and H100 PCIe/NVL datasheets)."""
    if node == "a100_dgx":
        return get_spec("a100-80g")
    if node == "h100_dgx":
        return get_spec("h100")
    if node == "a100_pairwise_nvlink":
        return dataclasses.replace(get_spec("a100-80g"), node_topology="pairwise_nvlink")
    if node == "h100_pairwise_nvlink":
        return dataclasses.replace(get_spec("h100"), node_topology="pairwise_nvlink", nvlink_links=12,
                                   nvlink_bytes_per_s=300e9)
    if node == "a40_pairwise_nvlink":
        return get_spec("a40")
    raise ValueError(f"no spec for Vidur node type {node!r}")


# Left out of every fit (still reported): the A40 pair moved 4 GB/s, below PCIe Gen4 x16 and
# the 56 GB/s bridge, so it used neither (P2P was off on that host); h100_pairwise's send_recv
# file is byte-identical to a100_pairwise's, so it is not a second measurement.
NOT_FITTED = {("a40_pairwise_nvlink", "send_recv"), ("h100_pairwise_nvlink", "send_recv"),
              ("a100_pairwise_nvlink", "send_recv")}


@dataclass(frozen=True)
class Row:
    node: str
    op: str          # all_reduce or send_recv
    ranks: int
    nbytes: int      # per rank
    measured_ns: float

    @property
    def band(self) -> int:
        return next(i for i, (lo, hi) in enumerate(SIZE_BANDS) if lo <= self.nbytes < hi)


def load_rows(root: Path) -> list[Row]:
    import pandas as pd

    rows: list[Row] = []
    for path in sorted((root / "network").glob("*/*.csv.gz")):
        node, op = path.parent.name, path.name.split(".")[0]
        frame = pd.read_csv(path)
        frame = frame[frame["devices_per_node"] >= frame["num_workers"]]  # one node
        column = f"time_stats.{op}.median"
        grouped = frame.groupby(["num_workers", "size"])[column].median()
        for (ranks, size), median_ms in grouped.items():
            if median_ms > 0:
                rows.append(Row(node, op, int(ranks), int(size), float(median_ms) * 1e6))
    return rows


def rows_sha256(rows: list[Row]) -> str:
    text = io.StringIO()
    for r in sorted(rows, key=lambda r: (r.node, r.op, r.ranks, r.nbytes)):
        text.write(f"{r.node},{r.op},{r.ranks},{r.nbytes},{r.measured_ns:.0f}\n")
    return hashlib.sha256(text.getvalue().encode()).hexdigest()


def predict_ns(row: Row, cal: Calibration) -> float:
    spec = node_spec(row.node)
    if row.op == "all_reduce":
        return collective_plan(spec, "all_reduce", row.ranks, row.nbytes // 2, DType.F16, cal).duration_ns
    return p2p_plan(spec, row.ranks, row.nbytes, 0, 1, "send", cal).duration_ns


def _calibration(vector: np.ndarray) -> Calibration:
    values = np.exp(vector)
    values[2:4] = np.minimum(values[2:4], 1.0)   # efficiencies: never above the datasheet
    values[5] = min(values[5], 1.0)
    return Calibration(*[float(v) for v in values])


# Each measurement is the op's own time plus however long rank 0's kernel waited for the last
# rank to launch (host-side skew: the bimodal 7-60 µs spread of small all-reduces). The emulator
# models that wait itself (a collective starts when the last rank arrives), so the fit tracks the
# lower quartile of the measurements, not their median.
FIT_QUANTILE = 0.25


def fit(rows: list[Row], start: Calibration = INITIAL, quantile: float = FIT_QUANTILE) -> Calibration:
    """Quantile (pinball) loss on log(measured / predicted), Nelder-Mead over log parameters."""
    from scipy.optimize import minimize

    measured = np.log(np.array([r.measured_ns for r in rows]))

    def loss(vector: np.ndarray) -> float:
        cal = _calibration(vector)
        residual = measured - np.log(np.array([predict_ns(r, cal) for r in rows]))
        return float(np.mean(np.maximum(quantile * residual, (quantile - 1) * residual)))

    x0 = np.log(np.array(dataclasses.astuple(start)))
    result = minimize(loss, x0, method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 4000})
    return _calibration(result.x)


def thinned(rows: list[Row], per_group: int = 48) -> list[Row]:
    """At most `per_group` rows per (node, op, ranks), spread evenly over log size: the fit costs
    a model call per row and evaluation, and the dense grid adds no information to it."""
    groups: dict[tuple[str, str, int], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.node, r.op, r.ranks), []).append(r)
    out: list[Row] = []
    for members in groups.values():
        members.sort(key=lambda r: r.nbytes)
        sizes = np.log([r.nbytes for r in members])
        targets = np.linspace(sizes[0], sizes[-1], per_group)
        picked = sorted({int(np.argmin(np.abs(sizes - t))) for t in targets})
        out.extend(members[i] for i in picked)
    return out


def fitted_rows(rows: list[Row]) -> list[Row]:
    return [r for r in rows if (r.node, r.op) not in NOT_FITTED]


def held_out_by_band(rows: list[Row]) -> tuple[dict[Row, float], list[Calibration]]:
    """Each size band predicted by constants fitted on the other bands (every node type)."""
    predicted: dict[Row, float] = {}
    fits = []
    for band in range(len(SIZE_BANDS)):
        cal = fit(thinned([r for r in fitted_rows(rows) if r.band != band]))
        fits.append(cal)
        predicted.update({r: predict_ns(r, cal) for r in rows if r.band == band})
    return predicted, fits


def held_out_by_node(rows: list[Row]) -> tuple[dict[Row, float], dict[str, Calibration]]:
    """Each node type predicted by constants fitted on the other node types (every size)."""
    predicted: dict[Row, float] = {}
    fits = {}
    for node in sorted({r.node for r in rows}):
        cal = fit(thinned([r for r in fitted_rows(rows) if r.node != node]))
        fits[node] = cal
        predicted.update({r: predict_ns(r, cal) for r in rows if r.node == node})
    return predicted, fits


def _errors(rows: list[Row], predicted: dict[Row, float]) -> tuple[float, float, float]:
    p = np.array([predicted[r] for r in rows])
    m = np.array([r.measured_ns for r in rows])
    err = np.abs(p - m) / m
    return float(np.median(err)), float(np.percentile(err, 90)), float(np.exp(np.mean(np.log(p / m))))


def _cell(rows: list[Row], predicted: dict[Row, float]) -> str:
    if not rows:
        return "-"
    median, p90, ratio = _errors(rows, predicted)
    return f"{median * 100:.0f}% / {p90 * 100:.0f}% / {ratio:.2f}"


def report(rows: list[Row], by_band: dict[Row, float], by_node: dict[Row, float], shipped: Calibration,
           sha: str) -> str:
    lines = ["| op | node type | ranks | rows | held out by size band | held out by node type | "
             "by size band: " + ", ".join(BAND_NAMES) + " |", "|---|---|---|---|---|---|---|"]
    for node, op, ranks in sorted({(r.node, r.op, r.ranks) for r in rows}, key=lambda k: (k[1], k[0], k[2])):
        group = [r for r in rows if (r.node, r.op, r.ranks) == (node, op, ranks)]
        note = "" if (node, op) not in NOT_FITTED else " (not fitted)"
        bands = ", ".join(f"{_errors(b, by_band)[0] * 100:.0f}%" if b else "-"
                          for b in ([r for r in group if r.band == i] for i in range(len(SIZE_BANDS))))
        lines.append(f"| {op} | {node}{note} | {ranks} | {len(group)} | {_cell(group, by_band)} | "
                     f"{_cell(group, by_node)} | {bands} |")
    lines += ["", "Pooled over the fitted node types (held out by size band):", "",
              "| op | " + " | ".join(BAND_NAMES) + " | all |", "|---|" + "---|" * (len(SIZE_BANDS) + 1)]
    for op in ("all_reduce", "send_recv"):
        usable = [r for r in fitted_rows(rows) if r.op == op]
        cells = [_cell([r for r in usable if r.band == i], by_band) for i in range(len(SIZE_BANDS))]
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {_cell(usable, by_band)} |")
    constants = ", ".join(f"{k} = {v:.3g}" for k, v in dataclasses.asdict(shipped).items())
    lines += ["", f"Cells: median / p90 of |predicted - measured| / measured, and the geometric mean of "
              f"predicted / measured. Shipped constants (all fitted rows, sha256 {sha[:16]}…): {constants}."]
    return "\n".join(lines) + "\n"


def write_model(cal: Calibration, rows: list[Row], sha: str) -> None:
    data = {
        "what": "NCCL collective cost model constants (predictors/collectives.py), fitted by "
                "scripts/eval_collectives.py --write-model",
        "calibration": dataclasses.asdict(cal),
        "fit": {"loss": f"pinball (quantile {FIT_QUANTILE}) on log(measured / predicted)",
                "rows": len(rows), "rows_sha256": sha,
                "rows_format": "node,op,ranks,bytes,measured_ns per line, sorted (rows_sha256 in the script)"},
        "data": {"source": "Vidur (microsoft/vidur, commit 7d47513), data/profiling/network/*/"
                           "{all_reduce,send_recv}.csv: NCCL kernel times measured on A100 and H100 servers",
                 "licence": "MIT License, Copyright (c) Microsoft Corporation",
                 "thanks": "to the Vidur authors for publishing their measurements"},
    }
    MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
    MODEL_PATH.write_text(json.dumps(data, indent=2) + "\n")


def shipped_file_differs(cal: Calibration, sha: str) -> bool:
    data = json.loads(MODEL_PATH.read_text())
    return data["fit"]["rows_sha256"] != sha or data["calibration"] != dataclasses.asdict(cal)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the vidur-profiles folder")
    parser.add_argument("--out", type=Path, help="write the markdown here (default: stdout)")
    parser.add_argument("--write-model", action="store_true", help=f"refit and write {MODEL_PATH.name}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.root / "network").is_dir():
        sys.stderr.write(f"eval_collectives: no Vidur network profiles under {args.root}\n")
        return 2
    rows = load_rows(args.root)
    usable = thinned(fitted_rows(rows))
    sha = rows_sha256(usable)
    shipped = Calibration(*[float(f"{v:.4g}") for v in dataclasses.astuple(fit(usable))])
    if args.write_model:
        write_model(shipped, usable, sha)
        log.info("wrote %s", MODEL_PATH)
    elif shipped_file_differs(shipped, sha):
        log.warning("%s was not fitted on these rows: rerun with --write-model", MODEL_PATH)
    by_band, _ = held_out_by_band(rows)
    by_node, _ = held_out_by_node(rows)
    text = report(rows, by_band, by_node, shipped, sha)
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
