"""nn.LSTM with cuDNN enabled (torch's default): a 2-layer bidirectional LSTM forward and backward,
and an inference forward. Prints RESULT lines with the shapes."""

from __future__ import annotations

import torch

SEQ, BATCH, INPUT, HIDDEN, LAYERS = 64, 16, 256, 512, 2


def main() -> None:
    assert torch.backends.cudnn.enabled
    lstm = torch.nn.LSTM(INPUT, HIDDEN, num_layers=LAYERS, bidirectional=True).cuda()
    x = torch.randn(SEQ, BATCH, INPUT, device="cuda", requires_grad=True)
    y, (h, c) = lstm(x)
    y.sum().backward()
    with torch.no_grad():
        z, _ = lstm.eval()(x)
    torch.cuda.synchronize()
    print(f"RESULT out_shape={'x'.join(map(str, y.shape))} h_shape={'x'.join(map(str, h.shape))} "
          f"grad_shape={'x'.join(map(str, x.grad.shape))} eval_shape={'x'.join(map(str, z.shape))}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
