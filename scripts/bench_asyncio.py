"""Emulation speed of the asyncio client/server (tests/e2e/workloads/clock_asyncio_serving.py):
virtual seconds per wall second of a run under `emulate`, with the GPU step a sleep or a torch
matmul + synchronize.

    python scripts/bench_asyncio.py [--duration 60] [--rate 5] [--step 0.02] [--torch]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from emulator.run import run_command

WORKLOAD = Path(__file__).resolve().parents[1] / "tests" / "e2e" / "workloads" / "clock_asyncio_serving.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="virtual seconds of requests")
    parser.add_argument("--rate", type=float, default=5.0, help="requests per virtual second")
    parser.add_argument("--step", type=float, default=0.02, help="the server's step (a sleep), s")
    parser.add_argument("--torch", action="store_true", help="the step is a torch matmul on the virtual GPU")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    speeds, walls, virtuals = [], [], []
    for seed in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, str(WORKLOAD), str(seed + 1), str(args.rate), str(args.duration),
                   str(args.step)] + (["--torch"] if args.torch else [])
            result = run_command(cmd, out=Path(tmp) / "run")
            if result.exit_status != 0:
                raise SystemExit(f"run failed with {result.exit_status}")
            summary = result.summary
            walls.append(summary["wall_time_s"])
            virtuals.append(summary["virtual_time_s"])
            speeds.append(summary["virtual_time_s"] / summary["wall_time_s"])
    print(f"asyncio client/server ({'torch step' if args.torch else f'{args.step * 1e3:.0f} ms sleep step'}, "
          f"{args.rate:g} req/s for {args.duration:g} s): virtual {statistics.median(virtuals):.1f} s in "
          f"{statistics.median(walls):.2f} s wall (median of {args.repeat}): "
          f"{statistics.median(speeds):.1f} virtual s per wall s")


if __name__ == "__main__":
    main()
