"""scaled_dot_product_attention (bf16, causal): the default backend, then each backend forced.
Prints RESULT lines; a failing backend prints its error class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def run_once() -> float:
    q, k, v = (torch.randn(2, 8, 512, 64, device="cuda", dtype=torch.bfloat16, requires_grad=True)
               for _ in range(3))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    out.sum().backward()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def main() -> None:
    print(f"RESULT default_ms={run_once():.6f}")
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    for label, backend in backends.items():
        try:
            with sdpa_kernel(backend):
                ms = run_once()
            print(f"RESULT backend={label} status=ok ms={ms:.6f}")
        except RuntimeError as exc:
            print(f"RESULT backend={label} status={type(exc).__name__}")
            print(f"backend {label} failed: {exc}", flush=True)
    print("RESULT done=1")


if __name__ == "__main__":
    main()
