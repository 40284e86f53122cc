"""Block -> jump -> wake round trip of the causal clock, for 1 and N processes.

Each process runs `usleep(1000)` ITERS times under the shim, sharing one run directory. With
one process every sleep jumps at once; with N, a jump happens when the last of them blocks
(the quiescence check reads every other actor's kernel state) and wakes them all. The cost per
round is (wall time - wall time of a zero-iteration run) / ITERS.

    python scripts/bench_sync.py [--iters 2000] [--procs 1 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from emulator import environment
from emulator.run import write_clock_page

SOURCE = r"""
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int iters = atoi(argv[1]);
    for (int i = 0; i < iters; i++)
        usleep(1000);
    return 0;
}
"""


def build(workdir: Path) -> Path:
    src, exe = workdir / "sleeper.c", workdir / "sleeper"
    src.write_text(SOURCE)
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def run(exe: Path, procs: int, iters: int, shim: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        write_clock_page(run_dir)
        env = dict(os.environ, LD_PRELOAD=str(shim), TIMEWARP_RUN_DIR=str(run_dir))
        start = time.perf_counter()
        children = [subprocess.Popen([str(exe), str(iters)], env=env) for _ in range(procs)]
        for child in children:
            if child.wait() != 0:
                raise SystemExit(f"sleeper exited with {child.returncode}")
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    shim = environment.ensure_shim()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        for procs in args.procs:
            base = min(run(exe, procs, 0, shim) for _ in range(3))
            total = min(run(exe, procs, args.iters, shim) for _ in range(3))
            per_round = (total - base) / args.iters
            print(f"{procs} process(es): {per_round * 1e6:.1f} us per block->jump->wake round "
                  f"({args.iters} rounds, {total:.3f} s wall, {base:.3f} s start-up)")


if __name__ == "__main__":
    main()
