"""Table predictor: measured durations from real traces, looked up by signature.

A descriptor's signature splits into a categorical key (kind, kernel name, block, dtype, ...) and
numeric dims (grid, m/n/k, bytes, ...). Lookup order:
1. exact signature: the median of the repeats;
2. interpolation along one numeric dim: two measured points that differ from the query only in
   that dim and bracket it, interpolated linearly in log(size)-log(time);
3. nearest neighbour with the same key, every dim within a factor `max_ratio`: its median scaled
   by the roofline's ratio query/neighbour (so a 2x larger GEMM costs what the roofline says 2x costs);
4. otherwise no answer (predict_or_none -> None; predict falls back to the roofline).
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from predictors import Prediction
from predictors.catalog import GpuSpec
from predictors.descriptors import (
    AttentionDesc,
    CollectiveDesc,
    ConvDesc,
    CopyDesc,
    Descriptor,
    FftDesc,
    GemmDesc,
    KernelDesc,
    LibraryDesc,
    MarkerDesc,
    MemsetDesc,
    SolverDesc,
    demangle,
)
from predictors.roofline import RooflinePredictor, _collective_kind
from predictors.traces import desc_from_row, load_rows, read_rows, rows_sha256

Key = tuple[object, ...]
Dims = tuple[float, ...]


def signatures(desc: Descriptor) -> list[tuple[Key, Dims]]:
    """Signatures to look a descriptor up by, most specific first. A kernel is keyed by name,
    block and grid, plus its referenced bytes where the measurement knew them: profiler traces
    carry no bytes (nor the static/dynamic split of shared memory, left out for that reason)."""
    if isinstance(desc, KernelDesc):
        plain: tuple[Key, Dims] = (("kernel", demangle(desc.name), desc.block), desc.grid)
        if desc.bytes > 0:
            return [(("kernel", demangle(desc.name), desc.block, "bytes"), (*desc.grid, desc.bytes)), plain]
        return [plain]
    sig = signature(desc)
    return [] if sig is None else [sig]


def signature(desc: Descriptor) -> tuple[Key, Dims] | None:
    """(categorical key, numeric dims) a measurement is stored under; None for markers."""
    if isinstance(desc, KernelDesc):
        return signatures(desc)[0]
    if isinstance(desc, GemmDesc):
        # transposes are left out: profiler traces do not see them, and they barely move the time
        return ("gemm", int(desc.dtype_a), int(desc.dtype_out)), (desc.m, desc.n, desc.k, desc.batch)
    if isinstance(desc, CopyDesc):
        return ("memcpy", int(desc.copy_kind)), (desc.bytes,)
    if isinstance(desc, MemsetDesc):
        return ("memset",), (desc.bytes,)
    if isinstance(desc, AttentionDesc):
        return (("attention", int(desc.dtype), desc.flags, desc.head_dim, desc.heads_q, desc.heads_kv),
                (desc.batch, desc.seq_q, desc.seq_kv))
    if isinstance(desc, ConvDesc):
        return (("conv", int(desc.dtype), desc.flags, desc.r, desc.s, desc.groups),
                (desc.n, desc.c, desc.h, desc.w, desc.k))
    if isinstance(desc, CollectiveDesc):
        return ("collective", _collective_kind(desc.name), desc.ranks), (desc.byte_count(),)
    if isinstance(desc, FftDesc):
        return ("fft", int(desc.dtype), desc.rank), (desc.n0, desc.n1, desc.n2, desc.batch)
    if isinstance(desc, SolverDesc):
        return ("solver", desc.name, int(desc.dtype)), (desc.m, desc.n, desc.nrhs, desc.batch)
    if isinstance(desc, LibraryDesc):
        return ("library", desc.name), (desc.bytes, desc.flops)
    if isinstance(desc, MarkerDesc):
        return None
    raise TypeError(f"no signature for {type(desc).__name__}")


def _log(value: float) -> float:
    return math.log(max(value, 1.0))


@dataclass
class _Entry:
    desc: Descriptor
    key: Key
    durations_ns: list[int] = field(default_factory=list)

    @property
    def median_ns(self) -> float:
        return float(statistics.median(self.durations_ns))


class TablePredictor:
    name = "table"
    version = "1"

    def __init__(self, spec: GpuSpec, rows: list[dict[str, object]], label: str = "table",
                 max_ratio: float = 4.0, fallback: bool = True) -> None:
        if label not in ("table", "real"):
            raise ValueError("table label must be 'table' or 'real'")
        self.spec = spec
        self.label = label
        self.max_ratio = max_ratio
        self.fallback = fallback
        self.roofline = RooflinePredictor(spec)
        self._entries: dict[Key, dict[Dims, _Entry]] = defaultdict(dict)
        self._indexes: dict[Key, _KeyIndex] = {}
        for row in rows:
            if row.get("kind") == "e2e":
                continue
            desc = desc_from_row(row)
            sig = signature(desc)
            if sig is None:
                continue
            key, dims = sig
            entry = self._entries[key].setdefault(dims, _Entry(desc, key))
            entry.durations_ns.append(int(row["duration_ns"]))  # type: ignore[call-overload]
        for key in self._entries:  # built now, so that no prediction pays for it
            self._index(key)
        # the coordinator's persistent cache is keyed by version: name the data, not just its size
        self.version = f"1+{label}+{rows_sha256(rows)[:12]}"

    @classmethod
    def from_options(cls, spec: GpuSpec, data_dir: str | Path | None = None, table_path: str | Path | None = None,
                     label: str = "table", max_ratio: float = 4.0, fallback: bool = True,
                     **ignored: object) -> TablePredictor:
        rows: list[dict[str, object]] = []
        if table_path is not None:
            rows.extend(read_rows(Path(table_path)))
        else:
            rows.extend(load_rows(Path(data_dir) if data_dir else default_data_dir(), spec.key))
        return cls(spec, rows, label=label, max_ratio=max_ratio, fallback=fallback)

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def predict_or_none(self, desc: Descriptor) -> Prediction | None:
        if isinstance(desc, MarkerDesc):
            return Prediction(0, self.label)
        for key, dims in signatures(desc):
            points = self._entries.get(key)
            if not points:
                continue
            exact = points.get(dims)
            if exact is not None:
                return self._answer(exact.median_ns)
            interpolated = self._interpolate(points, dims)
            if interpolated is not None:
                return self._answer(interpolated)
            return self._nearest(points, dims, desc)
        return None

    def predict(self, desc: Descriptor) -> Prediction:
        found = self.predict_or_none(desc)
        if found is not None:
            return found
        if not self.fallback:
            raise LookupError(f"no table entry near {desc}")
        return self.roofline.predict(desc)

    def _answer(self, ns: float) -> Prediction:
        return Prediction(max(int(round(ns)), 0), self.label)

    def _index(self, key: Key) -> _KeyIndex:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = _KeyIndex(self._entries[key])
        return index

    def _interpolate(self, points: dict[Dims, _Entry], dims: Dims) -> float | None:
        key = next(iter(points.values())).key
        index = self._index(key)
        for axis in range(len(dims)):
            line = index.lines.get((axis, dims[:axis] + dims[axis + 1:]))
            if not line:
                continue
            xs = [x for x, _ in line]
            pos = bisect.bisect_left(xs, dims[axis])
            if 0 < pos < len(line):
                (xa, ya), (xb, yb) = line[pos - 1], line[pos]
                x0, x1, x = _log(xa), _log(xb), _log(dims[axis])
                t = (x - x0) / (x1 - x0) if x1 != x0 else 0.0
                return math.exp(_log(ya) + t * (_log(yb) - _log(ya)))
        return None

    def _nearest(self, points: dict[Dims, _Entry], dims: Dims, desc: Descriptor) -> Prediction | None:
        key = next(iter(points.values())).key
        index = self._index(key)
        query = np.log(np.maximum(np.asarray(dims, dtype=np.float64), 1.0))
        gaps = np.abs(index.log_dims - query)
        worst = gaps.max(axis=1)
        total = np.where(worst <= math.log(self.max_ratio), gaps.sum(axis=1), np.inf)
        best = int(np.argmin(total))  # first minimum: deterministic (insertion order)
        if not np.isfinite(total[best]):
            return None
        entry = index.entries[best]
        scale = self.roofline.predict(desc).duration_ns / max(self.roofline.predict(entry.desc).duration_ns, 1)
        return self._answer(entry.median_ns * scale)


class _KeyIndex:
    """Per categorical key: points as a log-dims matrix (nearest) and 1-D lines (interpolation)."""

    def __init__(self, points: dict[Dims, _Entry]) -> None:
        self.entries = list(points.values())
        self.log_dims = np.log(np.maximum(np.asarray(list(points), dtype=np.float64), 1.0))
        lines: dict[tuple[int, Dims], list[tuple[float, float]]] = defaultdict(list)
        for dims, entry in points.items():
            for axis in range(len(dims)):
                lines[(axis, dims[:axis] + dims[axis + 1:])].append((dims[axis], entry.median_ns))
        self.lines = {k: sorted(v) for k, v in lines.items() if len(v) > 1}


def default_data_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "data"
