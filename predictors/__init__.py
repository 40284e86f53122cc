"""Predictors: a descriptor in, a duration in ns and the model that answered out (DESIGN §5).

    get_predictor("auto", get_spec("h100"), data_dir=Path("data")).predict(desc)

Registry keyed by name: roofline (needs no data), table (measured durations, exact or nearest
signature), xgb (gradient-boosted trees: a model trained on this GPU's own traces, else the
shipped cross-GPU efficiency model), auto (the default: table -> xgb -> roofline).
Predictions are deterministic: the same descriptor always gets the same answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from predictors.catalog import GpuSpec

log = logging.getLogger(__name__)

MODELS = ("roofline", "table", "xgb", "floor", "real")


class PredictorUnavailable(ValueError):
    """The predictor asked for cannot run here (e.g. xgb without a trained model): a user error."""


@dataclass(frozen=True)
class Prediction:
    duration_ns: int
    model: str  # one of MODELS

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}")
        if self.duration_ns < 0:
            raise ValueError("negative duration")


@runtime_checkable
class Predictor(Protocol):
    name: str
    version: str

    def predict(self, desc: Any) -> Prediction: ...  # noqa: ANN401 - any descriptor dataclass


def _roofline(spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    from predictors.roofline import RooflinePredictor

    if options:
        log.debug("roofline ignores options %s", sorted(options))
    return RooflinePredictor(spec)


def _table(spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    from predictors.table import TablePredictor

    return TablePredictor.from_options(spec, **options)


def xgb_model_paths(spec: GpuSpec, model_path: str | None = None,
                    model_dir: str | None = None) -> tuple[Path | None, Path | None]:
    """(this GPU's own xgb model, the cross-GPU efficiency model): the files that exist."""
    from predictors import efficiency, xgb

    if model_path:
        path = Path(model_path)
        if not path.exists():
            return None, None
        return (None, path) if path.name.endswith(efficiency.MODEL_FILE) else (path, None)
    folder = Path(model_dir) if model_dir else xgb.default_model_dir()
    own, shared = folder / f"{spec.key}.xgb.json", folder / efficiency.MODEL_FILE
    return (own if own.exists() else None), (shared if shared.exists() else None)


def _xgb(spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    from predictors.efficiency import EfficiencyPredictor
    from predictors.xgb import XgbPredictor

    own, shared = xgb_model_paths(spec, options.get("model_path"), options.get("model_dir"))
    if own is not None:
        return XgbPredictor.load(spec, own)
    if shared is not None:
        return EfficiencyPredictor.from_path(spec, shared)
    where = options.get("model_path") or options.get("model_dir") or "predictors/models"
    raise PredictorUnavailable(f"--predictor xgb: no trained model for {spec.key} in {where} (train one with "
                               "scripts/train_predictors.py, or use --predictor auto or roofline)")


def _auto(spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    from predictors.chain import ChainPredictor

    return ChainPredictor.auto(spec, **options)


_REGISTRY: dict[str, Callable[..., Predictor]] = {
    "roofline": _roofline, "table": _table, "xgb": _xgb, "auto": _auto,
}


def predictor_names() -> list[str]:
    return list(_REGISTRY)


def check_available(name: str, spec: GpuSpec, **options: Any) -> None:  # noqa: ANN401
    """Raises PredictorUnavailable when `name` cannot run for this GPU (checked before a run
    starts, so that the user gets one line instead of a coordinator that cannot start)."""
    if name == "xgb" and xgb_model_paths(spec, options.get("model_path"), options.get("model_dir")) == (None, None):
        _xgb(spec, **options)


def get_predictor(name: str, spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    """The predictor registered as `name` for this GPU. Options: data_dir, table_path, model_path,
    model_dir, label (table: the model name it reports, e.g. "real" for validate's ablation)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown predictor {name!r}; known: {', '.join(_REGISTRY)}") from None
    return factory(spec, **options)
