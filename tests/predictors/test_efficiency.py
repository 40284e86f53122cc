"""The shipped cross-GPU efficiency model: what it records about its data, where it answers,
that it extrapolates to GPUs without measurements within physics, and that asking for xgb
without any model is a one-line user error."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from predictors import efficiency, get_predictor, public_data
from predictors.catalog import get_spec
from predictors.descriptors import CollectiveDesc, DType, GemmDesc, KernelDesc, MarkerDesc, OpKind
from predictors.roofline import RooflinePredictor

REPO = Path(__file__).resolve().parents[2]
MODEL = efficiency.default_model_path()


def gemm(m: int, n: int, k: int, dtype: DType = DType.BF16) -> GemmDesc:
    return GemmDesc(m=m, n=n, k=k, dtype_a=dtype, dtype_b=dtype, dtype_out=dtype, dtype_compute=DType.F32)


def test_model_records_its_data_and_licences() -> None:
    meta = efficiency.load(MODEL).meta
    assert meta["features"] == list(efficiency.FEATURES)
    assert len(str(meta["data_sha256"])) == 64
    attribution = " ".join(str(v) for v in dict(meta["attribution"]).values())  # type: ignore[call-overload]
    assert "Georgia Institute of Technology and Microsoft Corporation" in attribution
    assert "Apache" in attribution and "MIT" in attribution
    sources = {key.split("/")[0] for key in dict(meta["samples_by_source_gpu_class"])}  # type: ignore[call-overload]
    assert sources == {"vidur", "inference-sim", "neusight"}


def test_auto_uses_it_by_default_and_leaves_the_rest_to_the_roofline() -> None:
    spec = get_spec("h100")
    auto = get_predictor("auto", spec)
    assert auto.member_names() == ["xgb", "roofline"]  # type: ignore[attr-defined]
    assert auto.predict(gemm(4096, 4096, 4096)).model == "xgb"
    assert auto.predict(CollectiveDesc("all_reduce", 8, 1 << 20, DType.BF16)).model == "roofline"
    assert auto.predict(MarkerDesc(OpKind.EVENT_RECORD)).duration_ns == 0
    # far shorter than anything of its class it was trained on: the roofline's answer
    tiny = KernelDesc("void at::native::vectorized_elementwise_kernel<4, FillFunctor<float>>", bytes=4096)
    assert auto.predict(tiny).model == "roofline"


@pytest.mark.parametrize("gpu", ["h200", "b200", "l40s"])
def test_gpus_without_data_are_predicted_from_their_specs(gpu: str) -> None:
    """No measurement exists for these parts: answers must follow their specs, within the
    model's bounds around the roofline, and never beat bytes / HBM peak or FLOPs / peak."""
    spec, h100 = get_spec(gpu), get_spec("h100")
    model = get_predictor("xgb", spec)
    roofline = RooflinePredictor(spec)
    big = gemm(8192, 8192, 8192)
    long = public_data.attention_desc(1, 32, 8, 16384, 16384, 128, DType.BF16, causal=True)
    stream = KernelDesc("softmax_warp_forward<float, float, float>", bytes=1 << 30)
    for desc, floor_ns in ((big, big.flop_count() / spec.peak_bf16_flops * 1e9),
                           (long, long.flop_count() / spec.peak_bf16_flops * 1e9),
                           (stream, stream.bytes / spec.hbm_bytes_per_s * 1e9)):
        answer = model.predict(desc)
        assert answer.model == "xgb"
        ratio = answer.duration_ns / roofline.predict(desc).duration_ns
        assert math.exp(efficiency.RATIO_LIMITS[0]) - 1e-6 <= ratio <= math.exp(efficiency.RATIO_LIMITS[1]) + 1e-6
        assert answer.duration_ns >= floor_ns
    # the same compute-bound work on a part with the same math peak (H200) takes about as long
    if gpu == "h200":
        on_h100 = get_predictor("xgb", h100).predict(long).duration_ns
        assert abs(model.predict(long).duration_ns / on_h100 - 1) < 0.1
    # twice the memory bandwidth reads a gigabyte faster
    if gpu == "b200":
        assert model.predict(stream).duration_ns < get_predictor("xgb", h100).predict(stream).duration_ns


def test_xgb_without_any_model_is_a_one_line_user_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "emulator", "--gpu", "h100", "--predictor", "xgb",
                           "--predictor-option", f"model_dir={tmp_path}", "--out", str(tmp_path / "run"), "--",
                           "true"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no trained model for h100" in lines[0], proc.stderr
    assert not (tmp_path / "run" / "summary.json").exists()
