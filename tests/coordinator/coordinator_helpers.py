"""Helpers of the coordinator tests: is the predictors package usable, descriptor builders."""

from __future__ import annotations

import importlib

import pytest

from shim import abi


def predictors_problem() -> str | None:
    """Why the real predictors package cannot serve the coordinator, or None when it can."""
    try:
        predictors = importlib.import_module("predictors")
        catalog = importlib.import_module("predictors.catalog")
        descriptors = importlib.import_module("predictors.descriptors")
    except Exception as exc:
        return f"predictors package not importable: {exc!r}"
    for owner, name in ((predictors, "get_predictor"), (catalog, "get_spec"), (descriptors, "from_wire")):
        if not hasattr(owner, name):
            return f"{owner.__name__}.{name} missing"
    try:
        predictors.get_predictor("roofline", catalog.get_spec("h100"))
    except Exception as exc:
        return f"predictors.get_predictor('roofline', get_spec('h100')) failed: {exc!r}"
    return None


requires_predictors = pytest.mark.skipif(predictors_problem() is not None,
                                         reason=str(predictors_problem()))


def tw_desc(**fields: object) -> bytes:
    """A tw_desc built through the cffi definition of records.h."""
    ffi = abi.ffi()
    desc = ffi.new("tw_desc *")
    for name, value in fields.items():
        if isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                getattr(desc, name)[i] = item
        else:
            setattr(desc, name, value)
    return bytes(ffi.buffer(desc))


def mixed_batch() -> tuple[list[bytes], list[str]]:
    """Kernels, GEMMs, copies and memsets of several sizes, as a shim would batch them."""
    c = abi.constant
    descs: list[bytes] = []
    names: list[str] = []
    for i in range(4):
        descs.append(tw_desc(kind=c("TW_OP_KERNEL"), grid=[64 << i, 1, 1], block=[256, 1, 1],
                             param_bytes=48, pointer_params=3, bytes=(1 << 20) << i, name_id=7 + i))
        names.append("_ZN2at6native29vectorized_elementwise_kernelILi4ENS0_11FillFunctorIfEEEEvifT0_")
        m = 512 << i
        descs.append(tw_desc(kind=c("TW_OP_GEMM"), dtype_a=c("TW_DT_BF16"), dtype_b=c("TW_DT_BF16"),
                             dtype_out=c("TW_DT_BF16"), dtype_compute=c("TW_DT_F32"),
                             flags=c("TW_FLAG_TRANS_B"), dims=[m, 4096, 4096, 1, m, 4096, m],
                             flops=2 * m * 4096 * 4096, name_id=20 + i))
        names.append("cublasLtMatmul")
        descs.append(tw_desc(kind=c("TW_OP_MEMCPY"), dims=[c("TW_COPY_H2D_PINNED")], bytes=4096 << (3 * i),
                             name_id=30 + i))
        names.append("cudaMemcpyAsync")
        descs.append(tw_desc(kind=c("TW_OP_MEMSET"), bytes=65536 << i, name_id=40 + i))
        names.append("cudaMemsetAsync")
    return descs, names
