"""Predictors: a descriptor in, a duration in ns and the model that answered out (DESIGN §5).

    get_predictor("auto", get_spec("h100"), data_dir=Path("data")).predict(desc)

Registry keyed by name: roofline (default, needs no data), table (measured durations, exact or
nearest signature), xgb (gradient-boosted trees per GPU), auto (table -> xgb -> roofline).
Predictions are deterministic: the same descriptor always gets the same answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from predictors.catalog import GpuSpec

log = logging.getLogger(__name__)

MODELS = ("roofline", "table", "xgb", "floor", "real")


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


def _xgb(spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    from predictors.xgb import XgbPredictor

    return XgbPredictor.from_options(spec, **options)


def _auto(spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    from predictors.chain import ChainPredictor

    return ChainPredictor.auto(spec, **options)


_REGISTRY: dict[str, Callable[..., Predictor]] = {
    "roofline": _roofline, "table": _table, "xgb": _xgb, "auto": _auto,
}


def predictor_names() -> list[str]:
    return list(_REGISTRY)


def get_predictor(name: str, spec: GpuSpec, **options: Any) -> Predictor:  # noqa: ANN401
    """The predictor registered as `name` for this GPU. Options: data_dir, table_path, model_path,
    label (table: the model name it reports, e.g. "real" for validate's ablation)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown predictor {name!r}; known: {', '.join(_REGISTRY)}") from None
    return factory(spec, **options)
