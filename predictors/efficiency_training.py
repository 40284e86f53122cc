"""Training and honest evaluation of the efficiency model (predictors/efficiency.py) on the
public measurements (predictors/public_data.py, predictors/vidur.py).

The measured value of a row is its kernel time: the time its method shows minus what the
method adds with no GPU work (`overhead_ns`); rows within 4x of that overhead are left out of
training and evaluation (the overhead's uncertainty would dominate them), and so are rows more
than the model's bounds (efficiency.RATIO_LIMITS) away from the roofline (their descriptor
missed the work). Identical measurements of one GPU (the same descriptor, e.g. a GEMM shape
shared by two models) are merged into their median.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from predictors import efficiency, public_data, vidur
from predictors.catalog import get_spec
from predictors.classes import op_class
from predictors.descriptors import to_wire
from predictors.efficiency import FEATURES, FeatureMatrix, TrainedModel, fit, predict_ratio
from predictors.traces import desc_from_row, rows_sha256

log = logging.getLogger(__name__)

MIN_OVER_OVERHEAD = 4.0
DEFAULT_ROUNDS = 400


def load_public_rows(root: Path) -> list[dict[str, object]]:
    """Every public row the efficiency model uses: Vidur's GEMMs (its memory-bound ops are
    multi-kernel layers of its own implementation, not kernels: left out), inference-sim,
    NeuSight's microbenchmarks and operator traces."""
    rows: list[dict[str, object]] = []
    vidur_root = root / "vidur-profiles"
    for gpu_dir in vidur.GPU_KEYS:
        if (vidur_root / "compute" / gpu_dir).is_dir():
            for row in vidur.compute_rows(vidur_root, gpu_dir):
                if row["kind"] == "gemm":
                    rows.append({**row, "source": "vidur", "method": "kernel"})
    rows += public_data.inference_sim_rows(root)
    rows += public_data.neusight_micro_rows(root)
    rows += public_data.neusight_op_rows(root)
    return rows


@dataclass
class Sample:
    gpu: str
    source: str
    workload: str
    op: str
    cls: str
    desc: object
    measured_ns: float
    count: int = 1


def samples(rows: list[dict[str, object]]) -> list[Sample]:
    """Rows -> kernel-time samples, repeats merged into their median."""
    groups: dict[tuple[str, str, str], list[tuple[dict[str, object], float]]] = defaultdict(list)
    for row in rows:
        duration = float(row["duration_ns"])  # type: ignore[arg-type]
        overhead = float(row.get("overhead_ns") or 0.0)  # type: ignore[arg-type]
        if overhead and duration < MIN_OVER_OVERHEAD * overhead:
            continue
        measured = duration - overhead
        if measured <= 0:
            continue
        desc = desc_from_row(row)
        key = (str(row["gpu"]), str(row.get("source")), json.dumps(to_wire(desc), sort_keys=True, default=str))
        groups[key].append((row, measured))
    out = []
    for (gpu, source, _), items in groups.items():
        row = items[0][0]
        desc = desc_from_row(row)
        out.append(Sample(gpu, source, str(row.get("workload")), str(row.get("op")), op_class(desc), desc,
                          float(np.median([m for _, m in items])), len(items)))
    return out


@dataclass
class Matrix:
    x: np.ndarray
    roofline_ns: np.ndarray
    measured_ns: np.ndarray
    samples: list[Sample] = field(default_factory=list)

    @property
    def target(self) -> np.ndarray:
        return np.log(self.measured_ns / self.roofline_ns)

    def subset(self, mask: np.ndarray) -> Matrix:
        return Matrix(self.x[mask], self.roofline_ns[mask], self.measured_ns[mask],
                      [s for s, keep in zip(self.samples, mask, strict=True) if keep])


def build_matrix(items: list[Sample]) -> Matrix:
    """Features on each sample's own GPU (its catalog entry)."""
    by_gpu: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(items):
        by_gpu[s.gpu].append(i)
    x = np.full((len(items), len(FEATURES)), np.nan)
    roof = np.zeros(len(items))
    usable = np.zeros(len(items), dtype=bool)
    for gpu, indices in by_gpu.items():
        gx, groof, gusable = FeatureMatrix(get_spec(gpu)).rows([items[i].desc for i in indices])  # type: ignore[misc]
        x[indices], roof[indices], usable[indices] = gx, groof, gusable
    measured = np.array([s.measured_ns for s in items])
    matrix = Matrix(x, np.maximum(roof, 1.0), measured, items)
    # a measurement beyond the model's bounds around the roofline says its descriptor missed
    # the work (an operator of several kernels, a misread shape): it teaches nothing
    ratio = np.log(measured / matrix.roofline_ns)
    plausible = (ratio >= efficiency.RATIO_LIMITS[0]) & (ratio <= efficiency.RATIO_LIMITS[1])
    return matrix.subset(usable & plausible)


def weights(m: Matrix) -> np.ndarray:
    """Each (source, GPU, class) group weighs as the square root of its size: Vidur's tens of
    thousands of GEMMs must not drown the few hundred attention and operator measurements."""
    keys = [(s.source, s.gpu, s.cls) for s in m.samples]
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for k in keys:
        counts[k] += 1
    w = np.array([1.0 / math.sqrt(counts[k]) for k in keys])
    return w / w.mean()


def train_model(m: Matrix, rounds: int = DEFAULT_ROUNDS, params: dict[str, object] | None = None) -> object:
    return fit(m.x, m.target, rounds, params, weights(m))


def class_ranges(m: Matrix) -> dict[str, list[float]]:
    """Per class, the log2 roofline times the model was trained on (1st to 100th percentile):
    it answers only there."""
    col = FEATURES.index("log2_roofline_ns")
    out: dict[str, list[float]] = {}
    for cls in sorted({s.cls for s in m.samples}):
        values = m.x[np.array([s.cls == cls for s in m.samples]), col]
        out[cls] = [float(np.nanpercentile(values, 1)), float(np.nanmax(values))]
    return out


def data_sha256(rows: list[dict[str, object]]) -> str:
    return rows_sha256(sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str)))


def train(root: Path, rounds: int = DEFAULT_ROUNDS, threads: int = 2,
          without_workload: str | None = None) -> tuple[TrainedModel, Matrix]:
    """The model on every public row (or on all but one workload's: a held-out evaluation)."""
    rows = load_public_rows(root)
    if without_workload is not None:
        rows = [r for r in rows if str(r.get("workload")) != without_workload]
    m = build_matrix(samples(rows))
    booster = train_model(m, rounds, {"nthread": threads})
    counts: dict[str, int] = defaultdict(int)
    for s in m.samples:
        counts[f"{s.source}/{s.gpu}/{s.cls}"] += 1
    meta: dict[str, object] = {
        "format": efficiency.MODEL_FORMAT, "features": list(FEATURES), "rounds": rounds,
        "class_ranges": class_ranges(m),
        "params": {**efficiency.DEFAULT_PARAMS, "nthread": threads}, "data_sha256": data_sha256(rows),
        "rows": len(rows), "samples": len(m.samples), "samples_by_source_gpu_class": dict(sorted(counts.items())),
        "attribution": public_data.licence_notes(root),
        "data": "../shared/data: vidur-profiles (GEMMs), inference-sim (bench_data), neusight (label, "
                "data/dataset/test); read in place, not shipped",
    }
    return TrainedModel(booster, meta), m


# ---------------------------------------------------------------- evaluation

@dataclass
class Errors:
    """|predicted - measured| / measured of one class under one protocol."""
    roofline: list[float] = field(default_factory=list)
    learned: list[float] = field(default_factory=list)
    ratio: list[float] = field(default_factory=list)  # learned / measured

    def add(self, roof: float, learned: float, measured: float) -> None:
        self.roofline.append(abs(roof - measured) / measured)
        self.learned.append(abs(learned - measured) / measured)
        self.ratio.append(learned / measured)

    @staticmethod
    def stat(values: list[float]) -> str:
        if not values:
            return "-"
        return f"{np.median(values) * 100:.1f}% / {np.percentile(values, 90) * 100:.1f}%"


def held_out(m: Matrix, group_of: object, rounds: int, threads: int,
             only: object = None) -> dict[tuple[str, str], Errors]:
    """For each group (a model, a GPU): train without it, predict it. Returns errors keyed by
    (held-out group's GPU or name, class)."""
    groups = sorted({group_of(s) for s in m.samples})  # type: ignore[operator]
    out: dict[tuple[str, str], Errors] = defaultdict(Errors)
    for group in groups:
        test = np.array([group_of(s) == group for s in m.samples])  # type: ignore[operator]
        if only is not None:
            test &= np.array([bool(only(s)) for s in m.samples])  # type: ignore[operator]
        if not test.any() or test.all():
            continue
        train_part = m.subset(~test)
        model = train_model(train_part, rounds, {"nthread": threads})
        t = m.subset(test)
        # as the shipped predictor does: a class the fit never saw, or shorter than anything it
        # saw, is left to the roofline
        ranges = class_ranges(train_part)
        col = FEATURES.index("log2_roofline_ns")
        seen = np.array([s.cls in ranges and x[col] >= ranges[s.cls][0] - efficiency.RANGE_MARGIN_LOG2
                         for s, x in zip(t.samples, t.x, strict=True)])
        learned = t.roofline_ns * np.where(seen, np.exp(predict_ratio(model, t.x)), 1.0)
        for s, roof, pred, meas in zip(t.samples, t.roofline_ns, learned, t.measured_ns, strict=True):
            out[(str(group), s.cls)].add(float(roof), float(pred), float(meas))
        log.info("held out %s: %d samples", group, int(test.sum()))
    return out


def model_group(s: Sample) -> str:
    """What leave-one-model-out leaves out: the model (Vidur, NeuSight traces), the head
    configuration (inference-sim attention), the shape group (microbenchmarks, FP8 GEMMs)."""
    return f"{s.source}:{s.workload}"


MODEL_FOLDS = 5


def model_fold(s: Sample) -> str:
    """Models dealt into MODEL_FOLDS folds by a hash of their name: each model is predicted by a
    model trained without it (and without the other models of its fold)."""
    digest_ = hashlib.sha256(model_group(s).encode()).digest()
    return f"fold{digest_[0] % MODEL_FOLDS}"


def gpu_group(s: Sample) -> str:
    return "a100" if s.gpu.startswith("a100") else s.gpu


def summarise(errors: dict[tuple[str, str], Errors], by: str) -> dict[tuple[str, str], Errors]:
    """Merge errors per (GPU or 'all', class)."""
    merged: dict[tuple[str, str], Errors] = defaultdict(Errors)
    for (group, cls), e in errors.items():
        key = (group if by == "group" else "all", cls)
        merged[key].roofline += e.roofline
        merged[key].learned += e.learned
        merged[key].ratio += e.ratio
    return merged


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
