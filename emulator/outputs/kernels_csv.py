"""kernels.csv: one row per GPU op."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

CSV_COLUMNS = [
    "pid", "seq", "name", "mangled_name", "kind", "device", "stream", "graph_id", "issue_us", "start_us",
    "end_us", "duration_us", "grid", "block", "smem", "bytes", "flops", "model", "m", "n", "k", "batch",
]


def _quote(text: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([text])
    return buf.getvalue()


def _floats(series: pd.Series) -> list[str]:
    return [f"{v:.3f}" for v in series.tolist()]


def write_kernels_csv(ops: pd.DataFrame, path: Path) -> None:
    """Rows are formatted column-wise (names quoted once per distinct name): pandas' to_csv is
    several times slower on a million rows."""
    quoted = {n: _quote(n) for col in ("name", "mangled_name") for n in ops[col].unique().tolist()}
    columns = [
        ops["pid"].tolist(), ops["seq"].tolist(),
        [quoted[n] for n in ops["name"].tolist()], [quoted[n] for n in ops["mangled_name"].tolist()],
        ops["kind"].tolist(), ops["device"].tolist(), ops["stream"].tolist(), ops["graph_id"].tolist(),
        _floats(ops["issue_us"]), _floats(ops["start_us"]), _floats(ops["end_us"]), _floats(ops["duration_us"]),
        [f"{x}x{y}x{z}" for x, y, z in zip(ops["grid_x"].tolist(), ops["grid_y"].tolist(), ops["grid_z"].tolist(), strict=True)],
        [f"{x}x{y}x{z}" for x, y, z in zip(ops["block_x"].tolist(), ops["block_y"].tolist(),
                                           ops["block_z"].tolist(), strict=True)],
        ops["smem"].tolist(), ops["bytes"].tolist(), ops["flops"].tolist(), ops["model"].tolist(),
        ops["m"].tolist(), ops["n"].tolist(), ops["k"].tolist(), ops["batch"].tolist(),
    ]
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(CSV_COLUMNS) + "\n")
        f.writelines(",".join(map(str, row)) + "\n" for row in zip(*columns, strict=True))
