"""torch.profiler with CPU and CUDA activities around a few small steps (a matmul, an elementwise
op, a host-to-device copy, a fill), exported as a Kineto chrome trace to argv[1]. The ops are
small enough that the GPU keeps up with the CPU issuing them: the profiled region has no jump
of virtual time (torch maps its TSC timestamps linearly over the session, docs/libraries.md).
Prints RESULT lines: the profiled window's CUDA time total as the profiler reports it."""

from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile


def step(x: torch.Tensor, w: torch.Tensor, host: torch.Tensor) -> torch.Tensor:
    y = torch.relu(x @ w)
    staged = host.to("cuda", non_blocking=True)
    staged.zero_()
    return y


def main() -> None:
    x = torch.randn(256, 256, device="cuda")
    w = torch.randn(256, 256, device="cuda")
    host = torch.randn(64, 1024).pin_memory()
    step(x, w, host)  # each op's first prediction is a round trip: not inside the profile
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            y = step(x, w, host)
        torch.cuda.synchronize()
    prof.export_chrome_trace(sys.argv[1])
    cuda_us = sum(e.device_time_total for e in prof.key_averages())
    print(f"RESULT profiled_cuda_us={cuda_us:.3f} out_shape={'x'.join(map(str, y.shape))}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
