"""PyTorch's expandable segments (cuMem* virtual memory) with allocations and frees of several
sizes. Prints RESULT lines."""

from __future__ import annotations

import os

os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "expandable_segments:True"

import torch  # noqa: E402 - the allocator reads its configuration at first use

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30


def main() -> None:
    sizes = [KIB, MIB, 3 * MIB, 20 * MIB, 300 * MIB, GIB, 7 * GIB]
    kept = []
    for round_ in range(3):
        tensors = [torch.empty(size, dtype=torch.uint8, device="cuda") for size in sizes]
        kept.append(tensors[round_])
        del tensors
    print(f"RESULT reserved={torch.cuda.memory_reserved()}")
    print(f"RESULT max_allocated={torch.cuda.max_memory_allocated()}")
    print(f"RESULT allocated={torch.cuda.memory_allocated()}")
    torch.cuda.empty_cache()  # unmap the cached pages, so the next allocation maps all it needs
    free_before, total = torch.cuda.mem_get_info()
    big = torch.empty(20 * GIB, dtype=torch.uint8, device="cuda")
    free_after, _ = torch.cuda.mem_get_info()
    print(f"RESULT free_drop={free_before - free_after} total={total}")
    del big
    torch.cuda.empty_cache()
    free_end, _ = torch.cuda.mem_get_info()
    print(f"RESULT free_end={free_end} free_before={free_before}")
    print(f"RESULT item={torch.tensor([42.0]).cuda().item()}")
    # kernels on tensors inside mapped segments (their values are not computed: kernels never run)
    (torch.ones(1 << 20, device="cuda") * 2).sum()
    torch.cuda.synchronize()
    try:
        torch.empty(100 * GIB, dtype=torch.uint8, device="cuda")
        print("RESULT oom=0")
    except torch.OutOfMemoryError:
        print("RESULT oom=1")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
