"""torch.compile of a small pointwise + reduction function: Inductor generates Triton kernels
that load and launch through the driver API. Prints RESULT lines."""

from __future__ import annotations

import torch


def fused(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    z = torch.sin(x) * torch.cos(y) + torch.relu(x - y)
    return z.sum(dim=-1)


def main() -> None:
    compiled = torch.compile(fused)
    x = torch.randn(1024, 1024, device="cuda")
    y = torch.randn(1024, 1024, device="cuda")
    for i in range(3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = compiled(x, y)
        end.record()
        end.synchronize()
        print(f"RESULT call={i} ms={start.elapsed_time(end):.6f} shape={tuple(out.shape)}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
