"""auto: table first, then xgb, then the roofline (DESIGN §5)."""

from __future__ import annotations

from pathlib import Path

from predictors import get_predictor
from predictors.catalog import get_spec
from predictors.chain import ChainPredictor
from predictors.descriptors import DType, GemmDesc, KernelDesc
from predictors.traces import row_from_desc, write_rows
from predictors.xgb import save, train

SPEC = get_spec("l4")


def test_auto_chain_order(tmp_path: Path) -> None:
    known = GemmDesc(512, 512, 512, 1, DType.F16, DType.F16, DType.F16, DType.F32)
    data_dir = tmp_path / "data"
    write_rows([row_from_desc(known, 12_345)], data_dir / "l4" / "t.jsonl.zst")
    kernel_rows = [row_from_desc(KernelDesc(f"void fam_kernel<{i % 3}>(float*)", grid=(64 * (i + 1), 1, 1),
                                            block=(128, 1, 1), bytes=(i + 1) << 16), 3000 + 50 * i,
                                 workload=f"w{i % 4}") for i in range(60)]
    model_dir = tmp_path / "models"
    save(train(kernel_rows, SPEC, rounds=10), model_dir / "l4.xgb.json")

    auto = get_predictor("auto", SPEC, data_dir=data_dir, model_dir=model_dir)
    assert isinstance(auto, ChainPredictor)
    assert auto.member_names() == ["table", "xgb", "roofline"]
    assert auto.predict(known).model == "table" and auto.predict(known).duration_ns == 12_345
    assert auto.predict(KernelDesc("void fam_kernel<1>(float*)", grid=(640, 1, 1), block=(128, 1, 1),
                                   bytes=10 << 16)).model == "xgb"
    assert auto.predict(KernelDesc("void other(float*)", bytes=1 << 20)).model == "roofline"


def test_auto_without_data_is_roofline(tmp_path: Path) -> None:
    auto = get_predictor("auto", SPEC, data_dir=tmp_path, model_dir=tmp_path)
    assert auto.member_names() == ["roofline"]  # type: ignore[attr-defined]
    assert auto.predict(KernelDesc("k", bytes=1 << 20)).model == "roofline"


def test_batch_equals_single(tmp_path: Path) -> None:
    """The coordinator calls predict_batch when a predictor has one: same answers as predict."""
    known = GemmDesc(512, 512, 512, 1, DType.F16, DType.F16, DType.F16, DType.F32)
    write_rows([row_from_desc(known, 777)], tmp_path / "l4" / "t.jsonl")
    auto = get_predictor("auto", SPEC, data_dir=tmp_path, model_dir=tmp_path)
    descs = [known, KernelDesc("k", bytes=1 << 20), GemmDesc(64, 64, 64)]
    assert auto.predict_batch(descs) == [auto.predict(d) for d in descs]  # type: ignore[attr-defined]
    assert [p.model for p in auto.predict_batch(descs)] == ["table", "roofline", "roofline"]  # type: ignore[attr-defined]
