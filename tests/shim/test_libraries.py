"""Library adapters (cuBLAS, cuBLASLt, cuDNN backend, cuFFT): each call leaves the GPU-op
record a predictor needs. The calls are made through ctypes by tests/shim/lib_driver.py
under LD_PRELOAD; torch conv2d / SDPA under `emulate` are the end-to-end check."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from timewarp_testing import requires_cuda_torch

from shim.abi import constant, ffi

DRIVER = Path(__file__).resolve().parent / "lib_driver.py"


@dataclass
class Op:
    op_kind: int
    name: str
    dims: list[int]
    flags: int
    bytes: int
    flops: int


def read_ops(run_dir: Path) -> list[Op]:
    """GPU-op records of every process in the run, with their names resolved."""
    f = ffi()
    header_bytes = constant("TW_TRACE_HEADER_BYTES")
    record_bytes = f.sizeof("tw_record")
    ops: list[Op] = []
    for trace in sorted((run_dir / "proc").glob("*.trace")):
        data = trace.read_bytes()
        names: dict[int, str] = {}
        for line in trace.with_suffix(".names").read_text().splitlines():
            key, _, name = line.partition("\t")
            names[int(key)] = name
        header = f.from_buffer("tw_trace_header *", data)
        for i in range(header.record_count):
            off = header_bytes + i * record_bytes
            rec = f.from_buffer("tw_record *", data[off:off + record_bytes])
            if rec.kind == constant("TW_REC_GPU_OP"):
                ops.append(Op(rec.op_kind, names.get(rec.name_id, ""), list(rec.dims), rec.flags,
                              rec.bytes, rec.flops))
    return ops


def run_driver(shim_lib: Path, tmp_path: Path, scenario: str) -> tuple[dict[str, str], list[Op]]:
    run_dir = tmp_path / scenario
    (run_dir / "proc").mkdir(parents=True)
    env = dict(os.environ, LD_PRELOAD=str(shim_lib), TIMEWARP_RUN_DIR=str(run_dir))
    proc = subprocess.run([sys.executable, str(DRIVER), scenario], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return values, read_ops(run_dir)


def test_cublas_gemm_ex_records_gemm(shim_lib: Path, tmp_path: Path) -> None:
    values, ops = run_driver(shim_lib, tmp_path, "gemm_ex")
    assert values["gemm"] == "0"
    gemms = [op for op in ops if op.op_kind == constant("TW_OP_GEMM")]
    assert len(gemms) == 1
    op = gemms[0]
    assert op.name == "cublasGemmEx"
    assert op.dims == [64, 32, 128, 1]
    assert op.flags & constant("TW_FLAG_TRANS_A") and not op.flags & constant("TW_FLAG_TRANS_B")
    assert op.flops == 2 * 64 * 32 * 128
    assert op.bytes == (64 * 128 + 128 * 32 + 64 * 32) * 2


def test_cublaslt_heuristic_and_matmul(shim_lib: Path, tmp_path: Path) -> None:
    values, ops = run_driver(shim_lib, tmp_path, "lt_matmul")
    assert values["get_epilogue"] == "4"
    assert values["heuristic"] == "0" and values["heuristic_count"] == "1"
    assert values["heuristic_state"] == "0"
    assert int(values["heuristic_workspace"]) <= 1 << 20
    assert float(values["heuristic_waves"]) > 0
    assert values["matmul"] == "0"
    (op,) = [op for op in ops if op.op_kind == constant("TW_OP_GEMM")]
    assert op.name == "cublasLtMatmul"
    assert op.dims == [96, 48, 256, 3]
    assert op.flags & constant("TW_FLAG_BIAS_EPILOGUE")
    assert op.flags & constant("TW_FLAG_TRANS_A")
    assert op.flops == 2 * 96 * 48 * 256 * 3


def test_cudnn_backend_conv_graph(shim_lib: Path, tmp_path: Path) -> None:
    values, ops = run_driver(shim_lib, tmp_path, "conv_fwd")
    assert values["engine_global_count"] == "1"
    assert values["heuristic_count"] == "1"
    assert values["engine_index"] == "0"
    assert values["plan_workspace"] == "0"
    assert "cudnn:conv_fprop" in values["plan_json"]
    assert values["execute"] == "0"
    (op,) = [op for op in ops if op.op_kind == constant("TW_OP_CONV")]
    assert op.name == "cudnn:conv_fprop"
    assert op.dims == [8, 64, 56, 56]  # n, c, h, w (k, r, s, groups follow in the descriptor)
    assert op.flops == 2 * 8 * 128 * 56 * 56 * 64 * 3 * 3
    assert op.bytes == (8 * 64 * 56 * 56 + 128 * 64 * 9 + 8 * 128 * 56 * 56) * 2


def test_cufft_xt_plan_exec(shim_lib: Path, tmp_path: Path) -> None:
    values, ops = run_driver(shim_lib, tmp_path, "fft")
    assert values["make"] == "0" and values["exec"] == "0"
    assert int(values["workspace"]) > 0
    (op,) = [op for op in ops if op.op_kind == constant("TW_OP_FFT")]
    assert op.name == "cufftXtExec"
    assert op.dims == [64, 128, 1, 5]
    assert op.flags & constant("TW_FLAG_BACKWARD") == 0


TORCH_CONV = """
import torch
x = torch.randn(4, 16, 32, 32, device="cuda", dtype=torch.float16)
conv = torch.nn.Conv2d(16, 32, 3, padding=1).cuda().half()
y = conv(x)
torch.cuda.synchronize()
print("shape", tuple(y.shape))
"""

TORCH_SDPA = """
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
q = torch.randn(2, 8, 256, 64, device="cuda", dtype=torch.bfloat16)
with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
    o = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
torch.cuda.synchronize()
print("shape", tuple(o.shape))
"""


@requires_cuda_torch
def test_torch_conv2d_under_emulate(emulate) -> None:  # noqa: ANN001 - fixture runner
    run = emulate([sys.executable, "-c", TORCH_CONV])
    assert run.exit_status == 0, run.stderr[-4000:]
    assert "shape (4, 32, 32, 32)" in run.stdout
    convs = [op for op in read_ops(run.run_dir) if op.op_kind == constant("TW_OP_CONV")]
    assert convs and convs[0].name == "cudnn:conv_fprop"
    assert convs[0].dims == [4, 16, 32, 32]


@requires_cuda_torch
def test_torch_sdpa_under_emulate(emulate) -> None:  # noqa: ANN001 - fixture runner
    run = emulate([sys.executable, "-c", TORCH_SDPA])
    assert run.exit_status == 0, run.stderr[-4000:]
    assert "shape (2, 8, 256, 64)" in run.stdout
    attn = [op for op in read_ops(run.run_dir) if op.op_kind == constant("TW_OP_ATTENTION")]
    assert attn and attn[0].name == "cudnn:sdpa_fwd"
    assert attn[0].dims == [2, 8, 8, 256]  # batch, heads_q, heads_kv, seq_q
    assert attn[0].flags & constant("TW_FLAG_CAUSAL")

