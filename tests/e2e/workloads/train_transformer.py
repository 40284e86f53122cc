"""A small transformer training loop (2 layers, d=256): forward, backward, AdamW, bf16 autocast,
each step timed with CUDA events. Prints RESULT lines."""

from __future__ import annotations

import sys

import torch
from torch import nn

STEPS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
BATCH, SEQ, D_MODEL, HEADS, LAYERS, VOCAB = 8, 128, 256, 4, 2, 1024


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, dim_feedforward=4 * D_MODEL, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = nn.Linear(D_MODEL, VOCAB)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens), is_causal=False))


def main() -> None:
    device = torch.device("cuda")
    print(f"RESULT device_name={torch.cuda.get_device_name(0)}")
    model = TinyLM().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, VOCAB, (BATCH, SEQ), device=device)
    targets = torch.randint(0, VOCAB, (BATCH, SEQ), device=device)
    print(f"RESULT params={sum(p.numel() for p in model.parameters())}")
    for step in range(STEPS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(tokens)
            loss = nn.functional.cross_entropy(logits.float().view(-1, VOCAB), targets.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        end.record()
        end.synchronize()
        print(f"RESULT step={step} ms={start.elapsed_time(end):.6f}")
    torch.cuda.synchronize()
    print(f"RESULT max_memory_allocated={torch.cuda.max_memory_allocated()}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
