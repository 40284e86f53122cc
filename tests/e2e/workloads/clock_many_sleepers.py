"""PROCS processes (forked, started together at a barrier) each sleep ROUNDS times: odd rounds
to the next virtual millisecond boundary (every process has the same target: one jump wakes
all), even rounds a random 0.1-2 ms (targets differ). Each counts wakes before the deadline.

    python clock_many_sleepers.py PROCS ROUNDS SEED
"""

import multiprocessing as mp
import random
import sys
import time


def sleeper(barrier, rounds: int, seed: int, out) -> None:  # noqa: ANN001
    rng = random.Random(seed)
    barrier.wait()
    early, slept = 0, 0.0
    start = time.monotonic()
    for i in range(rounds):
        now = time.monotonic()
        deadline = (int(now * 1000) + 1) / 1000 if i % 2 else now + rng.uniform(1e-4, 2e-3)
        time.sleep(deadline - now)
        woke = time.monotonic()
        early += woke < deadline
        slept += deadline - now
    out.put((early, slept, time.monotonic() - start))


def main() -> None:
    procs, rounds, seed = (int(a) for a in sys.argv[1:4])
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=sleeper, args=(barrier, rounds, seed + k, out)) for k in range(procs)]
    for w in workers:
        w.start()
    reports = [out.get() for _ in workers]
    for w in workers:
        w.join()
    print(f"RESULT early={sum(r[0] for r in reports)} max_slept_s={max(r[1] for r in reports):.6f} "
          f"max_span_s={max(r[2] for r in reports):.6f}")


if __name__ == "__main__":
    main()
