"""A child computes (an actor that runs, so time cannot jump) and is killed with SIGKILL after
0.3 s of real time, without any chance to deregister; the parent sleeps 100 virtual seconds.
The dead peer must stop holding time back at once, not at some timeout."""

import multiprocessing as mp
import os
import signal
import time


def child() -> None:
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:
        pass
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    worker = ctx.Process(target=child)
    worker.start()
    t0 = time.monotonic()
    time.sleep(100)
    slept = time.monotonic() - t0
    worker.join()
    print(f"RESULT slept_s={slept:.6f} child_exit={worker.exitcode}")
