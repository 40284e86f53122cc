"""The pure part of scripts/collect_gpu_traces.py: torch.profiler chrome trace -> trace rows."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from predictors.catalog import get_spec
from predictors.descriptors import AttentionDesc, CopyDesc, CopyKind, DType, GemmDesc, KernelDesc
from predictors.table import TablePredictor
from predictors.traces import desc_from_row

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "collect_gpu_traces.py"


def load_script():  # noqa: ANN201 - a module
    spec = importlib.util.spec_from_file_location("collect_gpu_traces", SCRIPT)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["collect_gpu_traces"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def synthetic_trace() -> dict[str, object]:
    """What torch.profiler's export_chrome_trace writes, reduced to the fields the script reads."""
    return {"traceEvents": [
        {"ph": "X", "cat": "cpu_op", "name": "aten::addmm", "ts": 10.0, "dur": 30.0,
         "args": {"External id": 7, "Input Dims": [[3072], [512, 1024], [1024, 3072], [], []],
                  "Input type": ["c10::BFloat16", "c10::BFloat16", "c10::BFloat16", "Scalar", "Scalar"]}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::add", "ts": 50.0, "dur": 5.0,
         "args": {"External id": 8, "Input Dims": [[512, 3072], [512, 3072], []]}},
        {"ph": "X", "cat": "cpu_op", "name": "aten::_scaled_dot_product_cudnn_attention", "ts": 60.0, "dur": 5.0,
         "args": {"External id": 9, "Input Dims": [[2, 16, 1024, 128], [2, 4, 1024, 128], [2, 4, 1024, 128]],
                  "Input type": ["c10::BFloat16"] * 3, "Concrete Inputs": ["", "", "", "", "", "True"]}},
        {"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm_bf16bf16_bf16f32", "ts": 20.0, "dur": 12.5,
         "args": {"External id": 7, "grid": [24, 4, 1], "block": [384, 1, 1], "shared memory": 200000,
                  "stream": 7}},
        {"ph": "X", "cat": "kernel", "name": "splitKreduce_kernel", "ts": 33.0, "dur": 1.5,
         "args": {"External id": 7, "grid": [96, 1, 1], "block": [256, 1, 1], "stream": 7}},
        {"ph": "X", "cat": "kernel", "ts": 55.0, "dur": 4.25,
         "name": "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<c10::BFloat16>, "
                 "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<c10::BFloat16>, "
                 "at::detail::Array<char*, 3>)",
         "args": {"External id": 8, "grid": [1536, 1, 1], "block": [128, 1, 1], "shared memory": 0, "stream": 7}},
        {"ph": "X", "cat": "kernel", "name": "cudnn_generated_fort_native_sdpa_sm90", "ts": 62.0, "dur": 40.0,
         "args": {"External id": 9, "grid": [8, 32, 2], "block": [384, 1, 1], "stream": 7}},
        {"ph": "X", "cat": "gpu_memcpy", "name": "Memcpy HtoD (Pinned -> Device)", "ts": 1.0, "dur": 8.0,
         "args": {"bytes": 1048576, "stream": 7}},
        {"ph": "X", "cat": "gpu_memset", "name": "Memset (Device)", "ts": 110.0, "dur": 1.0,
         "args": {"bytes": 4096, "stream": 7}},
        {"ph": "i", "cat": "cpu_instant_event", "name": "noise"},
    ]}


def test_rows_from_chrome_trace() -> None:
    module = load_script()
    rows = module.rows_from_chrome_trace(synthetic_trace(), "h100", "unit")
    kinds = [r["kind"] for r in rows]
    assert kinds == ["memcpy", "gemm", "kernel", "attention", "memset"]  # issue order, GEMM kernels folded
    memcpy, gemm, kernel, attention, memset = (desc_from_row(r) for r in rows)
    assert memcpy == CopyDesc(CopyKind.H2D_PINNED, 1048576)
    assert rows[0]["duration_ns"] == 8000
    assert isinstance(gemm, GemmDesc)
    assert (gemm.m, gemm.n, gemm.k, gemm.batch) == (3072, 512, 1024, 1)  # cuBLAS column-major view
    assert gemm.dtype_a == DType.BF16
    assert rows[1]["duration_ns"] == 14000  # gemm + split-K reduce
    assert rows[1]["kernels"] == ["sm90_xmma_gemm_bf16bf16_bf16f32", "splitKreduce_kernel"]
    assert isinstance(kernel, KernelDesc) and kernel.grid == (1536, 1, 1) and kernel.block == (128, 1, 1)
    assert rows[2]["duration_ns"] == 4250 and rows[2]["stream"] == 7
    assert isinstance(attention, AttentionDesc)
    assert (attention.batch, attention.heads_q, attention.heads_kv, attention.seq_q, attention.head_dim) == \
        (2, 16, 4, 1024, 128)
    assert attention.causal and not attention.backward
    assert rows[4]["bytes"] == 4096
    # the rows feed the table directly
    table = TablePredictor(get_spec("h100"), rows)
    assert table.predict(gemm).duration_ns == 14000 and table.predict(kernel).model == "table"


def test_gemm_dims_batched_and_memcpy_kinds() -> None:
    module = load_script()
    assert module.gemm_dims("aten::bmm", [[8, 64, 32], [8, 32, 16]]) == (16, 64, 32, 8)
    assert module.gemm_dims("aten::mm", [[5, 7]]) is None
    assert module.memcpy_kind("Memcpy DtoH (Device -> Pageable)") == CopyKind.D2H_PAGEABLE
    assert module.memcpy_kind("Memcpy DtoD (Device -> Device)") == CopyKind.D2D
    assert module.memcpy_kind("Memcpy PtoP (Device -> Device)") == CopyKind.PEER
