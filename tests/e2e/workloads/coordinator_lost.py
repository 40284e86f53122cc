"""Loses the run's coordinator mid-run: GPU work, then the coordinator is killed, then work of a
new shape (a prediction nobody can answer). Prints `after_loss 1` if the process survives it."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from pathlib import Path


def coordinator_pid(run_dir: str) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"coordinator" in argv and run_dir.encode() in argv:
            return int(entry.name)
    raise SystemExit("coordinator process not found")


def main() -> None:
    cudart = ctypes.CDLL("libcudart.so.13")
    buffer = ctypes.c_void_p()
    assert cudart.cudaMalloc(ctypes.byref(buffer), ctypes.c_size_t(64 << 20)) == 0
    cudart.cudaMemset(buffer, 1, ctypes.c_size_t(1 << 20))
    cudart.cudaDeviceSynchronize()
    print("before_loss 1", flush=True)
    os.kill(coordinator_pid(os.environ["TIMEWARP_RUN_DIR"]), signal.SIGKILL)
    cudart.cudaMemset(buffer, 2, ctypes.c_size_t(48 << 20))
    cudart.cudaDeviceSynchronize()
    print("after_loss 1", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
