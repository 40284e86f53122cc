"""Roofline: monotone, never above peak, wave quantisation visible, copies on the right link."""

from __future__ import annotations

import pytest

from predictors import get_predictor
from predictors.catalog import get_spec, list_specs
from predictors.descriptors import (
    AttentionDesc,
    CollectiveDesc,
    ConvDesc,
    CopyDesc,
    CopyKind,
    DType,
    GemmDesc,
    KernelDesc,
    MarkerDesc,
    MemsetDesc,
    OpKind,
)
from predictors.roofline import RooflinePredictor


def fp16_gemm(m: int, n: int, k: int, batch: int = 1) -> GemmDesc:
    return GemmDesc(m, n, k, batch, DType.F16, DType.F16, DType.F16, DType.F32)


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.key)
def test_gemm_monotone_and_never_above_peak(spec: object) -> None:
    roofline = RooflinePredictor(spec)  # type: ignore[arg-type]
    previous = 0
    for size in (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384):
        desc = fp16_gemm(size, size, size)
        ns = roofline.predict(desc).duration_ns
        assert ns >= previous, f"{size}: {ns} < {previous}"
        previous = ns
        achieved = desc.flop_count() / (ns * 1e-9)
        assert achieved <= spec.peak_flops("fp16")  # type: ignore[attr-defined]
        assert ns * 1e-9 >= desc.byte_count() / spec.hbm_bytes_per_s  # type: ignore[attr-defined]
    for k in (256, 512, 1024, 4096):
        assert roofline.predict(fp16_gemm(4096, 4096, k)).duration_ns < roofline.predict(
            fp16_gemm(4096, 4096, 2 * k)).duration_ns


def test_wave_quantisation_visible() -> None:
    spec = get_spec("h100")
    roofline = RooflinePredictor(spec)
    tile_m, tile_n = roofline.gemm_plan(8192, 8192, 8192, 1, "fp16", 0).tile_m, 256
    assert spec.sm_count == 132 == 12 * 11
    full = fp16_gemm(12 * tile_m, 11 * tile_n, 16384)    # exactly one wave
    over = fp16_gemm(7 * tile_m, 19 * tile_n, 16384)     # 133 tiles: a second, nearly empty wave
    assert roofline.gemm_plan(over.m, over.n, over.k, 1, "fp16", over.byte_count()).waves == 2
    ratio = roofline.predict(over).duration_ns / roofline.predict(full).duration_ns
    assert 1.8 < ratio < 2.1


def test_dtype_peaks_order_gemm_times() -> None:
    roofline = RooflinePredictor(get_spec("h100"))
    times = {dt: roofline.predict(GemmDesc(8192, 8192, 8192, 1, dt, dt, dt, DType.F32)).duration_ns
             for dt in (DType.F8E4M3, DType.BF16, DType.F32)}
    assert times[DType.F8E4M3] < times[DType.BF16] < times[DType.F32]
    tf32 = GemmDesc(8192, 8192, 8192, 1, DType.F32, DType.F32, DType.F32, DType.TF32)
    assert roofline.predict(tf32).duration_ns < times[DType.F32]


def test_copies_use_the_right_link() -> None:
    spec = get_spec("h100")
    roofline = RooflinePredictor(spec)
    size = 1 << 30
    pinned = roofline.predict(CopyDesc(CopyKind.H2D_PINNED, size)).duration_ns
    pageable = roofline.predict(CopyDesc(CopyKind.H2D_PAGEABLE, size)).duration_ns
    d2d = roofline.predict(CopyDesc(CopyKind.D2D, size)).duration_ns
    peer = roofline.predict(CopyDesc(CopyKind.PEER, size)).duration_ns
    assert size / (pinned * 1e-9) <= spec.pcie_bytes_per_s
    assert size / (pinned * 1e-9) > 0.5 * spec.pcie_bytes_per_s
    assert pageable > pinned
    assert roofline.predict(CopyDesc(CopyKind.D2H_PINNED, size)).duration_ns == pinned
    assert 2 * size / (d2d * 1e-9) <= spec.hbm_bytes_per_s  # read + write at HBM speed
    assert d2d < pinned / 10
    assert size / (peer * 1e-9) <= spec.nvlink_bytes_per_s and peer < pinned
    l4 = RooflinePredictor(get_spec("l4"))  # no NVLink: peer copies cross PCIe
    assert l4.predict(CopyDesc(CopyKind.PEER, size)).duration_ns >= size / get_spec("l4").pcie_bytes_per_s * 1e9


def test_kernels_never_faster_than_hbm_and_floor() -> None:
    spec = get_spec("a100-80g")
    roofline = RooflinePredictor(spec)
    tiny = KernelDesc("k", grid=(1, 1, 1), block=(32, 1, 1), bytes=128)
    assert roofline.predict(tiny).duration_ns >= spec.kernel_floor_ns
    big = KernelDesc("k", grid=(4096, 1, 1), block=(256, 1, 1), bytes=1 << 31)
    assert roofline.predict(big).duration_ns * 1e-9 >= (1 << 31) / spec.hbm_bytes_per_s
    no_bytes = KernelDesc("k", grid=(1 << 20, 1, 1), block=(1024, 1, 1))
    assert roofline.predict(no_bytes).duration_ns > roofline.predict(tiny).duration_ns
    assert roofline.predict(MemsetDesc(1 << 30)).duration_ns * 1e-9 >= (1 << 30) / spec.hbm_bytes_per_s
    assert roofline.predict(MarkerDesc(OpKind.EVENT_RECORD)).duration_ns == 0


def test_attention_and_conv_by_flops() -> None:
    roofline = RooflinePredictor(get_spec("h100"))
    full = AttentionDesc(4, 32, 8, 4096, 4096, 128, DType.BF16)
    causal = AttentionDesc(4, 32, 8, 4096, 4096, 128, DType.BF16, flags=0x4)
    assert full.flop_count() == 4 * 4 * 32 * 4096 * 4096 * 128 == 2 * causal.flop_count()
    assert roofline.predict(causal).duration_ns < roofline.predict(full).duration_ns
    conv = ConvDesc(32, 256, 56, 56, 256, 3, 3, dtype=DType.F16)
    assert conv.flop_count() == 2 * 32 * 56 * 56 * 256 * 256 * 9
    ns = roofline.predict(conv).duration_ns
    assert conv.flop_count() / (ns * 1e-9) < get_spec("h100").peak_fp16_flops


def test_collectives_ring_model() -> None:
    roofline = RooflinePredictor(get_spec("h100"))
    size = 256 << 20
    two = roofline.predict(CollectiveDesc("ncclAllReduce", 2, size // 2, DType.BF16)).duration_ns
    eight = roofline.predict(CollectiveDesc("all_reduce", 8, size // 2, DType.BF16)).duration_ns
    assert eight > two  # 2(p-1)/p grows with p
    gather = roofline.predict(CollectiveDesc("ncclAllGather", 8, size // 2, DType.BF16)).duration_ns
    assert gather > eight / 2
    # 8 ranks on NVSwitch run NVLS (each byte into and out of a GPU once): no faster than bytes / NVLink
    assert eight * 1e-9 >= size / get_spec("h100").nvlink_bytes_per_s


def test_registry_and_determinism() -> None:
    spec = get_spec("h200")
    first = get_predictor("roofline", spec)
    second = get_predictor("roofline", spec)
    desc = fp16_gemm(1000, 3000, 700)
    assert first.predict(desc) == second.predict(desc)
    assert first.predict(desc).model == "roofline"
    with pytest.raises(ValueError, match="known"):
        get_predictor("magic", spec)
