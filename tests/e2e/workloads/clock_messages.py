"""Actors (threads or forked processes) exchange messages in rounds: in round (s, r, d) actor s
sleeps d seconds, then sends to r, and r receives. Each actor prints its virtual timestamps:

    EVENT actor kind round t_s [requested_s]

Usage: clock_messages.py threads|processes N_ACTORS JSON_ROUNDS
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time


def actor_body(me: int, rounds: list[list], t0: float, send, recv) -> None:  # noqa: ANN001
    out = []
    for k, (s, r, d) in enumerate(rounds):
        if s == me:
            before = time.monotonic()
            time.sleep(d)
            after = time.monotonic()
            out.append(f"EVENT {me} sleep {k} {after - t0:.6f} {d} {after - before:.6f}")
            now = time.monotonic() - t0
            send(r, k, now)
            out.append(f"EVENT {me} send {k} {now:.6f}")
        elif r == me:
            k_got, sent_at = recv(s)
            assert k_got == k, (k_got, k)
            out.append(f"EVENT {me} recv {k} {time.monotonic() - t0:.6f} {sent_at:.6f}")
    sys.stdout.write("".join(line + "\n" for line in out))
    sys.stdout.flush()


def run_threads(n: int, rounds: list[list], t0: float) -> None:
    boxes = {(a, b): queue.Queue() for a in range(n) for b in range(n)}
    threads = []
    for me in range(n):
        def send(to: int, k: int, now: float, me: int = me) -> None:
            boxes[(me, to)].put((k, now))

        def recv(frm: int, me: int = me) -> tuple[int, float]:
            return boxes[(frm, me)].get()

        threads.append(threading.Thread(target=actor_body, args=(me, rounds, t0, send, recv)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def run_processes(n: int, rounds: list[list], t0: float) -> None:
    pipes = {(a, b): os.pipe() for a in range(n) for b in range(n) if a != b}
    pids = []
    for me in range(n):
        pid = os.fork()
        if pid == 0:
            def send(to: int, k: int, now: float, me: int = me) -> None:
                os.write(pipes[(me, to)][1], f"{k} {now:.9f}\n".encode())

            def recv(frm: int, me: int = me) -> tuple[int, float]:
                line = b""
                while not line.endswith(b"\n"):
                    line += os.read(pipes[(frm, me)][0], 1)
                k, now = line.split()
                return int(k), float(now)

            try:
                actor_body(me, rounds, t0, send, recv)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert status == 0, status


def main() -> None:
    mode, n, rounds = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    t0 = time.monotonic()
    (run_threads if mode == "threads" else run_processes)(n, rounds, t0)
    print(f"RESULT total_s={time.monotonic() - t0:.6f}")


if __name__ == "__main__":
    main()
