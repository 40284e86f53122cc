"""Benchmark the coordinator's prediction round trip over the unix-socket wire.

    python scripts/bench_coordinator.py [--gpu h100] [--predictor roofline] [--repeat 200]

Starts a coordinator in a temporary run directory (private prediction cache), then times
one-descriptor and 1000-descriptor PREDICT batches on one connection: the first (cold) batch,
which runs the predictor, and repeated (warm) batches answered from the cache."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coordinator import launch, wire  # noqa: E402
from coordinator.client import WireClient  # noqa: E402
from shim import abi  # noqa: E402


def descriptors(count: int, salt: int) -> tuple[list[bytes], list[str]]:
    kernel, gemm = abi.constant("TW_OP_KERNEL"), abi.constant("TW_OP_GEMM")
    descs, names = [], []
    for i in range(count):
        if i % 4 == 3:
            m = 64 * (i + 1 + salt)
            fields = {"kind": gemm, "dtype_a": abi.constant("TW_DT_BF16"), "dtype_b": abi.constant("TW_DT_BF16"),
                      "dtype_out": abi.constant("TW_DT_BF16"), "dims": [m, 4096, 4096, 1], "flops": 2 * m * 4096 * 4096}
            names.append("cublasLtMatmul")
        else:
            fields = {"kind": kernel, "grid": [i + 1 + salt, 1, 1], "block": [256, 1, 1], "bytes": 8192 * (i + 1)}
            names.append(f"_ZN2at6native18elementwise_kernelILi128ELi{i % 4}EEEviT1_{salt}")
        descs.append(wire.fields_to_desc(fields))
    return descs, names


def timed(client: WireClient, descs: list[bytes], names: list[str]) -> float:
    start = time.perf_counter()
    client.predict(descs, names)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", default="h100")
    parser.add_argument("--predictor", default="roofline")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="twbench") as tmp:
        os.environ["TIMEWARP_CACHE_DIR"] = str(Path(tmp) / "cache")
        handle = launch.start(Path(tmp) / "run", args.gpu, 1, args.predictor, {})
        try:
            with WireClient(handle.address) as client:
                salt = int(time.time())
                for batch in (1, 1000):
                    descs, names = descriptors(batch, salt)
                    cold = timed(client, descs, names)
                    warm = [timed(client, descs, names) for _ in range(args.repeat if batch == 1 else args.repeat // 10)]
                    print(f"batch {batch:5d}: cold {cold * 1e3:8.3f} ms   warm median {statistics.median(warm) * 1e3:8.3f} ms"
                          f"  p90 {sorted(warm)[int(0.9 * len(warm))] * 1e3:8.3f} ms  ({len(warm)} runs)"
                          f"  -> {statistics.median(warm) / batch * 1e6:.2f} us/descriptor warm")
            print("status:", {k: v for k, v in handle.status().items() if k != "processes"})
        finally:
            handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
