"""conv2d forward + backward through cuDNN. Prints RESULT lines."""

from __future__ import annotations

import torch
from torch import nn


def main() -> None:
    torch.backends.cudnn.enabled = True
    torch.backends.cudnn.benchmark = False
    print(f"RESULT cudnn_available={int(torch.backends.cudnn.is_available())}")
    print(f"RESULT cudnn_version={torch.backends.cudnn.version()}")
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)).cuda()
    x = torch.randn(8, 3, 64, 64, device="cuda", requires_grad=True)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    y = model(x)
    y.sum().backward()
    end.record()
    end.synchronize()
    print(f"RESULT fwd_bwd_ms={start.elapsed_time(end):.6f}")
    print(f"RESULT grad_shape={tuple(model[0].weight.grad.shape)}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
