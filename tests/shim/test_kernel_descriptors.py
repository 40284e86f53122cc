"""Kernel-family descriptors (shim/src/kernel_shapes.c) on synthetic launches.

kernel_shapes.c is compiled alone into a harness (tests/shim/cuda/kernel_shapes_harness.c) that
builds one launch from a script (parameters at the offsets the decoder documents, simulated
host-backed device buffers holding sequence lengths) and prints the descriptor. Expected
FLOPs and bytes are computed here independently: attention work by counting the (query, key)
pairs each mask keeps, one query row at a time. The real binaries (torch's and vLLM's) are
exercised under emulate in tests/e2e/test_real_kernel_shapes.py (and every multi-tensor kernel of
libtorch_cuda is checked against its cubin here).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from test_fatbin import HARNESS as FATBIN_HARNESS
from test_fatbin import parse as parse_fatbin
from test_fatbin import torch_fatbin_offsets

from shim import abi

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "cuda" / "kernel_shapes_harness.c"
TORCH_CUDA = Path(importlib.util.find_spec("torch").origin).parent / "lib" / "libtorch_cuda.so"  # type: ignore[union-attr, arg-type]

# Names as the shipped binaries spell them (vLLM 0.32 vllm_flash_attn, torch 2.13 libtorch_cuda).
MULTI_TENSOR_2 = ("_ZN2at6native50_GLOBAL__N__637ba612_17_ForeachUnaryOp_cu_77fe623d25multi_tensor_apply_kernelINS1_18Tensor"
                  "ListMetadataILi2EEENS1_14UnaryOpFunctorIfLi2ELi1ELi1EEEJNS0_4SqrtIfEEEEEvT_T0_DpT1_")
VLLM_RMS_NORM = "_ZN4vllm15rms_norm_kernelIN3c108BFloat16ELi8ELi2ELb1EEEvPT_PKS3_lllllS6_lfii"
VLLM_ROTARY = "_ZN4vllm23rotary_embedding_kernelIN3c108BFloat16ES2_Lb1EEEvPKlPT_S6_PKT0_illliiilb"
FA3_CAUSAL = (
    "_ZN7cutlass13device_kernelIN5flash20enable_sm90_or_laterINS1_16FlashAttnFwdSm90INS1_25CollectiveMainloopFwdSm90"
    "ILi2EN4cute5tupleIJNS5_1CILi1EEES8_S8_EEENS6_IJNS7_ILi128EEESA_SA_EEELi128ENS_10bfloat16_tEfNS_4arch4Sm90ELb1ELb0"
    "ELb0ELb1ELb0ELb0ELb0ELb0ELb1ELb1ELb1ELb0ELb0ESC_Li1EEENS1_21CollectiveEpilogueFwdISB_S9_SC_SE_Li256ELb1ELb1ELb0ELb0"
    "ELi1EEENS1_36VarlenDynamicPersistentTileSchedulerILi128ELi128ELi256ELi128ELb0ELb1ELb1ELb1ELb0ELb1EEEEEEEEEvNT_6ParamsE")
FA2_FWD = ("_ZN5flash16flash_fwd_kernelI23Flash_fwd_kernel_traitsILi128ELi128ELi64ELi4ELb0ELb0EN7cutlass10bfloat16_tE19"
           "Flash_kernel_traitsILi128ELi128ELi64ELi4ES3_EELb0ELb1ELb0ELb0ELb0ELb1ELb0ELb0EEEvNS_16Flash_fwd_paramsE")
FA2_BWD = ("_ZN13pytorch_flash44flash_bwd_dq_dk_dv_loop_seqk_parallel_kernelI23Flash_bwd_kernel_traitsILi64ELi128ELi128ELi8"
           "ELi4ELi4ELi4ELb0ELb0EN7cutlass10bfloat16_tE19Flash_kernel_traitsILi64ELi128ELi128ELi8ES3_EELb0ELb1ELb0ELb0ELb1"
           "ELb1ELb0ELb0EEEvNS_16Flash_bwd_paramsE")
FA2_CONVERT_DQ = ("_ZN13pytorch_flash27flash_bwd_convert_dq_kernelI23Flash_bwd_kernel_traitsILi64ELi128ELi128ELi8ELi4"
                  "ELi4ELi4ELb0ELb0EN7cutlass10bfloat16_tE19Flash_kernel_traitsILi64ELi128ELi128ELi8ES3_EEEEvNS_16Flash"
                  "_bwd_paramsEi")   # (Flash_bwd_params, int nsplits)
MEMEFF_BWD = ("_Z52fmha_cutlassB_bf16_aligned_64x64_k64_seqaligned_sm80N22PyTorchMemEffAttention23AttentionBackwardKernelI"
              "N7cutlass4arch4Sm80ENS1_10bfloat16_tELb1ELb0ELb1ELi64ELi64ELi64ELb1EE6ParamsE")
MEMEFF_FWD = ("_Z40fmha_cutlassF_bf16_aligned_64x64_rf_sm80N22PyTorchMemEffAttention15AttentionKernelIN7cutlass10bfloat16_tENS1_"
              "4arch4Sm80ELb1ELi64ELi64ELi64ELb1ELb1EE6ParamsE")
SOFTMAX_FWD = ("_ZN43_GLOBAL__N__f71e7945_10_SoftMax_cu_9f978f6320softmax_warp_forwardIfffLi10ELb0ELb0ELi32EEEvPT0_PKT_iiiPK"
               "bib")
LAYER_NORM_FWD = ("_ZN2at6native53_GLOBAL__N__4da244e1_20_layer_norm_kernel_cu_9c5ada8a28vectorized_layer_norm_kernelIN3c10"
                  "8BFloat16EfLb0EEEviT0_PKT_S8_S8_PS5_S9_PS6_")
VECTORIZED_ADD = ("_ZN2at6native29vectorized_elementwise_kernelILi8ENS0_15CUDAFunctor_addIN3c108BFloat16EEESt5arrayIPcLm3EE"
                  "EEviT0_T1_")


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("kernel_shapes") / "kernel_shapes_harness"
    subprocess.run([cc, "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                    f"-I{REPO / 'shim/src'}", f"-I{REPO / 'shim/include'}", "-o", str(out), str(HARNESS), "-ldl",
                    "-Wl,--no-as-needed", "-lstdc++"], check=True, capture_output=True, text=True)
    return out


def run(harness: Path, script: str) -> list[dict[str, str]]:
    proc = subprocess.run([str(harness)], input=script, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [dict(item.split("=", 1) for item in line.split()) for line in proc.stdout.splitlines()]


def pairs(lq: int, lk: int, causal: bool, left: int = -1, top_left: bool = False) -> int:
    """(query, key) pairs one sequence computes, row by row: masks aligned to the bottom right
    (FlashAttention), or causal from the top left (torch's CausalFromTopLeft)."""
    total = 0
    off = 0 if top_left else lk - lq
    for i in range(lq):
        hi = min(lk - 1, i + off) if causal else lk - 1
        lo = max(0, i + off - left) if left >= 0 else 0
        total += max(0, hi - lo + 1)
    return total


def attention_flops(heads: int, head_dim: int, seqs: list[tuple[int, int]], causal: bool, **mask: object) -> int:
    return 2 * heads * 2 * head_dim * sum(pairs(lq, lk, causal, **mask) for lq, lk in seqs)  # type: ignore[arg-type]


def cumulative(lengths: list[int]) -> list[int]:
    out = [0]
    for n in lengths:
        out.append(out[-1] + n)
    return out


def test_names_say_family_and_template_facts(harness: Path) -> None:
    fa3 = run(harness, f"name {FA3_CAUSAL}\nshape\n")[0]
    assert (fa3["causal"], fa3["local"], fa3["head_dim"], fa3["head_dim_v"]) == ("1", "0", "128", "128")
    assert int(fa3["dtype"]) == abi.constant("TW_DT_BF16")
    memeff = run(harness, f"name {MEMEFF_FWD}\nshape\n")[0]
    assert memeff["block_m"] == "64" and int(memeff["dtype"]) == abi.constant("TW_DT_BF16")
    softmax = run(harness, f"name {SOFTMAX_FWD}\nshape\n")[0]
    assert int(softmax["dtype"]) == abi.constant("TW_DT_F32")
    generic = run(harness, "name _Z6squarePfi\nshape\n")[0]
    assert generic["family"] == "0"


def fa3_script(hq: int, hk: int, d: int, total_q: int, b: int, cu_q: list[int] | None, seqused_k: list[int] | None,
               k_rows: int, pointers_at: int = 1904, paged: bool = False, cu_k: bool = True) -> str:
    """A FlashAttnFwdSm90::Params blob with the fields at the offsets kernel_shapes.c reads."""
    lines = [f"name {FA3_CAUSAL}", "grid 132 1 1", "block 384 1 1", "alloc 1 67108864", "alloc 2 67108864",
             "alloc 3 67108864"]
    if cu_q is not None:
        lines.append("alloc 4 4096 " + " ".join(map(str, cu_q)))
    if seqused_k is not None:
        lines.append("alloc 5 4096 " + " ".join(map(str, seqused_k)))
    lines.append("alloc 6 4096 1")
    p = 104  # ptr_K after the packed-GQA shape and strides
    lines += ["param 2688", "ptr 0 1", f"i32 8 {total_q}", f"i32 12 {d}", f"i32 16 {hq}", "i32 20 1",
              f"ptr {p} 2", f"i32 {p + 8} {k_rows}", f"i32 {p + 12} {d}", f"i32 {p + 16} {hk}", "i32 124 1",
              f"i32 {p + 108} {b}"]
    if paged:
        lines.append(f"ptr {p + 304} 6")
    x = pointers_at
    lines += [f"i32 {x - 20} -1", f"i32 {x - 16} 0", f"i32 {x - 12} 1", f"i32 {x + 64} 1", f"i32 {x + 68} 0"]
    if cu_q is not None:
        lines += [f"ptr {x} 4"] + ([f"ptr {x + 8} 4"] if cu_k else [])
    if seqused_k is not None:
        lines.append(f"ptr {x + 32} 5")
    return "\n".join(lines + ["describe"]) + "\n"


def test_fa3_varlen_prefill_counts_causal_pairs_per_sequence(harness: Path) -> None:
    lens = [1000, 2000, 37]
    out = run(harness, fa3_script(28, 4, 128, sum(lens), len(lens), cumulative(lens), None, sum(lens)))[0]
    assert out["ok"] == "1" and int(out["kind"]) == abi.constant("TW_OP_ATTENTION")
    assert int(out["flops"]) == attention_flops(28, 128, [(n, n) for n in lens], causal=True)
    assert int(out["flags"]) & abi.constant("TW_FLAG_CAUSAL")
    dims = [int(v) for v in out["dims"].split(",")]
    assert dims == [3, 28, 4, 2000, 2000, 128, sum(lens), sum(lens)]
    # q, k, v, o in bf16 and the fp32 log-sum-exp
    assert int(out["bytes"]) == 2 * (sum(lens) * 28 * 256 + sum(lens) * 4 * 256) + 4 * sum(lens) * 28


def test_fa3_prefill_grows_with_the_square_of_the_length(harness: Path) -> None:
    flops = []
    for n in (1024, 2048, 4096, 8192, 16384, 32768):
        out = run(harness, fa3_script(32, 8, 128, n, 1, [0, n], None, n))[0]
        flops.append(int(out["flops"]))
        assert int(out["flops"]) == 2 * 32 * 256 * n * (n + 1) // 2
    assert all(b / a > 3.99 for a, b in zip(flops, flops[1:], strict=False))


def test_fa3_paged_decode_reads_lengths_from_seqused_k(harness: Path) -> None:
    used = [100, 200, 300, 17, 50]
    out = run(harness, fa3_script(28, 4, 128, 5, 5, [0, 1, 2, 3, 4, 5], used, 16, paged=True, cu_k=False))[0]
    assert out["ok"] == "1"
    assert int(out["flops"]) == attention_flops(28, 128, [(1, n) for n in used], causal=True)
    assert int(out["flags"]) & abi.constant("TW_FLAG_PAGED_KV")
    # the KV cache is read for the sequences' lengths, not the page pool's size
    assert int(out["bytes"]) == 2 * (5 * 28 * 256 + sum(used) * 4 * 256) + 4 * 5 * 28


def test_fa3_pointer_block_found_when_it_moves(harness: Path) -> None:
    lens = [512, 64]
    out = run(harness, fa3_script(16, 16, 128, 576, 2, cumulative(lens), None, 576, pointers_at=1968))[0]
    assert out["ok"] == "1"
    assert int(out["flops"]) == attention_flops(16, 128, [(n, n) for n in lens], causal=True)


def test_fa3_paged_without_lengths_is_not_guessed(harness: Path) -> None:
    out = run(harness, fa3_script(28, 4, 128, 5, 5, [0, 1, 2, 3, 4, 5], None, 16, paged=True, cu_k=False))[0]
    assert out["ok"] == "0" and int(out["kind"]) == abi.constant("TW_OP_KERNEL")


def test_fa3_lengths_never_written_fall_back(harness: Path) -> None:
    """Offsets a GPU kernel would have computed read as zeros: no exact answer is made up."""
    out = run(harness, fa3_script(8, 8, 128, 300, 3, [0, 0, 0, 0], None, 300))[0]
    assert out["ok"] == "0"


def fa2_script(name: str, h: int, hk: int, d: int, b: int, sq: int, sk: int, causal: bool,
               cu_q: list[int] | None = None, seqused_k: list[int] | None = None, window_left: int = -1) -> str:
    lines = [f"name {name}", "grid 8 2 8", "block 128 1 1", "alloc 1 16777216"]
    if cu_q is not None:
        lines.append("alloc 4 4096 " + " ".join(map(str, cu_q)))
    if seqused_k is not None:
        lines.append("alloc 5 4096 " + " ".join(map(str, seqused_k)))
    lines += ["param 472", "ptr 0 1", "ptr 8 1", "ptr 16 1", f"i32 96 {h}", f"i32 100 {hk}", f"i32 176 {b}",
              f"i32 180 {sq}", f"i32 184 {sk}", f"i32 192 {d}", f"i32 212 {cu_q[-1] if cu_q else 0}",
              f"i32 388 {window_left}", f"i32 392 {0 if causal else -1}", "u8 440 1", f"u8 441 {int(causal)}",
              "u8 442 1", "i32 444 1"]
    if cu_q is not None:
        lines.append("ptr 224 4")
    if seqused_k is not None:
        lines.append("ptr 248 5")
    return "\n".join(lines + ["describe"]) + "\n"


def test_fa2_fixed_batch_and_varlen(harness: Path) -> None:
    out = run(harness, fa2_script(FA2_FWD, 8, 8, 64, 2, 512, 512, causal=True))[0]
    assert int(out["flops"]) == attention_flops(8, 64, [(512, 512)] * 2, causal=True)
    lens_q, lens_k = [7, 1, 300], [700, 33, 300]  # chunked prefill: fewer queries than keys
    out = run(harness, fa2_script(FA2_FWD, 32, 8, 128, 3, 300, 700, causal=True, cu_q=cumulative(lens_q),
                                  seqused_k=lens_k))[0]
    assert out["ok"] == "1"
    assert int(out["flops"]) == attention_flops(32, 128, list(zip(lens_q, lens_k, strict=True)), causal=True)


def test_fa2_sliding_window(harness: Path) -> None:
    out = run(harness, fa2_script(FA2_FWD, 8, 8, 64, 1, 1000, 1000, causal=True, window_left=127))[0]
    assert int(out["flops"]) == attention_flops(8, 64, [(1000, 1000)], causal=True, left=127)


def test_fa2_backward_is_two_and_a_half_forwards(harness: Path) -> None:
    out = run(harness, fa2_script(FA2_BWD, 8, 8, 64, 2, 512, 512, causal=True))[0]
    assert int(out["flags"]) & abi.constant("TW_FLAG_BACKWARD")
    assert int(out["flops"]) == attention_flops(8, 64, [(512, 512)] * 2, causal=True) * 5 // 2


@pytest.mark.parametrize("nsplits", [1, 3])
def test_fa2_dq_conversion_reads_each_split_accumulator(harness: Path, nsplits: int) -> None:
    """torch's flash_bwd_convert_dq_kernel takes the split count after the parameters: it adds up
    that many fp32 dQ accumulators and writes dQ in bf16."""
    script = fa2_script(FA2_CONVERT_DQ, 8, 8, 64, 2, 1024, 1024, causal=True).replace("describe\n", "")
    out = run(harness, script + f"param 4\ni32 0 {nsplits}\ndescribe\n")[0]
    assert out["ok"] == "1"
    assert int(out["bytes"]) == 8 * 2 * 1024 * 64 * (4 * nsplits + 2)


def memeff_script(grid: tuple[int, int, int], heads: int, batches: int, nq: int, nk: int, mask: int) -> str:
    return "\n".join([f"name {MEMEFF_FWD}", f"grid {grid[0]} {grid[1]} {grid[2]}", "block 32 4 1",
                      "alloc 1 16777216", "param 272", "ptr 0 1", "ptr 8 1", "ptr 16 1", "ptr 64 1",
                      "i32 96 64", "i32 100 64", f"i32 104 {nq}", f"i32 108 {nk}", f"u8 116 {mask}",
                      f"i32 192 {batches}", f"i32 196 {heads}", "describe"]) + "\n"


def test_memory_efficient_attention_checked_against_the_grid(harness: Path) -> None:
    out = run(harness, memeff_script((8, 8, 2), 8, 2, 512, 512, mask=1))[0]
    assert out["ok"] == "1"
    assert int(out["flops"]) == attention_flops(8, 64, [(512, 512)] * 2, causal=True, top_left=True)
    # fields that do not match the launch grid are not trusted
    assert run(harness, memeff_script((8, 8, 3), 8, 2, 512, 512, mask=1))[0]["ok"] == "0"


def test_memory_efficient_backward(harness: Path) -> None:
    """The backward's own layout: its lengths are not where the forward's are."""
    script = "\n".join([f"name {MEMEFF_BWD}", "grid 8 8 2", "block 128 1 1", "alloc 1 16777216", "param 464",
                        "ptr 0 1", "ptr 8 1", "ptr 16 1", "ptr 32 1", "ptr 40 1", "ptr 48 1", "ptr 56 1",
                        "i32 144 64", "i32 148 64", "i32 152 512", "i32 156 512", "i32 160 8", "u8 164 1",
                        "i32 376 2", "i32 380 16", "describe"]) + "\n"
    out = run(harness, script)[0]
    assert out["ok"] == "1"
    assert int(out["flops"]) == attention_flops(8, 64, [(512, 512)] * 2, causal=True, top_left=True) * 5 // 2


def test_softmax_over_a_large_tensor_reads_and_writes_it(harness: Path) -> None:
    """The issue's example: softmax over [4, 20, 1024, 1024] fp32 is 335 MB in and 335 MB out."""
    rows, cols = 4 * 20 * 1024, 1024
    script = "\n".join([f"name {SOFTMAX_FWD}", "grid 20480 1 1", "block 32 4 1", "alloc 1 335544320",
                        "alloc 2 335544320", "param 8", "ptr 0 1", "param 8", "ptr 0 2", "param 4", f"i32 0 {rows}",
                        "param 4", f"i32 0 {cols}", "param 4", f"i32 0 {cols}", "param 8", "param 4", "param 1",
                        "describe"]) + "\n"
    out = run(harness, script)[0]
    assert int(out["bytes"]) == 2 * rows * cols * 4
    assert out["dims"].split(",")[1] == str(abi.constant("TW_DESCRIBED_FAMILY"))


def test_layer_norm_rows_from_the_grid(harness: Path) -> None:
    rows, cols = 8192, 768
    script = "\n".join([f"name {LAYER_NORM_FWD}", f"grid {rows} 1 1", "block 32 4 1", "alloc 1 33554432",
                        "alloc 2 33554432", "alloc 3 4096", "alloc 4 65536", "param 4", f"i32 0 {cols}", "param 4",
                        "param 8", "ptr 0 1", "param 8", "ptr 0 3", "param 8", "ptr 0 3", "param 8", "ptr 0 4",
                        "param 8", "ptr 0 4", "param 8", "ptr 0 2", "describe"]) + "\n"
    out = run(harness, script)[0]
    # X and Y in bf16, gamma and beta once, mean and rstd in fp32 per row
    assert int(out["bytes"]) == 2 * rows * cols * 2 + 2 * cols * 2 + 2 * rows * 4


def test_in_place_elementwise_counts_each_operand(harness: Path) -> None:
    n = 1 << 20
    script = "\n".join([f"name {VECTORIZED_ADD}", "grid 1024 1 1", "block 128 1 1", "alloc 1 4194304",
                        "alloc 2 4194304", "param 4", f"i32 0 {n}", "param 8", "param 24", "ptr 0 1", "ptr 8 1",
                        "ptr 16 2", "describe"]) + "\n"
    assert int(run(harness, script)[0]["bytes"]) == 3 * n * 2


# ---- torch's multi-tensor kernels: multi_tensor_apply_kernel<Metadata, Functor, ...> ----------
# MultiTensorApply.cuh: tensors per launch by depth, in the 4 KB layout and in the 32 KB one that
# torch's CUDA 13 build uses; blocks per launch 320 (index unsigned char) or 2240 (uint16_t).
MAX_TENSORS = {False: (110, 64, 48, 36, 30), True: (770, 448, 336, 252, 210)}
MAX_TENSORS_SCALAR_LIST = {False: (96, 64, 48, 36, 30), True: (672, 448, 336, 252, 210)}
MAX_TENSORS_COMPLEX_DOUBLE_LIST = {False: (72, 60), True: (504, 420)}
CHUNK = 65536


MTA_SQRT_2 = MULTI_TENSOR_2  # TensorListMetadata<2>, UnaryOpFunctor<float, 2, 1, 1>, Sqrt<float>
MTA_MUL_1 = ("_ZN2at6native57_GLOBAL__N__7e105b8f_24_ForeachBinaryOpScalar_cu_86b9896c25multi_tensor_apply_kernelINS1_"
             "18TensorListMetadataILi1EEENS1_21BinaryOpScalarFunctorIfLi1ELi1ELi0EEEJSt10multipliesIfEfEEEvT_T0_DpT1_")
MTA_ADAMW = ("_ZN2at6native52_GLOBAL__N__1f580294_19_fused_adamw_impl_cu_8b44fa2325multi_tensor_apply_kernelINS1_32"
             "FusedOptimizerTensorListMetadataILi4EEENS1_20FusedAdamMathFunctorIfLi4ELNS0_9ADAM_MODEE1ELb0EEEJPKfdddd"
             "dbS9_S9_EEEvT_T0_DpT1_")
MTA_ADAMW_MP = ("_ZN2at6native52_GLOBAL__N__1f580294_19_fused_adamw_impl_cu_8b44fa2325multi_tensor_apply_kernelINS1_32"
                "FusedOptimizerTensorListMetadataILi4EEENS1_22FusedAdamMathFunctorMPIfffN3c108BFloat16ES7_fLi4ELNS0_9"
                "ADAM_MODEE1ELb0EEEJPKfdddddbSB_SB_EEEvT_T0_DpT1_")   # param, grad fp32; exp_avg(_sq) bf16
MTA_MUL_COMPLEX_DOUBLE = ("_ZN2at6native61_GLOBAL__N__832b9cb6_28_ForeachBinaryOpScalarList_cu_dda10a6925multi_tensor_"
                          "apply_kernelINS1_28TensorListScalarListMetadataIN3c107complexIdEELi1EEENS1_25BinaryOpScalar"
                          "ListFunctorIS6_Li1ELi1ELi0EEEJSt10multipliesIS6_EEEEvT_T0_DpT1_")
MTA_COPY_TO_BF16 = ("_ZN2at6native55_GLOBAL__N__f86471ef_22_ForeachBinaryOpList_cu_a911ec4325multi_tensor_apply_kernelI"
                    "NS1_18TensorListMetadataILi2EEENS1_11CopyFunctorIN3c108BFloat16EfLi2ELi1ELi1EEEJNS0_4CopyIS7_fEEEEE"
                    "vT_T0_DpT1_")
MTA_NORM = ("_ZN2at6native51_GLOBAL__N__99dedba0_18_ForeachReduceOp_cu_b83ec48c25multi_tensor_apply_kernelINS1_18Tensor"
            "ListMetadataILi1EEENS0_13LpNormFunctorIfLNS0_8NormTypeE2EfLi1ELi1ELi0EEEJPfiEEEvT_T0_DpT1_")
MTA_ZERO = ("_ZN2at6native50_GLOBAL__N__637ba612_17_ForeachUnaryOp_cu_77fe623d25multi_tensor_apply_kernelINS1_18Tensor"
            "ListMetadataILi1EEENS1_11ZeroFunctorIfLi1ELi1ELi0EEEJEEEvT_T0_DpT1_")
MTA_UNKNOWN_FUNCTOR = MTA_ZERO.replace("11ZeroFunctor", "11MistFunctor")


def metadata_layout(kind: str, depth: int, large: bool, scalar_bytes: int = 0) -> dict[str, int]:
    """Offsets of numel_for_tensor, block_to_tensor, block_to_chunk and the struct's size, as the C
    ABI lays out TensorListMetadata ("plain"), TensorListScalarListMetadata ("scalars") and
    FusedOptimizerTensorListMetadata ("fused")."""
    def up(v: int, to: int) -> int:
        return -(-v // to) * to

    if kind == "scalars":
        table = MAX_TENSORS_COMPLEX_DOUBLE_LIST if scalar_bytes == 16 and depth <= 2 else MAX_TENSORS_SCALAR_LIST
    else:
        table = MAX_TENSORS
    tensors, blocks, index = table[large][depth - 1], 2240 if large else 320, 2 if large else 1
    align = 16 if scalar_bytes == 16 else 8
    numel_at = depth * tensors * 8
    end = numel_at + 8 * tensors
    if kind == "scalars":
        end = up(end, min(scalar_bytes, 16)) + tensors * scalar_bytes
    if kind == "fused":
        end += 8 * tensors                       # state_steps_addresses
    tensor_at = up(end, index)
    chunk_at = up(tensor_at + blocks * index, 4)
    end = chunk_at + 4 * blocks + (0 if kind == "scalars" else 4)   # start_tensor_this_launch
    return {"numel_at": numel_at, "tensor_at": tensor_at, "chunk_at": chunk_at, "index": index,
            "size": up(end, align), "tensors": tensors}


def mta_launch(name: str, kind: str, depth: int, large: bool, numels: list[int], plan: list[tuple[int, int]],
               tail: list[str], scalar_bytes: int = 0, size_delta: int = 0) -> str:
    """One launch: the metadata (each block's tensor and chunk), then the functor and `tail`."""
    m = metadata_layout(kind, depth, large, scalar_bytes)
    lines = [f"name {name}", f"grid {len(plan)} 1 1", "block 512 1 1", f"param {m['size'] + size_delta}"]
    lines += [f"i64 {m['numel_at'] + 8 * t} {n}" for t, n in enumerate(numels)]
    for b, (t, c) in enumerate(plan):
        lines += [f"{'i32' if m['index'] == 2 else 'u8'} {m['tensor_at'] + b * m['index']} {t}",
                  f"i32 {m['chunk_at'] + 4 * b} {c}"]
    return "\n".join([*lines, "param 1", *tail, "describe"]) + "\n"


def plan_of(numels: list[int]) -> list[tuple[int, int]]:
    return [(t, c) for t, n in enumerate(numels) for c in range(-(-n // CHUNK))]


NUMELS = [100000, 65536, 10]   # 2 + 1 + 1 chunks
ADAM_TAIL = ["param 8", *["param 8"] * 5, "param 1"]  # lr_ptr, lr, beta1, beta2, weight_decay, eps, maximize


@pytest.mark.parametrize("large", [True, False])
def test_multi_tensor_counts_the_chunks_of_its_blocks(harness: Path, large: bool) -> None:
    """TensorListMetadata<2> (an out-of-place sqrt: list 0 read, list 1 written) in the 4 KB and the
    32 KB layouts; each block works on one chunk of 65536 elements."""
    out = run(harness, mta_launch(MTA_SQRT_2, "plain", 2, large, NUMELS, plan_of(NUMELS), []))[0]
    assert out["ok"] == "1"
    assert int(out["bytes"]) == sum(NUMELS) * 4 * 2


def test_depth_one_lists_in_the_32kb_layout(harness: Path) -> None:
    """The DDP optimizer's launches: TensorListMetadata<1> holds 770 tensors in the 32 KB layout
    (672 for scalar lists), here all of them in a full launch of 2240 blocks whose first tensor
    carries on from the launch before (its chunks from the fourth on)."""
    numels = [5 * CHUNK + 123] + [1000] * 768 + [1469 * CHUNK - 5]
    plan = [(0, c) for c in range(3, 6)] + [(t, 0) for t in range(1, 769)] + [(769, c) for c in range(1469)]
    assert len(plan) == 2240
    out = run(harness, mta_launch(MTA_MUL_1, "plain", 1, True, numels, plan, []))[0]
    assert out["ok"] == "1"
    assert int(out["bytes"]) == (2 * CHUNK + 123 + 768 * 1000 + 1469 * CHUNK - 5) * 4 * 2   # read and written


@pytest.mark.parametrize("scaled", [False, True])
def test_fused_adamw_reads_four_lists_and_writes_three(harness: Path, scaled: bool) -> None:
    """FusedOptimizerTensorListMetadata<4> (per-tensor step-count pointers after the element
    counts): param, exp_avg and exp_avg_sq read and written, grad read, and written back too when
    a grad scale (the second-to-last argument) unscaled it."""
    tail = ["alloc 1 64", *ADAM_TAIL, "param 8", *(["ptr 0 1"] if scaled else []), "param 8"]
    out = run(harness, mta_launch(MTA_ADAMW, "fused", 4, True, NUMELS, plan_of(NUMELS), tail))[0]
    assert out["ok"] == "1"
    assert int(out["bytes"]) == sum(NUMELS) * 4 * (8 if scaled else 7)


def test_mixed_precision_adamw_counts_each_list_at_its_type(harness: Path) -> None:
    tail = [*ADAM_TAIL, "param 8", "param 8"]
    out = run(harness, mta_launch(MTA_ADAMW_MP, "fused", 4, True, NUMELS, plan_of(NUMELS), tail))[0]
    assert out["ok"] == "1"
    # param fp32 read and written, grad fp32 read, exp_avg and exp_avg_sq bf16 read and written
    assert int(out["bytes"]) == sum(NUMELS) * (4 * 2 + 4 + 2 * 2 + 2 * 2)


@pytest.mark.parametrize("large", [True, False])
def test_complex_double_scalar_lists_have_their_own_tensor_count(harness: Path, large: bool) -> None:
    script = mta_launch(MTA_MUL_COMPLEX_DOUBLE, "scalars", 1, large, NUMELS, plan_of(NUMELS), [], scalar_bytes=16)
    out = run(harness, script)[0]
    assert out["ok"] == "1"
    assert int(out["bytes"]) == sum(NUMELS) * 16 * 2


def test_foreach_copy_reads_the_source_type_and_writes_the_destination_type(harness: Path) -> None:
    out = run(harness, mta_launch(MTA_COPY_TO_BF16, "plain", 2, True, NUMELS, plan_of(NUMELS), []))[0]
    assert out["ok"] == "1"
    assert int(out["bytes"]) == sum(NUMELS) * (4 + 2)


def test_foreach_norm_reads_its_list_and_writes_a_partial_per_block(harness: Path) -> None:
    tail = ["param 8", "param 4"]   # float* output_per_tensor, int max_chunks_per_tensor
    plan = plan_of(NUMELS)
    out = run(harness, mta_launch(MTA_NORM, "plain", 1, True, NUMELS, plan, tail))[0]
    assert out["ok"] == "1"
    assert int(out["bytes"]) == sum(NUMELS) * 4 + len(plan) * 4


def test_multi_tensor_launches_that_do_not_validate_are_rejected(harness: Path) -> None:
    """A metadata of another size, a block past its tensor's end, a tensor index past the launch's
    tensors, a functor this decoder does not know: the launch is not described (launch.c then
    reports it), and the kernel still counts as a multi-tensor one."""
    plan = plan_of(NUMELS)
    family = run(harness, mta_launch(MTA_ZERO, "plain", 1, True, NUMELS, plan, []))[0]
    assert family["ok"] == "1" and int(family["bytes"]) == sum(NUMELS) * 4   # zeros written, nothing read
    cases = [mta_launch(MTA_ZERO, "plain", 1, True, NUMELS, plan, [], size_delta=8),
             mta_launch(MTA_ZERO, "plain", 1, True, NUMELS, [*plan, (2, 1)], []),
             mta_launch(MTA_ZERO, "plain", 1, True, NUMELS, [(770, 0)], []),
             mta_launch(MTA_UNKNOWN_FUNCTOR, "plain", 1, True, NUMELS, plan, [])]
    for script in cases:
        out = run(harness, script)[0]
        assert (out["ok"], out["family"]) == ("0", family["family"]), script[:200]


@pytest.mark.skipif(not TORCH_CUDA.exists(), reason="needs CUDA torch")
def test_every_multi_tensor_kernel_torch_ships_has_a_known_layout(harness: Path, tmp_path: Path) -> None:
    """Each multi_tensor_apply_kernel in libtorch_cuda's sm_90 cubins: its metadata and functor are
    known, and the metadata's size in the 32 KB layout is the parameter size the cubin declares
    (fatbin.c reads it: tests/shim/test_fatbin.py)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None
    fatbin_harness = tmp_path / "drv_fatbin_harness"
    subprocess.run([cc, "-std=gnu11", "-O1", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
                    f"-I{REPO / 'shim/src'}", f"-I{REPO / 'shim/include'}", "-o", str(fatbin_harness), str(FATBIN_HARNESS),
                    "-ldl", "-lpthread"], check=True, capture_output=True, text=True)
    sizes: dict[str, int] = {}
    for offset in torch_fatbin_offsets(TORCH_CUDA):
        proc = subprocess.run([str(fatbin_harness), str(TORCH_CUDA), str(offset), "9", "0"], capture_output=True,
                              text=True, timeout=300)
        for kernel in parse_fatbin(proc.stdout).values():
            if "multi_tensor_apply_kernel" in kernel.name and kernel.params:
                sizes[kernel.name] = kernel.params[0][1]
    assert len(sizes) > 1000, len(sizes)   # torch 2.13: 1412
    names = sorted(sizes)
    found = run(harness, "".join(f"name {n}\nlists\n" for n in names))
    wrong = [(n, sizes[n], f) for n, f in zip(names, found, strict=True) if f["layout"] == "0" or int(f["large"]) != sizes[n]]
    assert not wrong, wrong[:5]


def test_vllm_rms_norm_and_rotary(harness: Path) -> None:
    """vLLM's own kernels (vLLM 0.32 signatures): one block per token."""
    tokens, hidden = 4096, 4096
    norm = ["name " + VLLM_RMS_NORM, f"grid {tokens} 1 1", "block 256 1 1", "alloc 1 67108864", "alloc 2 67108864",
            "alloc 3 65536", "param 8", "ptr 0 1", "param 8", "ptr 0 2"] + ["param 8"] * 5 + \
           ["param 8", "ptr 0 3", "param 8", "param 4", "param 4", f"i32 0 {tokens}", "param 4", f"i32 0 {hidden}",
            "describe"]
    out = run(harness, "\n".join(norm) + "\n")[0]
    assert int(out["bytes"]) == 2 * tokens * hidden * 2 + hidden * 2  # in and out in bf16, the weight once
    heads, kv_heads, head_size = 32, 8, 128
    rotary = ["name " + VLLM_ROTARY, f"grid {tokens} 1 1", "block 128 1 1", "param 8", "param 8", "param 8", "param 8",
              "param 4", f"i32 0 {head_size}", "param 8", "param 8", "param 8", "param 4", f"i32 0 {heads}",
              "param 4", f"i32 0 {kv_heads}", "param 4", f"i32 0 {head_size}", "param 8", "param 1", "describe"]
    out = run(harness, "\n".join(rotary) + "\n")[0]
    assert int(out["bytes"]) == tokens * (2 * 2 * (heads + kv_heads) * head_size + head_size * 2 + 8)


FI_ONESHOT_BF16 = ("_ZN10flashinfer23trtllm_allreduce_fusion39allreduce_fusion_kernel_oneshot_lamportILNS0_22AllReduceFusion"
                   "PatternE1E13__nv_bfloat16Li4ELb1ELb1EEEvNS0_21AllReduceFusionParamsIT0_EE")
FI_TWOSHOT_F32 = ("_ZN10flashinfer23trtllm_allreduce_fusion36allreduce_fusion_kernel_twoshot_syncILNS0_22AllReduceFusionPattern"
                  "E0EfLi2ELb0EEEvNS0_21AllReduceFusionParamsIT0_EESt5arrayIiXT1_EES7_")
MNNVL_ONESHOT_BF16 = ("_ZN10flashinfer22trtllm_mnnvl_allreduce28oneshotAllreduceFusionKernelILh2E13__nv_bfloat16Lb1ELNS0_9Quant"
                      "TypeE0E6float4EEvNS0_21AllReduceKernelParamsIT0_EE")
MNNVL_NORM_BF16 = ("_ZN10flashinfer22trtllm_mnnvl_allreduce14rmsNormLamportI13__nv_bfloat16LNS0_9QuantTypeE0ELb0ELi1E6float4EEvNS0"
                   "_21AllReduceKernelParamsIT_EE")
_SYMM = "_ZN64_GLOBAL__N__4bfe95cf_25_CUDASymmetricMemoryOps_cu_746e93c6_1455526"
TORCH_MULTIMEM_AR = _SYMM + "multimem_all_reduce_kernelIN3c108BFloat16ELi16EEEvPT_mPPjmm"
TORCH_ONE_SHOT_AR = _SYMM + "one_shot_all_reduce_kernelIN3c108BFloat16ELi16ELi4EEEvPPT_S4_S4_mmPPjmm"
TORCH_TWO_SHOT_AR = _SYMM + "two_shot_all_reduce_kernelIN3c108BFloat16ELi16ELi4ELb0ELb0EEEvPPT_S4_mmPPjmmm"
VLLM_CUSTOM_1STAGE = ("_ZN4vllm26cross_device_reduce_1stageI13__nv_bfloat16Li2EEEvPNS_8RankDataENS_11RankSignalsEPNS_6Signal"
                      "EPT_ii")


def test_peer_allreduce_kernels_are_all_reduces(harness: Path) -> None:
    """All-reduce kernels through peers' memory are collectives of their ranks and element count,
    with the algorithm their name says: FlashInfer's AllReduceFusionParams {nranks, rank, size
    (elements), ...} and MNNVL AllReduceKernelParams; vLLM's custom all-reduce counts 16-byte
    packs."""
    collective, oneshot, twoshot = (abi.constant(n) for n in ("TW_OP_COLLECTIVE", "TW_COLL_ALGO_IPC_ONESHOT",
                                                              "TW_COLL_ALGO_IPC_TWOSHOT"))
    tokens, hidden = 16, 8192
    fusion = [f"grid {tokens} 1 1", "block 512 1 1", "param 136", "i32 0 {ranks}", "i32 4 1",
              f"i32 8 {tokens * hidden}", f"i32 12 {hidden}"]
    out = run(harness, "\n".join(["name " + FI_ONESHOT_BF16, *fusion, "describe"]).format(ranks=4) + "\n")[0]
    assert out["ok"] == "1" and int(out["kind"]) == collective
    assert int(out["bytes"]) == tokens * hidden * 2
    assert out["dims"].split(",")[:6] == ["4", str(tokens * hidden), "0", "0", str(oneshot), str(tokens)]
    # a params block whose rank count disagrees with the template is not this kernel's
    out = run(harness, "\n".join(["name " + FI_ONESHOT_BF16, *fusion, "describe"]).format(ranks=2) + "\n")[0]
    assert out["ok"] == "0"
    out = run(harness, "\n".join(["name " + FI_TWOSHOT_F32, *fusion, "param 8", "param 8", "describe"])
              .format(ranks=2) + "\n")[0]
    assert out["ok"] == "1" and int(out["bytes"]) == tokens * hidden * 4
    assert int(out["dims"].split(",")[4]) == twoshot
    # FlashInfer's MNNVL (multicast) kernels: {nRanks, rank, numTokens, tokenDim} after 8 pointers
    mnnvl = ["name " + MNNVL_ONESHOT_BF16, f"grid {tokens} 1 1", "block 1024 1 1", "param 120", "i32 64 2", "i32 68 0",
             f"i32 72 {tokens}", f"i32 76 {hidden}", "describe"]
    out = run(harness, "\n".join(mnnvl) + "\n")[0]
    assert out["ok"] == "1" and int(out["bytes"]) == tokens * hidden * 2
    assert out["dims"].split(",")[:5] == ["2", str(tokens * hidden), "0", "0", str(oneshot)]
    # the two-shot path's norm is a local kernel: reads the reduced values, residual and gamma,
    # writes the sum and the norm
    norm = ["name " + MNNVL_NORM_BF16, *mnnvl[1:]]
    out = run(harness, "\n".join(norm) + "\n")[0]
    assert out["ok"] == "1" and int(out["kind"]) == abi.constant("TW_OP_KERNEL")
    assert int(out["bytes"]) == (4 * tokens * hidden + hidden) * 2
    # torch symmetric memory: size_t numel, rank, world size among plain parameters
    numel = tokens * hidden
    multimem = ["name " + TORCH_MULTIMEM_AR, "grid 8 1 1", "block 1024 1 1", "param 8", "param 8", f"i64 0 {numel}",
                "param 8", "param 8", "i64 0 3", "param 8", "i64 0 4", "describe"]
    out = run(harness, "\n".join(multimem) + "\n")[0]
    assert out["ok"] == "1" and int(out["kind"]) == collective and int(out["bytes"]) == numel * 2
    assert out["dims"].split(",")[:5] == ["4", str(numel), "0", "0", str(abi.constant("TW_COLL_ALGO_IPC_MULTIMEM"))]
    one_shot = ["name " + TORCH_ONE_SHOT_AR, "grid 8 1 1", "block 1024 1 1", "param 8", "param 8", "param 8", "param 8",
                "param 8", f"i64 0 {numel}", "param 8", "param 8", "i64 0 1", "param 8", "i64 0 {world}", "describe"]
    out = run(harness, "\n".join(one_shot).format(world=4) + "\n")[0]
    assert out["ok"] == "1" and out["dims"].split(",")[:5] == ["4", str(numel), "0", "0", str(oneshot)]
    out = run(harness, "\n".join(one_shot).format(world=2) + "\n")[0]   # the template says 4 ranks
    assert out["ok"] == "0"
    two_shot = ["name " + TORCH_TWO_SHOT_AR, "grid 8 1 1", "block 1024 1 1", "param 8", "param 8", "param 8",
                "param 8", f"i64 0 {numel}", "param 8", "param 8", "i64 0 2", "param 8", "i64 0 4", "param 8", "describe"]
    out = run(harness, "\n".join(two_shot) + "\n")[0]
    assert out["ok"] == "1" and out["dims"].split(",")[:5] == ["4", str(numel), "0", "0", str(twoshot)]
    packs = 512
    custom = ["name " + VLLM_CUSTOM_1STAGE, "grid 36 1 1", "block 512 1 1", "param 8", "param 64", "param 8", "param 8",
              "param 4", "i32 0 1", "param 4", f"i32 0 {packs}", "describe"]
    out = run(harness, "\n".join(custom) + "\n")[0]
    assert out["ok"] == "1" and int(out["kind"]) == collective and int(out["bytes"]) == packs * 16
    assert out["dims"].split(",")[:2] == ["2", str(packs * 16 // 2)]
