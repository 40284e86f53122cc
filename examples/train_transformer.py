"""The main example job: a small transformer training loop, timed the way users time GPUs.

Run it under emulate to see how long it would take on the chosen GPU:
    emulate --gpu h100 -- python examples/train_transformer.py
"""

import argparse
import time

import torch
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--seq", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    device = torch.device("cuda")
    layer = nn.TransformerEncoderLayer(args.width, nhead=args.width // 64, dim_feedforward=4 * args.width,
                                       batch_first=True, norm_first=True)
    model = nn.TransformerEncoder(layer, args.layers, enable_nested_tensor=False).to(device)
    head = nn.Linear(args.width, args.width).to(device)
    params = list(model.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    x = torch.randn(args.batch, args.seq, args.width, device=device)
    target = torch.randn(args.batch, args.seq, args.width, device=device)

    print(f"device: {torch.cuda.get_device_name(0)}")
    step_ms = []
    wall = time.perf_counter()
    for step in range(args.steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = nn.functional.mse_loss(head(model(x)), target)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        end.record()
        end.synchronize()
        step_ms.append(start.elapsed_time(end))
        print(f"step {step}: {step_ms[-1]:.3f} ms")
    total = time.perf_counter() - wall
    steady = step_ms[1:] or step_ms
    print(f"mean step (after warm-up): {sum(steady) / len(steady):.3f} ms; loop {total:.3f} s")
    print(f"peak memory: {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
