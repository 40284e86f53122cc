"""xgb predictor: learns a synthetic GPU's behaviour and predicts held-out groups well; its
model file carries the hash of its training data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from predictors import PredictorUnavailable, get_predictor
from predictors.catalog import get_spec
from predictors.descriptors import KernelDesc
from predictors.roofline import RooflinePredictor
from predictors.traces import row_from_desc, rows_sha256, write_rows
from predictors.xgb import XgbPredictor, save, split_rows, train

SPEC = get_spec("a100-80g")
FAMILIES = {"elementwise_kernel": 1.6, "reduce_kernel": 2.5, "softmax_warp_forward": 3.2}


def truth(desc: KernelDesc, family: str) -> int:
    """A made-up but structured GPU: per-family slowdown over HBM, a fixed ramp, wave steps."""
    waves = -(-desc.blocks // (SPEC.sm_count * 8))
    return int(2500 + FAMILIES[family] * desc.bytes / SPEC.hbm_bytes_per_s * 1e9 + 300 * waves)


def fixture_rows(count: int = 900) -> list[dict[str, object]]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        family = rng.choice(list(FAMILIES))
        blocks = rng.choice([64, 256, 1024, 4096, 16384, 65536])
        nbytes = blocks * 256 * rng.choice([4, 8, 16, 32])
        desc = KernelDesc(f"void at::native::{family}<{rng.choice([2, 4])}, float>(int)", grid=(blocks, 1, 1),
                          block=(256, 1, 1), bytes=nbytes)
        noise = 1 + rng.uniform(-0.03, 0.03)
        out.append(row_from_desc(desc, int(truth(desc, family) * noise), workload=f"w{i % 10}"))
    return out


def test_held_out_error_is_small_and_beats_roofline(tmp_path: Path) -> None:
    rows = fixture_rows()
    result = train(rows, SPEC, holdout_groups=["w3", "w7"], rounds=120)
    assert result.held_out.rows == 180
    assert result.held_out.median_abs_rel_error < 0.06
    assert result.held_out.p90_abs_rel_error < 0.15
    roofline = RooflinePredictor(SPEC)
    _, test = split_rows(rows, holdout_groups=["w3", "w7"])
    from predictors.traces import desc_from_row

    roof_err = sorted(abs(roofline.predict(desc_from_row(r)).duration_ns - r["duration_ns"]) / r["duration_ns"]
                      for r in test)[len(test) // 2]
    assert result.held_out.median_abs_rel_error < roof_err / 2

    path = save(result, tmp_path / "a100-80g.xgb.json")
    meta = json.loads(json.loads(path.read_text())["learner"]["attributes"]["timewarp_meta"])
    assert meta["data_sha256"] == rows_sha256(rows)
    loaded = get_predictor("xgb", SPEC, model_path=str(path))
    assert isinstance(loaded, XgbPredictor)
    assert loaded.version.endswith(rows_sha256(rows)[:12])
    desc = KernelDesc("void at::native::reduce_kernel<4, float>(int)", grid=(4096, 1, 1), block=(256, 1, 1),
                      bytes=4096 * 256 * 16)
    first = loaded.predict(desc)
    assert first.model == "xgb" and first == loaded.predict(desc)  # deterministic
    assert abs(first.duration_ns - truth(desc, "reduce_kernel")) / truth(desc, "reduce_kernel") < 0.1
    unseen = KernelDesc("void my_custom_kernel(float*)", grid=(10, 1, 1), block=(32, 1, 1), bytes=4096)
    assert loaded.predict_or_none(unseen) is None  # unknown family: not its call
    assert loaded.predict(unseen).model == "roofline"


def test_missing_model_answers_nothing(tmp_path: Path) -> None:
    empty = XgbPredictor.from_options(SPEC, model_dir=str(tmp_path))
    desc = KernelDesc("k", bytes=1 << 20)
    assert empty.predict_or_none(desc) is None
    assert empty.predict(desc).model == "roofline"
    # asked for by name, no model at all is the user's error, not the roofline under another name
    with pytest.raises(PredictorUnavailable, match="no trained model for a100-80g"):
        get_predictor("xgb", SPEC, model_dir=str(tmp_path))


def test_training_is_reproducible(tmp_path: Path) -> None:
    rows = fixture_rows(200)
    write_rows(rows, tmp_path / "rows.jsonl.zst")
    a = train(rows, SPEC, rounds=20)
    b = train(rows, SPEC, rounds=20)
    assert a.held_out == b.held_out and a.meta["data_sha256"] == b.meta["data_sha256"]
