"""Learned predictor: gradient-boosted trees (xgboost) per GPU, trained on real trace rows.

Target: ln(measured / roofline), so the trees learn how reality departs from the roofline and
the roofline carries the scaling outside the training range. A model file
(predictors/models/<gpu>.xgb.json by default) holds, in the booster's attributes, the feature
list, the vocabulary of kernel families, the kinds it was trained on, its held-out error and the
sha256 of the training rows (the data it came from).
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
from predictors.descriptors import Descriptor, MarkerDesc, kind_of
from predictors.features import CATEGORICAL, FEATURES, raw_features
from predictors.roofline import RooflinePredictor
from predictors.traces import desc_from_row, rows_sha256

log = logging.getLogger(__name__)

MODEL_FORMAT = 1
DEFAULT_PARAMS: dict[str, object] = {
    "objective": "reg:squarederror", "max_depth": 7, "eta": 0.08, "subsample": 0.9,
    "colsample_bytree": 0.9, "min_child_weight": 2, "seed": 0, "nthread": 1,
}


def default_model_dir() -> Path:
    return Path(__file__).resolve().parent / "models"


@dataclass
class HeldOut:
    rows: int
    median_abs_rel_error: float
    p90_abs_rel_error: float
    mape: float

    @staticmethod
    def of(predicted: np.ndarray, measured: np.ndarray) -> HeldOut:
        err = np.abs(predicted - measured) / measured
        if err.size == 0:
            return HeldOut(0, math.nan, math.nan, math.nan)
        return HeldOut(int(err.size), float(np.median(err)), float(np.percentile(err, 90)), float(err.mean()))


def split_rows(rows: list[dict[str, object]], holdout_fraction: float = 0.2, group_key: str = "workload",
               holdout_groups: list[str] | None = None) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Deterministic split by group (e.g. by model), so no group's rows sit on both sides."""
    groups = sorted({str(r.get(group_key, "")) for r in rows})
    if holdout_groups is None:
        def bucket(g: str) -> float:
            return int(hashlib.sha256(g.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if len(groups) > 1:
            chosen = {g for g in groups if bucket(g) < holdout_fraction} or {groups[-1]}
        else:  # one group: split rows by a hash of their content instead
            train, test = [], []
            for row in rows:
                key = json.dumps(row, sort_keys=True, default=str).encode()
                (test if int(hashlib.sha256(key).hexdigest()[:8], 16) / 0xFFFFFFFF < holdout_fraction
                 else train).append(row)
            return train, test
    else:
        chosen = set(holdout_groups)
    train = [r for r in rows if str(r.get(group_key, "")) not in chosen]
    test = [r for r in rows if str(r.get(group_key, "")) in chosen]
    return train, test


class FeatureEncoder:
    def __init__(self, spec: GpuSpec, vocab: dict[str, dict[str, int]] | None = None) -> None:
        self.spec = spec
        self.roofline = RooflinePredictor(spec)
        self.vocab: dict[str, dict[str, int]] = vocab or {name: {} for name in CATEGORICAL}

    def fit(self, descs: list[Descriptor]) -> None:
        for desc in descs:
            feats = raw_features(desc, self.spec, self.roofline)
            for name in CATEGORICAL:
                table = self.vocab[name]
                table.setdefault(str(feats[name]), len(table))

    def known(self, desc: Descriptor) -> bool:
        feats = raw_features(desc, self.spec, self.roofline)
        return str(feats["family"]) in self.vocab["family"]

    def matrix(self, descs: list[Descriptor]) -> tuple[np.ndarray, np.ndarray]:
        """(features, roofline ns) for a batch."""
        out = np.full((len(descs), len(FEATURES)), np.nan, dtype=np.float64)
        roof = np.zeros(len(descs))
        for i, desc in enumerate(descs):
            feats = raw_features(desc, self.spec, self.roofline)
            for j, name in enumerate(FEATURES):
                value = feats[name]
                if name in CATEGORICAL:
                    out[i, j] = self.vocab[name].get(str(value), -1)
                else:
                    out[i, j] = float(value)  # type: ignore[arg-type]
            roof[i] = self.roofline.predict(desc).duration_ns
        return out, roof


@dataclass
class TrainResult:
    booster: object
    meta: dict[str, object]
    held_out: HeldOut


def train(rows: list[dict[str, object]], spec: GpuSpec, holdout_fraction: float = 0.2,
          group_key: str = "workload", holdout_groups: list[str] | None = None, rounds: int = 300,
          params: dict[str, object] | None = None) -> TrainResult:
    """Train on rows for one GPU; evaluate on a held-out split by group."""
    import xgboost as xgb

    rows = [r for r in rows if r.get("kind") != "e2e" and int(r.get("duration_ns") or 0) > 0]  # type: ignore[call-overload]
    train_rows, test_rows = split_rows(rows, holdout_fraction, group_key, holdout_groups)
    if not train_rows:
        raise ValueError("no training rows")
    encoder = FeatureEncoder(spec)
    train_descs = [desc_from_row(r) for r in train_rows]
    encoder.fit(train_descs)
    x, roof = encoder.matrix(train_descs)
    measured = np.array([float(r["duration_ns"]) for r in train_rows])  # type: ignore[arg-type]
    target = np.log(measured) - np.log(roof)
    booster = xgb.train({**DEFAULT_PARAMS, **(params or {})}, xgb.DMatrix(x, label=target, missing=np.nan),
                        num_boost_round=rounds)
    held = HeldOut(0, math.nan, math.nan, math.nan)
    if test_rows:
        test_descs = [desc_from_row(r) for r in test_rows]
        tx, troof = encoder.matrix(test_descs)
        predicted = troof * np.exp(booster.predict(xgb.DMatrix(tx, missing=np.nan)))
        held = HeldOut.of(predicted, np.array([float(r["duration_ns"]) for r in test_rows]))  # type: ignore[arg-type]
    meta: dict[str, object] = {
        "format": MODEL_FORMAT, "gpu": spec.key, "features": list(FEATURES), "vocab": encoder.vocab,
        "kinds": sorted({int(kind_of(d)) for d in train_descs}),
        "data_sha256": rows_sha256(rows), "train_rows": len(train_rows), "test_rows": len(test_rows),
        "group_key": group_key, "held_out": held.__dict__, "min_duration_ns": float(measured.min()),
        "params": {**DEFAULT_PARAMS, **(params or {})}, "rounds": rounds,
    }
    booster.set_attr(timewarp_meta=json.dumps(meta, sort_keys=True))
    return TrainResult(booster, meta, held)


def save(result: TrainResult, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    result.booster.save_model(str(path))  # type: ignore[attr-defined]
    return path


class XgbPredictor:
    name = "xgb"
    version = "1"

    def __init__(self, spec: GpuSpec, booster: object | None = None, meta: dict[str, object] | None = None) -> None:
        self.spec = spec
        self.booster = booster
        self.meta = meta or {}
        self.roofline = RooflinePredictor(spec)
        self.encoder = FeatureEncoder(spec, self.meta.get("vocab"))  # type: ignore[arg-type]
        self.kinds = set(self.meta.get("kinds", []))  # type: ignore[call-overload]
        if booster is not None:
            self.version = f"1+{str(self.meta.get('data_sha256', ''))[:12]}"
            if list(self.meta.get("features", [])) != list(FEATURES):  # type: ignore[call-overload]
                raise ValueError("model was trained on another feature list: retrain it (scripts/train_predictors.py)")
        self._cached = functools.lru_cache(maxsize=1 << 16)(self._predict_uncached)

    @classmethod
    def load(cls, spec: GpuSpec, path: Path) -> XgbPredictor:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        booster.set_param({"nthread": 1})
        meta = json.loads(booster.attr("timewarp_meta") or "{}")
        if meta.get("gpu") not in (None, spec.key):
            raise ValueError(f"{path} was trained for {meta.get('gpu')}, not {spec.key}")
        return cls(spec, booster, meta)

    @classmethod
    def from_options(cls, spec: GpuSpec, model_path: str | Path | None = None, model_dir: str | Path | None = None,
                     **ignored: object) -> XgbPredictor:
        path = Path(model_path) if model_path else Path(model_dir or default_model_dir()) / f"{spec.key}.xgb.json"
        if not path.exists():
            log.warning("no xgb model for %s at %s: xgb answers nothing, the roofline answers", spec.key, path)
            return cls(spec)
        return cls.load(spec, path)

    def predict_or_none(self, desc: Descriptor) -> Prediction | None:
        if isinstance(desc, MarkerDesc):
            return Prediction(0, "xgb")
        if self.booster is None or int(kind_of(desc)) not in self.kinds or not self.encoder.known(desc):
            return None
        try:
            return self._cached(desc)
        except TypeError:  # unhashable descriptor
            return self._predict_uncached(desc)

    def _predict_uncached(self, desc: Descriptor) -> Prediction:
        import xgboost as xgb

        x, roof = self.encoder.matrix([desc])
        ratio = float(self.booster.predict(xgb.DMatrix(x, missing=np.nan))[0])  # type: ignore[attr-defined]
        ns = float(roof[0]) * math.exp(ratio)
        ns = max(ns, float(self.meta.get("min_duration_ns", 0.0)))  # type: ignore[arg-type]
        return Prediction(int(round(ns)), "xgb")

    def predict(self, desc: Descriptor) -> Prediction:
        return self.predict_or_none(desc) or self.roofline.predict(desc)

    def predict_batch(self, descs: list[Descriptor]) -> list[Prediction]:
        """predict for many descriptors with one call into xgboost (the coordinator uses this)."""
        answers = self.predict_or_none_batch(descs)
        return [a if a is not None else self.roofline.predict(d) for a, d in zip(answers, descs, strict=True)]

    def predict_or_none_batch(self, descs: list[Descriptor]) -> list[Prediction | None]:
        """predict_or_none for many descriptors with one call into xgboost."""
        import xgboost as xgb

        answers: list[Prediction | None] = [None] * len(descs)
        usable = [i for i, d in enumerate(descs) if self.booster is not None and not isinstance(d, MarkerDesc)
                  and int(kind_of(d)) in self.kinds and self.encoder.known(d)]
        if not usable:
            return answers
        x, roof = self.encoder.matrix([descs[i] for i in usable])
        ratios = self.booster.predict(xgb.DMatrix(x, missing=np.nan))  # type: ignore[attr-defined]
        floor = float(self.meta.get("min_duration_ns", 0.0))  # type: ignore[arg-type]
        for i, r, ratio in zip(usable, roof, ratios, strict=True):
            answers[i] = Prediction(int(round(max(float(r) * math.exp(float(ratio)), floor))), "xgb")
        return answers
