"""Interpret a generated multi-process program on the virtual clock (tests/e2e/test_clock_properties.py).

The program is JSON: {"procs": N, "channels": {"A>B": "pipe" | "socket"}, "steps": [[p, kind, ...]]},
steps in one global order; process p runs the steps that name it, in that order:

    [p, "sleep", seconds]                      time.sleep
    [p, "gpu", [bytes, ...], sync]             one cudaMemsetAsync per size on the legacy stream, then
                                               sync = "device" | "stream" | "event" (ctypes on libcudart,
                                               which the shim answers)
    [p, "send", to, msg]                       16 bytes (msg id, send time) down channel p>to
    [p, "recv", frm, msg, how]                 how = "poll" | "select" | "read": wait, then read 16 bytes

The parent forks the N processes, releases them together once all are set up, lets them exit
once all have run their steps, and waits for them. Each writes OUT_DIR/proc<p>.json: its pid and,
per step, the virtual time.monotonic_ns(), the process CPU time and the main thread's run-queue
wait (/proc/thread-self/schedstat: runnable, no CPU free) before and after.

Usage: clock_program.py PROGRAM_JSON_FILE OUT_DIR
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

MESSAGE = struct.Struct("<qq")  # msg id, sender's virtual monotonic ns


class Gpu:
    def __init__(self, max_bytes: int) -> None:
        self.rt = ctypes.CDLL("libcudart.so")
        self.ptr = ctypes.c_void_p()
        self.event = ctypes.c_void_p()
        self.check(self.rt.cudaMalloc(ctypes.byref(self.ptr), ctypes.c_size_t(max(max_bytes, 1 << 20))))
        self.check(self.rt.cudaEventCreate(ctypes.byref(self.event)))
        self.check(self.rt.cudaDeviceSynchronize())

    @staticmethod
    def check(status: int) -> None:
        if status != 0:
            raise RuntimeError(f"CUDA runtime call failed: {status}")

    def run(self, sizes: list[int], sync: str) -> None:
        for nbytes in sizes:
            self.check(self.rt.cudaMemsetAsync(self.ptr, 0, ctypes.c_size_t(nbytes), None))
        if sync == "device":
            self.check(self.rt.cudaDeviceSynchronize())
        elif sync == "stream":
            self.check(self.rt.cudaStreamSynchronize(None))
        else:
            self.check(self.rt.cudaEventRecord(self.event, None))
            self.check(self.rt.cudaEventSynchronize(self.event))


def read_exact(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError(f"fd {fd} closed")
        data += chunk
    return data


def wait_readable(fd: int, how: str) -> None:
    if how == "poll":
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll():
            pass
    elif how == "select":
        while not select.select([fd], [], [])[0]:
            pass
    # "read": the blocking read itself waits


def runqueue_wait_ns(schedstat: int) -> int:
    """Time this thread spent runnable but waiting for a CPU (virtual time passes meanwhile)."""
    return int(os.pread(schedstat, 128, 0).split()[1])


def barrier(release_fd: int, ready_fd: int) -> None:
    os.write(ready_fd, b"r")
    wait_readable(release_fd, "poll")
    read_exact(release_fd, 1)


def run_process(me: int, program: dict, ends: dict[str, tuple[int, int]],
                barriers: list[tuple[int, int]], out_dir: str) -> None:
    my_steps = [step for step in program["steps"] if step[0] == me]
    sizes = [n for step in my_steps if step[1] == "gpu" for n in step[2]]
    gpu = Gpu(max(sizes)) if sizes else None
    barrier(*barriers[0])   # start-up CPU (fork, imports, CUDA set-up) is over everywhere
    schedstat = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    log = []
    for step in my_steps:
        kind = step[1]
        wait0, cpu0, t0 = runqueue_wait_ns(schedstat), time.process_time_ns(), time.monotonic_ns()
        extra: dict = {}
        if kind == "sleep":
            time.sleep(step[2])
        elif kind == "gpu":
            gpu.run(step[2], step[3])
        elif kind == "send":
            os.write(ends[f"{me}>{step[2]}"][1], MESSAGE.pack(step[3], t0))
        elif kind == "recv":
            fd = ends[f"{step[2]}>{me}"][0]
            wait_readable(fd, step[4])
            msg, sent_ns = MESSAGE.unpack(read_exact(fd, MESSAGE.size))
            extra = {"msg": msg, "sent_ns": sent_ns}
        t1, cpu1, wait1 = time.monotonic_ns(), time.process_time_ns(), runqueue_wait_ns(schedstat)
        log.append({"kind": kind, "t0": t0, "t1": t1, "cpu0": cpu0, "cpu1": cpu1, "wait0": wait0, "wait1": wait1,
                    **extra})
    end_ns = time.monotonic_ns()
    barrier(*barriers[1])   # exit CPU (logs, interpreter shutdown) comes after every step
    with open(os.path.join(out_dir, f"proc{me}.json"), "w") as f:
        json.dump({"pid": os.getpid(), "steps": log, "end_ns": end_ns, "exit_ns": time.monotonic_ns()}, f)


def open_channels(channels: dict[str, str]) -> dict[str, tuple[int, int]]:
    """name -> (read end, write end)."""
    ends = {}
    for name, kind in channels.items():
        if kind == "pipe":
            ends[name] = os.pipe()
        else:
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ends[name] = (b.detach(), a.detach())
    return ends


def main() -> None:
    with open(sys.argv[1]) as f:
        program = json.load(f)
    out_dir = sys.argv[2]
    ends = open_channels(program["channels"])
    # Two barriers, each a (ready, release) pipe pair: before the first step, after the last.
    barriers = [(os.pipe(), os.pipe()) for _ in range(2)]
    pids = []
    for me in range(program["procs"]):
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                run_process(me, program, ends, [(release[0], ready[1]) for ready, release in barriers], out_dir)
                status = 0
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        pids.append(pid)
    for ready, release in barriers:
        for _ in pids:
            wait_readable(ready[0], "poll")
            read_exact(ready[0], 1)
        os.write(release[1], b"g" * len(pids))
    failed = 0
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        failed += status != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
