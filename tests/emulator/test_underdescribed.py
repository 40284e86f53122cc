"""summary.json `underdescribed`: kernels reaching more than 1 MB through their arguments whose
prediction did not see their bytes, and launches a family decoder recognised but could not read,
are named, never silently predicted blind."""

from __future__ import annotations

import pandas as pd

from emulator.outputs.summary import UNDERDESCRIBED_BYTES, underdescribed_kernels
from shim import abi

FLOOR_NS = 1500


def op(name: str, reach: int, described: str, duration_ns: int, kind: str = "kernel", model: str = "roofline",
       rejected_by: int = 0) -> dict:
    return {"name": name, "kind": kind, "m": reach, "n": abi.constant(f"TW_DESCRIBED_{described}"),
            "k": rejected_by, "model": model, "begin_ns": 1000, "end_ns": 1000 + duration_ns}


def test_blind_and_floor_predicted_large_kernels_are_named() -> None:
    mb = UNDERDESCRIBED_BYTES
    ops = pd.DataFrame([
        op("no_layout", 64 * mb, "NONE", 5000),
        op("capped_per_thread", 8 * mb, "THREADS", 4000),
        op("counted_but_at_floor", 4 * mb, "COUNT", FLOOR_NS),
        op("floor_model", 2 * mb, "COUNT", 9000, model="floor"),
        op("decoded", 300 * mb, "FAMILY", 100_000),                  # described: fine
        op("counted", 300 * mb, "COUNT", 100_000),                   # estimated from its count: fine
        op("small_blind", mb // 2, "NONE", FLOOR_NS),                # under 1 MB: not reported
        op("cublasGemmEx", 400 * mb, "NONE", FLOOR_NS, kind="gemm"),  # library calls: not kernels
    ])
    found = underdescribed_kernels(ops, FLOOR_NS)
    assert [u["name"] for u in found] == ["no_layout", "capped_per_thread", "counted_but_at_floor", "floor_model"]
    assert found[0]["reach_bytes"] == 64 * mb and found[0]["described"] == abi.constant("TW_DESCRIBED_NONE")


def test_empty_when_every_large_kernel_is_described() -> None:
    ops = pd.DataFrame([op("decoded", 300 * UNDERDESCRIBED_BYTES, "FAMILY", 100_000)])
    assert underdescribed_kernels(ops, FLOOR_NS) == []


def test_launches_a_family_decoder_rejected_are_named_whatever_they_reach() -> None:
    """A multi-tensor launch whose metadata did not validate keeps the generic estimate (here
    capped by an element count, and under 1 MB): still reported, first, with how many launches."""
    ops = pd.DataFrame([
        op("counted", 300 * UNDERDESCRIBED_BYTES, "COUNT", 100_000),
        op("multi_tensor_apply_kernel<...>", 4096, "COUNT", 9000, rejected_by=16),
        op("multi_tensor_apply_kernel<...>", 2 * UNDERDESCRIBED_BYTES, "FAMILY", 9000),
        op("no_layout", 64 * UNDERDESCRIBED_BYTES, "NONE", 5000),
    ])
    found = underdescribed_kernels(ops, FLOOR_NS)
    assert [(u["name"], u["count"], u["rejected"]) for u in found] == [("multi_tensor_apply_kernel<...>", 1, 1),
                                                                     ("no_layout", 1, 0)]
