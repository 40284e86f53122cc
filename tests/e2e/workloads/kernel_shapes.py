"""Kernels whose work is in their arguments: softmax over [4, 20, 1024, 1024] fp32 (335 MB in,
335 MB out), a bf16 layer norm forward and backward, scaled_dot_product_attention (bf16,
causal, forward and backward) through the flash and the memory-efficient backends, and three
casting copies (float to bfloat16 and back, int64 to int32).
Prints RESULT lines with the shapes, so the test computes what each kernel must be charged."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SOFTMAX_SHAPE = (4, 20, 1024, 1024)
NORM_SHAPE = (8, 1024, 768)
SDPA_SHAPE = (2, 8, 1024, 64)  # batch, heads, sequence, head dim
CAST_ELEMENTS = 1 << 20


def main() -> None:
    x = torch.empty(*SOFTMAX_SHAPE, device="cuda")
    torch.softmax(x, dim=-1)
    h = torch.empty(*NORM_SHAPE, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    norm = torch.nn.LayerNorm(NORM_SHAPE[-1], device="cuda", dtype=torch.bfloat16)
    norm(h).backward(torch.empty(*NORM_SHAPE, device="cuda", dtype=torch.bfloat16))
    for label, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
        q, k, v = (torch.empty(*SDPA_SHAPE, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                   for _ in range(3))
        with sdpa_kernel(backend):
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            out.backward(torch.empty_like(out))
        torch.cuda.synchronize()
        print(f"RESULT backend={label} ok=1", flush=True)
    # casting copies: each reads its input's elements and writes the output's, of two sizes
    x = torch.empty(CAST_ELEMENTS, device="cuda")
    x.to(torch.bfloat16).float()                                   # 4 -> 2 bytes, then 2 -> 4
    torch.empty(CAST_ELEMENTS, device="cuda", dtype=torch.long).to(torch.int32)   # 8 -> 4
    torch.cuda.synchronize()
    print(f"RESULT softmax={'x'.join(map(str, SOFTMAX_SHAPE))} norm={'x'.join(map(str, NORM_SHAPE))} "
          f"sdpa={'x'.join(map(str, SDPA_SHAPE))}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
