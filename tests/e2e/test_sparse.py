"""torch.sparse under `emulate`: CSR and COO products reach cuSPARSE's generic API (SpMM, SpMV,
coo2csr), each one op whose flops and bytes follow from the matrices' shapes and non-zeros."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from timewarp_testing import requires_cuda_torch

from predictors.catalog import get_spec

pytestmark = requires_cuda_torch

WORKLOADS = Path(__file__).resolve().parent / "workloads"
M, K, N, NNZ = 4096, 4096, 256, 167_772
FP32, I32, I64 = 4, 4, 8


def test_csr_and_coo_products_run_through_cusparse(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(WORKLOADS / "sparse_ops.py")])
    assert run.exit_status == 0, run.stdout + run.stderr[-4000:]
    assert f"RESULT nnz={NNZ} spmm_shape={M}x{N} spmv_shape={M} coo_shape={M}x{N}" in run.stdout
    assert run.summary["unimplemented"] == []
    rows = [r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if r["name"].startswith("cusparse")]
    assert [r["name"] for r in rows] == ["cusparseSpMM", "cusparseSpMV", "cusparseXcoo2csr", "cusparseSpMM"]
    dense_b, dense_c = K * N * FP32, M * N * FP32
    # torch's CSR keeps int64 indices; its COO path converts to a CSR with int32 ones
    csr64 = NNZ * (FP32 + I64) + (M + 1) * I64
    csr32 = NNZ * (FP32 + I32) + (M + 1) * I32
    expected = [(csr64 + dense_b + dense_c, 2 * NNZ * N), (csr64 + K * FP32 + M * FP32, 2 * NNZ),
                (NNZ * I32 + (M + 1) * I32, 0), (csr32 + dense_b + dense_c, 2 * NNZ * N)]
    spec = get_spec("h100")
    for row, (nbytes, flops) in zip(rows, expected, strict=True):
        assert (int(row["bytes"]), int(row["flops"])) == (nbytes, flops), row
        assert (int(row["m"]), int(row["k"])) == (M, K if row["name"] != "cusparseXcoo2csr" else 0)
        # memory bound at 1% density: no faster than HBM, and not slower than a quarter of it
        # (cuSPARSE's SpMM/SpMV stream at 30-70% of bandwidth) plus the launch floor
        bound_us = nbytes / spec.hbm_bytes_per_s * 1e6
        assert bound_us <= float(row["duration_us"]) <= 4 * bound_us + spec.kernel_floor_ns / 1e3, row


def test_semi_structured_sparsity_runs_through_cusparselt(emulate) -> None:  # noqa: ANN001
    run = emulate([sys.executable, str(WORKLOADS / "semi_structured.py")])
    assert run.exit_status == 0, run.stdout + run.stderr[-4000:]
    assert "RESULT kind=SparseSemiStructuredTensorCUSPARSELT out_shape=4096x2048" in run.stdout
    assert run.summary["unimplemented"] == []
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(run.kernels_csv())) if r["name"].startswith("cusparseLt")}
    m, k, n, fp16 = 4096, 4096, 2048, 2
    # compressed 2:4 weight: the kept half of the values and 2 bits of position per kept value
    compressed = m * k // 2 * fp16 + m * k // 8
    compress = rows["cusparseLtSpMMACompress2"]
    assert int(compress["bytes"]) == m * k * fp16 + compressed
    matmul = rows["cusparseLtMatmul"]
    # sparse tensor cores skip the pruned half: the work of a dense (m, n, k/2) GEMM
    assert (int(matmul["m"]), int(matmul["n"]), int(matmul["k"])) == (m, n, k // 2)
    flops = 2 * m * n * (k // 2)
    assert int(matmul["flops"]) == flops
    assert int(matmul["bytes"]) == compressed + k * n * fp16 + 2 * m * n * fp16
    spec = get_spec("h100")
    # no faster than the dense fp16 tensor-core peak allows for that work, and at least a third
    # of it (tensor-core GEMMs of this size reach 50-85% of peak)
    bound_us = flops / spec.peak_fp16_flops * 1e6
    assert bound_us <= float(matmul["duration_us"]) <= 3 * bound_us, matmul
