"""The learned efficiency model: how far real GPUs fall from the roofline, per class of op,
from features that carry across GPUs. Trained on every public measurement in ../shared/data
by scripts/train_predictors.py (`train-efficiency`), shipped as predictors/models/efficiency.json.

Target: ln(measured / roofline), the roofline being predictors/roofline.py's physics (tiles,
waves, the masked attention FLOPs, the class bandwidths). Features are ratios to the GPU's own
specs (arithmetic intensity over the machine balance, bytes over L2, waves over the SMs, bytes
per SM) plus the shapes' logarithms, the class, the math type and the architecture generation,
so that a GPU without measurements (H200, B200, L40S) is predicted from its catalog entry.
Collectives and host copies are not modelled (the roofline answers them).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from predictors import Prediction
from predictors.catalog import GpuSpec
from predictors.classes import MODELLED, op_class
from predictors.descriptors import (
    DTYPE_BYTES,
    AttentionDesc,
    ConvDesc,
    CopyDesc,
    Descriptor,
    GemmDesc,
    KernelDesc,
    MarkerDesc,
    MemsetDesc,
    peak_class,
)
from predictors.roofline import RooflinePredictor

log = logging.getLogger(__name__)

MODEL_FORMAT = 2
MODEL_FILE = "efficiency.json"
MATH_CLASSES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp64")
FEATURES = (
    "cls", "math", "tensor_math", "log2_roofline_ns", "log2_bytes", "log2_flops", "intensity_vs_balance",
    "log2_bytes_over_l2", "log2_bytes_per_sm", "log2_m", "log2_n", "log2_k", "log2_batch", "log2_min_mn",
    "tile_waves", "tile_occupancy", "log2_weights_over_l2", "head_dim", "log2_q_per_seq", "log2_kv_per_seq",
    "log2_seqs", "gqa", "causal", "paged",
)
RATIO_LIMITS = (-1.2, 2.5)     # predictions stay within [0.3x, 12x] of the roofline
RANGE_MARGIN_LOG2 = 0.5        # answers down to 1/sqrt(2) of the shortest roofline time it was trained on
DEFAULT_PARAMS: dict[str, object] = {
    "objective": "reg:pseudohubererror", "huber_slope": 0.3, "max_depth": 6, "eta": 0.06, "subsample": 0.85,
    "colsample_bytree": 0.9, "min_child_weight": 3, "lambda": 2.0, "seed": 0, "nthread": 2,
}


def default_model_path() -> Path:
    return Path(__file__).resolve().parent / "models" / MODEL_FILE


def _log2(value: float) -> float:
    return math.log2(value) if value > 0 else math.nan


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def features(desc: Descriptor, spec: GpuSpec, roofline: RooflinePredictor) -> dict[str, float] | None:
    """Feature values of a descriptor on a GPU; None when its class is not modelled."""
    cls = op_class(desc)
    if cls not in MODELLED:
        return None
    f = {name: math.nan for name in FEATURES}
    f["cls"] = float(MODELLED.index(cls))
    roof = roofline.predict(desc).duration_ns
    f["log2_roofline_ns"] = _log2(roof)
    nbytes, flops, math_class = 0.0, 0.0, "fp32"
    if isinstance(desc, GemmDesc | ConvDesc):
        if isinstance(desc, GemmDesc):
            # C = A.B and C^T = B^T.A^T are the same work: the shorter side first, whichever way the
            # caller oriented it (torch asks cuBLAS for out_features x tokens, Vidur's rows are
            # tokens x out_features), and the longer side's operand is the weights
            m, n = min(desc.m, desc.n), max(desc.m, desc.n)
            k, batch = desc.k, max(desc.batch, 1)
            math_class = peak_class(desc.dtype_a, desc.dtype_compute)
            weights = DTYPE_BYTES[desc.dtype_b] * k * n
        else:
            m, n, k = desc.implicit_gemm()
            batch = 1
            math_class = peak_class(desc.dtype, desc.dtype_compute)
            weights = DTYPE_BYTES[desc.dtype] * k * n
        nbytes, flops = float(desc.byte_count()), float(desc.flop_count())
        tiles = _ceil_div(m, 128) * _ceil_div(n, 128) * batch
        waves = _ceil_div(tiles, spec.sm_count)
        f.update(log2_m=_log2(m), log2_n=_log2(n), log2_k=_log2(k), log2_batch=_log2(batch),
                 log2_min_mn=_log2(min(m, n)), tile_waves=float(tiles) / spec.sm_count,
                 tile_occupancy=tiles / (waves * spec.sm_count), log2_weights_over_l2=_log2(weights / spec.l2_bytes))
    elif isinstance(desc, AttentionDesc):
        math_class = peak_class(desc.dtype)
        nbytes, flops = float(desc.byte_count()), float(desc.flop_count())
        seqs = max(desc.batch, 1)
        ctas, waves = roofline.attention_waves(desc)
        f.update(head_dim=float(desc.head_dim), log2_q_per_seq=_log2(desc.tokens_q / seqs),
                 log2_kv_per_seq=_log2(desc.tokens_kv / seqs), log2_seqs=_log2(seqs),
                 gqa=desc.heads_q / max(desc.heads_kv, 1), causal=float(desc.causal), paged=float(desc.paged),
                 tile_waves=ctas / spec.sm_count, tile_occupancy=ctas / (waves * spec.sm_count))
    elif isinstance(desc, KernelDesc):
        nbytes = float(desc.bytes if desc.bytes > 0 else desc.threads * 8)
        flops = float(desc.flops)
    elif isinstance(desc, CopyDesc | MemsetDesc):
        nbytes = float(desc.bytes * (2 if isinstance(desc, CopyDesc) else 1))
    f["math"] = float(MATH_CLASSES.index(math_class))
    f["tensor_math"] = float(math_class not in ("fp32", "fp64") or spec.cc_major >= 8 and math_class == "fp64")
    f["log2_bytes"] = _log2(nbytes)
    f["log2_flops"] = _log2(flops)
    if flops > 0 and nbytes > 0:
        balance = spec.peak_flops(math_class) / spec.hbm_bytes_per_s
        f["intensity_vs_balance"] = math.log2(flops / nbytes / balance)
    f["log2_bytes_over_l2"] = _log2(nbytes / spec.l2_bytes)
    f["log2_bytes_per_sm"] = _log2(nbytes / spec.sm_count)
    return f


class FeatureMatrix:
    """Descriptors of one GPU -> (features, roofline ns), with the roofline built once."""

    def __init__(self, spec: GpuSpec) -> None:
        self.spec = spec
        self.roofline = RooflinePredictor(spec)

    def rows(self, descs: list[Descriptor],
             ranges: dict[str, list[float]] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(features, roofline ns, usable mask); with `ranges`, usable only where the model was
        trained: a class it saw, no shorter than (a margin below) the shortest it saw. Longer
        ops are answered: efficiency saturates with size, and the trees hold their last value."""
        x = np.full((len(descs), len(FEATURES)), np.nan)
        roof = np.zeros(len(descs))
        usable = np.zeros(len(descs), dtype=bool)
        for i, desc in enumerate(descs):
            feats = features(desc, self.spec, self.roofline)
            if feats is None:
                continue
            if ranges is not None:
                span = ranges.get(MODELLED[int(feats["cls"])])
                if span is None or feats["log2_roofline_ns"] < span[0] - RANGE_MARGIN_LOG2:
                    continue
            x[i] = [feats[name] for name in FEATURES]
            roof[i] = self.roofline.predict(desc).duration_ns
            usable[i] = True
        return x, roof, usable


@dataclass
class TrainedModel:
    booster: object
    meta: dict[str, object]
    file_sha256: str = ""


def fit(x: np.ndarray, target: np.ndarray, rounds: int, params: dict[str, object] | None = None,
        weight: np.ndarray | None = None) -> object:
    import xgboost as xgb

    return xgb.train({**DEFAULT_PARAMS, **(params or {})}, xgb.DMatrix(x, label=target, weight=weight,
                                                                          missing=np.nan), num_boost_round=rounds)


def predict_ratio(booster: object, x: np.ndarray) -> np.ndarray:
    import xgboost as xgb

    out = booster.predict(xgb.DMatrix(x, missing=np.nan))  # type: ignore[attr-defined]
    return np.clip(out, *RATIO_LIMITS)


def save(model: TrainedModel, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.booster.set_attr(timewarp_meta=json.dumps(model.meta, sort_keys=True))  # type: ignore[attr-defined]
    model.booster.save_model(str(path))  # type: ignore[attr-defined]
    return path


@functools.lru_cache(maxsize=4)
def load(path: Path) -> TrainedModel:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(str(path))
    booster.set_param({"nthread": 1})
    meta = json.loads(booster.attr("timewarp_meta") or "{}")
    if meta.get("format") != MODEL_FORMAT or list(meta.get("features", [])) != list(FEATURES):
        raise ValueError(f"{path} was trained for another feature list: retrain it "
                         "(python scripts/train_predictors.py train-efficiency)")
    return TrainedModel(booster, meta, hashlib.sha256(path.read_bytes()).hexdigest())


class EfficiencyPredictor:
    """The shipped cross-GPU model as a predictor (reports model "xgb")."""
    name = "xgb"

    def __init__(self, spec: GpuSpec, model: TrainedModel) -> None:
        self.spec = spec
        self.model = model
        self.matrix = FeatureMatrix(spec)
        self.roofline = self.matrix.roofline
        # the coordinator caches answers by version: name the model file itself and the physics
        self.version = f"eff{MODEL_FORMAT}+{model.file_sha256[:12]}+roofline{self.roofline.version}"
        self.ranges: dict[str, list[float]] = dict(model.meta.get("class_ranges") or {})  # type: ignore[call-overload]
        self._cached = functools.lru_cache(maxsize=1 << 16)(self._predict_uncached)

    @classmethod
    def from_path(cls, spec: GpuSpec, path: Path) -> EfficiencyPredictor:
        return cls(spec, load(path))

    def predict_or_none(self, desc: Descriptor) -> Prediction | None:
        if isinstance(desc, MarkerDesc):
            return Prediction(0, "xgb")
        try:
            return self._cached(desc)
        except TypeError:  # unhashable descriptor
            return self._predict_uncached(desc)

    def _predict_uncached(self, desc: Descriptor) -> Prediction | None:
        return self.predict_or_none_batch([desc])[0]

    def predict_or_none_batch(self, descs: list[Descriptor]) -> list[Prediction | None]:
        answers: list[Prediction | None] = [Prediction(0, "xgb") if isinstance(d, MarkerDesc) else None
                                            for d in descs]
        todo = [i for i, d in enumerate(descs) if not isinstance(d, MarkerDesc)]
        if not todo:
            return answers
        x, roof, usable = self.matrix.rows([descs[i] for i in todo], self.ranges)
        if usable.any():
            ratios = predict_ratio(self.model.booster, x[usable])
            for i, r, ratio in zip(np.array(todo)[usable], roof[usable], ratios, strict=True):
                ns = max(float(r) * math.exp(float(ratio)), float(self.spec.kernel_floor_ns))
                answers[int(i)] = Prediction(int(round(ns)), "xgb")
        return answers

    def predict(self, desc: Descriptor) -> Prediction:
        return self.predict_or_none(desc) or self.roofline.predict(desc)

    def predict_batch(self, descs: list[Descriptor]) -> list[Prediction]:
        answers = self.predict_or_none_batch(descs)
        return [a if a is not None else self.roofline.predict(d) for a, d in zip(answers, descs, strict=True)]
