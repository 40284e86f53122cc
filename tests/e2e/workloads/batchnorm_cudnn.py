"""nn.BatchNorm2d with cuDNN enabled (torch's default): a training step (forward with batch
statistics, backward) and an inference forward. Prints RESULT lines with the output shapes."""

from __future__ import annotations

import torch


def main() -> None:
    assert torch.backends.cudnn.enabled
    bn = torch.nn.BatchNorm2d(64).cuda()
    x = torch.randn(32, 64, 56, 56, device="cuda", requires_grad=True)
    y = bn(x)
    y.sum().backward()
    bn.eval()
    with torch.no_grad():
        z = bn(x)
    half = torch.nn.BatchNorm2d(64).cuda().half()
    w = half(x.detach().half())
    torch.cuda.synchronize()
    print(f"RESULT train_shape={'x'.join(map(str, y.shape))} grad_shape={'x'.join(map(str, x.grad.shape))}")
    print(f"RESULT eval_shape={'x'.join(map(str, z.shape))} half_shape={'x'.join(map(str, w.shape))}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
