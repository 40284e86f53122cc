"""torch's multi-tensor (foreach and optimizer) kernels on a known parameter list, in a fixed
order, so the test can compute what each launch moves: foreach add (out of place and in place),
a foreach scalar multiply, a foreach norm, an Adam step (foreach), fused AdamW steps without and
with a GradScaler, fused SGD with momentum, then the 32 KB metadata layout's limits: 800
tensors (more than one launch holds) and one tensor of more than 2240 chunks (more blocks than
one launch holds). Tensors are torch.empty: no fill kernels between the phases."""

from __future__ import annotations

import torch

SIZES = (100_000, 65_536, 10)    # 2 + 1 + 1 chunks of 65536 elements: 4 blocks
MANY = (800, 1000)               # tensors, elements each
BIG = 2240 * 65536 + 1000        # 2241 chunks: a full launch of 2240 blocks, then one block


def params() -> list[torch.Tensor]:
    out = [torch.empty(n, device="cuda", requires_grad=True) for n in SIZES]
    for p in out:
        p.grad = torch.empty_like(p)
    return out


def main() -> None:
    a = [torch.empty(n, device="cuda") for n in SIZES]
    b = [torch.empty(n, device="cuda") for n in SIZES]
    torch._foreach_add(a, b)
    torch._foreach_add_(a, b)
    torch._foreach_mul_(a, 0.5)
    torch._foreach_norm(a)
    torch.optim.Adam(params(), foreach=True).step()
    torch.optim.AdamW(params(), fused=True).step()
    # with a GradScaler: found_inf is checked (unscaling by 1), the fused step unscales the
    # gradients and writes them back, and takes the step back where found_inf says so
    scaler = torch.amp.GradScaler("cuda")
    scaler.scale(torch.ones((), device="cuda"))   # the scale tensor exists from the first scale()
    scaler.step(torch.optim.AdamW(params(), fused=True))
    torch.optim.SGD(params(), lr=0.1, momentum=0.9, fused=True).step()
    many = [torch.empty(MANY[1], device="cuda") for _ in range(MANY[0])]
    torch._foreach_add_(many, [torch.empty(MANY[1], device="cuda") for _ in range(MANY[0])])
    torch._foreach_mul_([torch.empty(BIG, device="cuda")], 2.0)
    torch.cuda.synchronize()
    print(f"RESULT sizes={','.join(map(str, SIZES))} many={MANY[0]}x{MANY[1]} big={BIG}", flush=True)


if __name__ == "__main__":
    main()
