"""Kernel-family descriptors (shim/src/kernel_shapes.c) on synthetic launches.

kernel_shapes.c is compiled alone into a harness (tests/shim/cuda/kernel_shapes_harness.c) that
builds one launch from a script (parameters at the offsets the decoder documents, simulated
host-backed device buffers holding sequence lengths) and prints the descriptor. Expected
FLOPs and bytes are computed here independently: attention work by counting the (query, key)
pairs each mask keeps, one query row at a time. The real binaries (torch's and vLLM's) are
exercised under emulate in tests/e2e/test_kernel_descriptors.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from shim import abi

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "cuda" / "kernel_shapes_harness.c"

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


@pytest.mark.parametrize("large", [True, False])
def test_multi_tensor_counts_the_chunks_of_its_blocks(harness: Path, large: bool) -> None:
    """torch's foreach kernels (the optimizer's): TensorListMetadata<2> in its 4 KB and its
    large-argument (sm_90, 24 KB) layouts; each block works on one 65536-element chunk."""
    tensors, blocks, index = (448, 2240, 2) if large else (64, 320, 1)
    numel_at = 2 * tensors * 8
    tensor_at = numel_at + tensors * 8
    chunk_at = (tensor_at + blocks * index + 3) // 4 * 4
    size = (chunk_at + blocks * 4 + 4 + 7) // 8 * 8
    numels = [100000, 65536, 10]
    plan = [(0, 0), (0, 1), (1, 0), (2, 0)]  # (tensor, chunk) of each block
    lines = [f"name {MULTI_TENSOR_2}", f"grid {len(plan)} 1 1", "block 512 1 1", f"param {size}"]
    lines += [f"i64 {numel_at + 8 * t} {n}" for t, n in enumerate(numels)]
    for b, (t, c) in enumerate(plan):
        lines += [f"{'i32' if index == 2 else 'u8'} {tensor_at + b * index} {t}", f"i32 {chunk_at + 4 * b} {c}"]
    out = run(harness, "\n".join([*lines, "param 1", "describe"]) + "\n")[0]
    assert out["ok"] == "1"
    # float lists of depth 2 (read both, write one): every element of every tensor, 3 passes
    assert int(out["bytes"]) == sum(numels) * 4 * 3


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
