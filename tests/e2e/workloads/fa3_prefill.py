"""vLLM's FlashAttention-3 (vllm.vllm_flash_attn, the kernels vLLM's default attention backend
launches on an H100) over one causal sequence of 1,024 to 32,768 tokens, 32 query and 8 KV
heads, head dim 128, bf16: the shape of inference-sim's FA3 prefill measurements. The lengths
reach the kernel through cu_seqlens, a small device buffer. Prints RESULT lines."""

from __future__ import annotations

import sys

import torch
from vllm.vllm_flash_attn import flash_attn_varlen_func

LENGTHS = (1024, 2048, 4096, 8192, 16384, 32768)
HEADS_Q, HEADS_KV, HEAD_DIM = 32, 8, 128


def main() -> None:
    lengths = [int(a) for a in sys.argv[1:]] or list(LENGTHS)
    for n in lengths:
        q = torch.empty(n, HEADS_Q, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        k = torch.empty(n, HEADS_KV, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        v = torch.empty(n, HEADS_KV, HEAD_DIM, dtype=torch.bfloat16, device="cuda")
        cu_seqlens = torch.tensor([0, n], dtype=torch.int32, device="cuda")
        flash_attn_varlen_func(q, k, v, n, cu_seqlens, n, cu_seqlens_k=cu_seqlens, causal=True, fa_version=3)
        torch.cuda.synchronize()
        print(f"RESULT tokens={n}", flush=True)
    print("RESULT done=1")


if __name__ == "__main__":
    main()
