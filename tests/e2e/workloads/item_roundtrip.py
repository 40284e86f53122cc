"""Small tensors round-trip through the (host-backed) device memory. Prints RESULT lines."""

from __future__ import annotations

import torch


def main() -> None:
    print(f"RESULT item={torch.tensor([42.0]).cuda().item()}")
    print(f"RESULT list_ok={int(torch.tensor([1, 2, 3]).cuda().cpu().tolist() == [1, 2, 3])}")
    host = torch.arange(1000, dtype=torch.float32)
    print(f"RESULT copy_ok={int(torch.equal(host.cuda().cpu(), host))}")
    dev = torch.zeros(16, device="cuda")
    dev.copy_(torch.full((16,), 7.0))
    print(f"RESULT copy_into_ok={int(dev.cpu().eq(7.0).all().item())}")
    # Kernels do not run: these must not crash, whatever values they read back.
    a = torch.arange(10, device="cuda")
    b = (a * 2 + 1).sum()
    _ = b.item()
    _ = torch.ones(4, 4, device="cuda").tolist()
    print(f"RESULT memory_allocated={torch.cuda.memory_allocated()}")
    torch.cuda.synchronize()
    print("RESULT done=1")


if __name__ == "__main__":
    main()
