"""Predictors against real measurements: Vidur's profiles (microsoft/vidur, MIT), read in place
from ../shared/data/vidur-profiles; skipped where that folder is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from predictors import vidur
from predictors.catalog import get_spec
from predictors.roofline import RooflinePredictor
from predictors.traces import desc_from_row
from predictors.xgb import XgbPredictor, train

REPO = Path(__file__).resolve().parents[2]
ROOT = vidur.default_root(REPO)
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"Vidur profiles not at {ROOT}")


def _median_error(predicted: list[float], measured: list[float]) -> float:
    p, m = np.array(predicted), np.array(measured)
    return float(np.median(np.abs(p - m) / m))


@pytest.fixture(scope="module")
def h100_gemm_rows() -> list[dict[str, object]]:
    return [r for r in vidur.compute_rows(ROOT, "h100") if r["kind"] == "gemm"]


def test_roofline_gemms_on_h100(h100_gemm_rows: list[dict[str, object]]) -> None:
    roofline = RooflinePredictor(get_spec("h100"))
    big = [r for r in h100_gemm_rows if int(r["dims"][0]) >= 1024]  # type: ignore[index]
    predicted = [roofline.predict(desc_from_row(r)).duration_ns for r in big]
    assert _median_error(predicted, [float(r["duration_ns"]) for r in big]) < 0.2  # type: ignore[arg-type]


def test_xgb_generalises_to_a_held_out_model(h100_gemm_rows: list[dict[str, object]]) -> None:
    spec = get_spec("h100")
    rows = [r for r in h100_gemm_rows if int(r["seq"]) % 4 == 0]  # type: ignore[call-overload] - keep CI fast
    result = train(rows, spec, holdout_groups=["Llama-2-7b-hf"], rounds=60)
    model = XgbPredictor(spec, result.booster, result.meta)
    test = [r for r in rows if r["workload"] == "Llama-2-7b-hf"]
    descs = [desc_from_row(r) for r in test]
    measured = [float(r["duration_ns"]) for r in test]  # type: ignore[arg-type]
    xgb = [a.duration_ns for a in model.predict_batch(descs)]
    roofline = [RooflinePredictor(spec).predict(d).duration_ns for d in descs]
    assert _median_error(xgb, measured) < _median_error(roofline, measured)
    assert result.held_out.median_abs_rel_error == pytest.approx(_median_error(xgb, measured), rel=1e-2)
