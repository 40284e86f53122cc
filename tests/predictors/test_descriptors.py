"""Descriptors mirror records.h and round-trip through the shim's tw_desc struct."""

from __future__ import annotations

import pytest

from predictors import descriptors as d
from shim import abi


def test_enums_equal_records_h() -> None:
    for kind in d.OpKind:
        assert abi.constant(f"TW_OP_{kind.name}") == kind.value
    for copy in d.CopyKind:
        assert abi.constant(f"TW_COPY_{copy.name}") == copy.value
    for dtype in d.DType:
        assert abi.constant(f"TW_DT_{dtype.name}") == dtype.value
    for model in d.Model:
        assert abi.constant(f"TW_MODEL_{model.name}") == model.value
    for name in ("TRANS_A", "TRANS_B", "CAUSAL", "BACKWARD_DATA", "BACKWARD_FILTER", "BIAS_EPILOGUE",
                 "GELU_EPILOGUE", "COOPERATIVE", "BACKWARD", "PAGED_KV"):
        assert abi.constant(f"TW_FLAG_{name}") == getattr(d, f"FLAG_{name}")
    for described in d.Described:
        assert abi.constant(f"TW_DESCRIBED_{described.name}") == described.value


def test_wire_fields_are_tw_desc_fields() -> None:
    ffi = abi.ffi()
    assert tuple(name for name, _ in ffi.typeof("tw_desc").fields) == d.WIRE_FIELDS


def _as_dict(cdata: object) -> dict[str, object]:
    ffi = abi.ffi()
    out: dict[str, object] = {}
    for name, field in ffi.typeof("tw_desc").fields:
        value = getattr(cdata, name)
        out[name] = list(value) if field.type.kind == "array" else int(value)
    return out


def test_from_wire_round_trip_through_ffi() -> None:
    ffi = abi.ffi()
    raw = ffi.new("tw_desc *")
    raw.kind = abi.constant("TW_OP_GEMM")
    raw.dtype_a = raw.dtype_b = raw.dtype_out = abi.constant("TW_DT_BF16")
    raw.dtype_compute = abi.constant("TW_DT_F32")
    raw.flags = abi.constant("TW_FLAG_TRANS_A")
    for i, value in enumerate((4096, 1024, 512, 8, 4096, 512, 4096)):
        raw.dims[i] = value
    desc = d.from_wire(_as_dict(raw), "cublasGemmStridedBatchedEx")
    assert isinstance(desc, d.GemmDesc)
    assert (desc.m, desc.n, desc.k, desc.batch) == (4096, 1024, 512, 8)
    assert desc.dtype_a == d.DType.BF16 and desc.flags == d.FLAG_TRANS_A
    wire, name = d.to_wire(desc)
    back = ffi.new("tw_desc *")
    for key, value in wire.items():
        if isinstance(value, list):
            for i, item in enumerate(value):
                getattr(back, key)[i] = item
        else:
            setattr(back, key, value)
    assert bytes(ffi.buffer(back)) == bytes(ffi.buffer(raw))
    assert name == "cublasGemmStridedBatchedEx"


@pytest.mark.parametrize("desc", [
    d.KernelDesc("_Z6kernelPf", grid=(80, 2, 1), block=(256, 1, 1), smem_bytes=1024, param_bytes=16,
                 pointer_params=2, bytes=1 << 20),
    d.KernelDesc("_Z7softmaxPfPKfiii", grid=(20480, 1, 1), block=(32, 4, 1), bytes=671088640,
                 reach_bytes=671088640, described=d.Described.FAMILY),
    d.CopyDesc(d.CopyKind.H2D_PINNED, 4096),
    d.MemsetDesc(1 << 20),
    d.ConvDesc(8, 64, 56, 56, 128, 3, 3, 1, dtype=d.DType.F16),
    d.AttentionDesc(2, 16, 4, 1024, 1024, 128, dtype=d.DType.BF16, flags=d.FLAG_CAUSAL),
    d.AttentionDesc(3, 28, 4, 2000, 2000, 128, dtype=d.DType.BF16, flags=d.FLAG_CAUSAL | d.FLAG_PAGED_KV,
                    flops=35871582208, bytes=50098352, total_q=3037, total_kv=3037),
    d.FftDesc(1024, 1, 1, 64, 1),
    d.SolverDesc("cusolverDnSpotrf", 512, 512),
    d.CollectiveDesc("ncclAllReduce", 8, 1 << 20, d.DType.BF16, bytes=2 << 20),
    d.LibraryDesc("cusparseSpMV", bytes=1 << 16, dims=(1, 2, 3, 0, 0, 0, 0, 0)),
    d.MarkerDesc(d.OpKind.EVENT_RECORD, "event_record"),
])
def test_every_kind_round_trips(desc: d.Descriptor) -> None:
    wire, name = d.to_wire(desc)
    assert d.from_wire(wire, name) == desc


def test_unknown_copy_kind_is_not_silent(caplog: pytest.LogCaptureFixture) -> None:
    wire, _ = d.to_wire(d.CopyDesc(d.CopyKind.D2D, 10))
    wire["dims"] = [99] + [0] * 7
    assert d.from_wire(wire, "memcpy").copy_kind == d.CopyKind.D2D  # type: ignore[union-attr]
    assert "unknown copy kind" in caplog.text


def test_demangle() -> None:
    assert d.demangle("_Z6kernelPf").startswith("kernel(")
    assert d.demangle("plain_name") == "plain_name"
