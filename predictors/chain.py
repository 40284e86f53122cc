"""The auto predictor: the first member that can answer does: table (measurements of this
GPU), this GPU's own xgb model, the shipped cross-GPU efficiency model, the roofline."""

from __future__ import annotations

import logging
from pathlib import Path

from predictors import Prediction
from predictors.catalog import GpuSpec
from predictors.descriptors import Descriptor
from predictors.roofline import RooflinePredictor
from predictors.table import TablePredictor
from predictors.xgb import XgbPredictor

log = logging.getLogger(__name__)


class ChainPredictor:
    name = "auto"

    def __init__(self, spec: GpuSpec, members: list[object]) -> None:
        self.spec = spec
        self.members = members
        self.roofline = RooflinePredictor(spec)
        self.version = "+".join(f"{getattr(m, 'name', '?')}:{getattr(m, 'version', '?')}" for m in members)

    @classmethod
    def auto(cls, spec: GpuSpec, data_dir: str | Path | None = None, table_path: str | Path | None = None,
             model_path: str | Path | None = None, model_dir: str | Path | None = None,
             label: str = "table", **ignored: object) -> ChainPredictor:
        from predictors import xgb_model_paths
        from predictors.efficiency import EfficiencyPredictor

        table = TablePredictor.from_options(spec, data_dir=data_dir, table_path=table_path, label=label)
        own, shared = xgb_model_paths(spec, None if model_path is None else str(model_path),
                                      None if model_dir is None else str(model_dir))
        members: list[object] = []
        if len(table):
            members.append(table)
        if own is not None:
            members.append(XgbPredictor.load(spec, own))
        if shared is not None:
            members.append(EfficiencyPredictor.from_path(spec, shared))
        members.append(RooflinePredictor(spec))
        log.info("auto predictor for %s: %s", spec.key, [getattr(m, "name", "?") for m in members])
        return cls(spec, members)

    def member_names(self) -> list[str]:
        return [str(getattr(m, "name", "?")) for m in self.members]

    def predict_batch(self, descs: list[Descriptor]) -> list[Prediction]:
        """The chain over a batch: each member answers what it can in one call where it has one."""
        answers: list[Prediction | None] = [None] * len(descs)
        for member in self.members:
            todo = [i for i, a in enumerate(answers) if a is None]
            if not todo:
                break
            batch = getattr(member, "predict_or_none_batch", None)
            single = getattr(member, "predict_or_none", None)
            if batch is not None:
                found = batch([descs[i] for i in todo])
            elif single is not None:
                found = [single(descs[i]) for i in todo]
            else:
                found = [member.predict(descs[i]) for i in todo]  # type: ignore[attr-defined]
            for i, answer in zip(todo, found, strict=True):
                answers[i] = answer
        return [a if a is not None else self.roofline.predict(d) for a, d in zip(answers, descs, strict=True)]

    def predict(self, desc: Descriptor) -> Prediction:
        for member in self.members:
            answer = getattr(member, "predict_or_none", None)
            found = answer(desc) if answer is not None else member.predict(desc)  # type: ignore[attr-defined]
            if found is not None:
                return found
        return self.roofline.predict(desc)
