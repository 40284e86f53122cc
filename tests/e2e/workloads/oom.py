"""A 100 GiB allocation on an 80 GB GPU raises torch.OutOfMemoryError. Prints RESULT lines."""

from __future__ import annotations

import torch

GIB = 1 << 30


def main() -> None:
    free, total = torch.cuda.mem_get_info()
    print(f"RESULT free={free} total={total}")
    try:
        torch.empty(100 * GIB, dtype=torch.uint8, device="cuda")
        print("RESULT oom=0")
    except torch.OutOfMemoryError as exc:
        print("RESULT oom=1")
        print(f"RESULT message={' '.join(str(exc).split())}")
    ok = torch.empty(10 * GIB, dtype=torch.uint8, device="cuda")
    (ok[: 1 << 20] + 1).sum()  # the GPU still runs kernels after the failed allocation
    torch.cuda.synchronize()
    print(f"RESULT after_oom_alloc={int(ok.numel() == 10 * GIB)}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
