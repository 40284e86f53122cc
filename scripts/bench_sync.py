"""Block -> jump -> wake round trip of the causal clock, for 1 and N processes.

N processes share one run directory. Each waits at a start barrier (a poll on a pipe the
bench writes once all have started, so every process is an actor before the loop), then
sleeps ITERS times and reports the real and virtual time per round, read in-process.

* aligned: `clock_nanosleep(TIMER_ABSTIME)` to the next virtual millisecond, so every process
  has the same target: one round is one block -> jump -> wake of all N (the figure DESIGN's
  50 us target is about);
* staggered: `usleep(1000)`, so targets differ by the few microseconds between the processes'
  wake-ups and a round takes up to N jumps, each waking the one process whose target it is.

    python scripts/bench_sync.py [--iters 2000] [--procs 1 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from emulator import environment
from emulator.run import write_clock_page
from shim import abi

SOURCE = r"""
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long host_ns(void)   /* the real clock: the shim does not see a raw syscall */
{
    struct timespec t;
    syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long virtual_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char **argv)
{
    int iters = atoi(argv[1]);
    int aligned = strcmp(argv[2], "aligned") == 0;
    struct pollfd start = {.fd = 0, .events = POLLIN};
    poll(&start, 1, -1);
    long long h0 = host_ns(), v0 = virtual_ns();
    for (int i = 0; i < iters; i++) {
        if (aligned) {
            long long next = (virtual_ns() / 1000000 + 1) * 1000000;
            struct timespec ts = {next / 1000000000LL, next % 1000000000LL};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        } else {
            usleep(1000);
        }
    }
    printf("%lld %lld\n", host_ns() - h0, virtual_ns() - v0);
    return 0;
}
"""


def build(workdir: Path) -> Path:
    src, exe = workdir / "sleeper.c", workdir / "sleeper"
    src.write_text(SOURCE)
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    return exe


def run(exe: Path, procs: int, iters: int, mode: str, shim: Path) -> tuple[float, float, float]:
    """(real us per round, virtual ms per round, jumps per round), the slowest process's."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        write_clock_page(run_dir)
        env = dict(os.environ, LD_PRELOAD=str(shim), TIMEWARP_RUN_DIR=str(run_dir))
        read_end, write_end = os.pipe()
        children = [subprocess.Popen([str(exe), str(iters), mode], env=env, stdin=read_end,
                                     stdout=subprocess.PIPE, text=True) for _ in range(procs)]
        os.close(read_end)
        time.sleep(0.3 + 0.05 * procs)   # every process reaches the barrier (an actor blocked in poll)
        os.write(write_end, b"go")
        rounds = []
        for child in children:
            out, _ = child.communicate()
            if child.returncode != 0:
                raise SystemExit(f"sleeper exited with {child.returncode}")
            host_ns, virtual_ns = (int(x) for x in out.split())
            rounds.append((host_ns / iters / 1e3, virtual_ns / iters / 1e6))
        os.close(write_end)
        ffi = abi.ffi()
        table = ffi.from_buffer("tw_actor_table *", bytearray((run_dir / "actors.page").read_bytes()))
        return max(r[0] for r in rounds), max(r[1] for r in rounds), int(table.jumps) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the median is reported")
    args = parser.parse_args()
    shim = environment.ensure_shim()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        for mode in ("aligned", "staggered"):
            for procs in args.procs:
                results = [run(exe, procs, args.iters, mode, shim) for _ in range(args.repeat)]
                real_us = statistics.median(r[0] for r in results)
                virtual_ms = statistics.median(r[1] for r in results)
                jumps = statistics.median(r[2] for r in results)
                print(f"{mode:9} {procs} process(es): {real_us:7.1f} us real per round, "
                      f"{virtual_ms:.3f} ms virtual per 1 ms sleep, {jumps:.1f} jumps per round")


if __name__ == "__main__":
    main()
