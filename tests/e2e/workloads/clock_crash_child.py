"""A forked child dereferences a null pointer after 0.5 s while its parent waits forever on a
queue nobody writes: only the crash can end the run."""

import ctypes
import multiprocessing as mp
import time


def child() -> None:
    time.sleep(0.5)
    ctypes.string_at(0)


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    ctx.Process(target=child).start()
    queue.get()
