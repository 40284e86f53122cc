"""An asyncio server and client in two processes sharing the virtual clock. The server answers
each request after a modelled GPU step (a sleep, or a torch matmul + synchronize with --torch);
the client sends requests on a seeded Poisson schedule for DURATION virtual seconds and measures
latencies with time.perf_counter.

    RESULT requests=N wall_s=... step_s=...
    LAT arrival_s latency_s      (one line per request, arrival relative to the first)

Usage: clock_asyncio_serving.py SEED RATE_PER_S DURATION_S STEP_S [--torch]
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import sys
import tempfile
import time


def gpu_step_factory(step_s: float, use_torch: bool):  # noqa: ANN201
    if not use_torch:
        return lambda: time.sleep(step_s)
    import torch

    a = torch.randn(4096, 4096, device="cuda", dtype=torch.float16)

    def step() -> None:
        for _ in range(8):
            torch.matmul(a, a)
        torch.cuda.synchronize()

    return step


async def serve(sock: socket.socket, step) -> None:  # noqa: ANN001
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            step()
            writer.write(line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, sock=sock)
    async with server:
        await server.serve_forever()


async def client(path: str, seed: int, rate: float, duration: float) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    while True:
        t += rng.expovariate(rate)
        if t > duration:
            break
        arrivals.append(t)
    reader, writer = await asyncio.open_unix_connection(path)
    sent: dict[int, float] = {}
    start = time.perf_counter()

    async def send_all() -> None:
        for i, at in enumerate(arrivals):
            delay = start + at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[i] = time.perf_counter()
            writer.write(f"{i}\n".encode())
            await writer.drain()

    sender = asyncio.create_task(send_all())
    results = []
    for _ in arrivals:
        i = int(await reader.readline())
        results.append((sent[i] - start, time.perf_counter() - sent[i]))
    await sender
    writer.close()
    return results


def main() -> None:
    seed, rate, duration, step_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    use_torch = "--torch" in sys.argv
    # A unix socket: its write wakes the reader inside the send. Loopback TCP may deliver later
    # from the kernel's own real-time machinery (autocorking, softirq), which no clock sees.
    path = tempfile.mkdtemp() + "/serve.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            step = gpu_step_factory(step_s, use_torch)
            step()  # warm-up: the first call pays one-time library initialisation on the CPU
            t0 = time.perf_counter()
            step()
            print(f"RESULT step_s={time.perf_counter() - t0:.6f}", flush=True)
            os.write(ready_write, b"r")
            asyncio.run(serve(listener, step))
        finally:
            os._exit(0)
    listener.close()
    # The schedule starts once the server is up: importing torch is seconds of real CPU, which
    # queued requests would otherwise count as latency.
    os.read(ready_read, 1)
    wall0 = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
    results = asyncio.run(client(path, seed, rate, duration))
    os.kill(pid, 15)
    os.waitpid(pid, 0)
    for arrival, latency in results:
        print(f"LAT {arrival:.6f} {latency:.6f}")
    print(f"RESULT requests={len(results)} client_cpu_s={time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID) - wall0:.6f}")


if __name__ == "__main__":
    main()
