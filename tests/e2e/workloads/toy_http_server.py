"""A small streaming HTTP server for the client-option tests (emulate --client): each request to
/generate streams TOKENS chunks, one every STEP virtual seconds, as an inference server streams
tokens; /health answers 200 once the server is up.

    toy_http_server.py PORT [--listen-after S] [--tokens N] [--step S] [--die-after-requests K]
                            [--exit-status N]

--listen-after: virtual seconds of start-up before the port is bound (a model loading);
--die-after-requests: after K requests, the process kills itself (SIGKILL: no exit handler, as
the OOM killer would) in the middle of the next request's stream;
--exit-status: exit with this status instead of listening (a server that fails at start-up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, args: argparse.Namespace,
                 served: list[int]) -> None:
    while True:
        request = await reader.readline()
        if not request:
            break
        length = 0
        while header := (await reader.readline()).strip():
            name, _, value = header.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        path = request.split()[1].decode() if len(request.split()) > 1 else "/"
        if path == "/health":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            continue
        served[0] += 1
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
        for i in range(args.tokens):
            await asyncio.sleep(args.step)
            if args.die_after_requests is not None and served[0] > args.die_after_requests and i == args.tokens // 2:
                os.kill(os.getpid(), signal.SIGKILL)
            data = f"data: {i}\n\n".encode()
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    writer.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--listen-after", type=float, default=0.0)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--step", type=float, default=0.01)
    ap.add_argument("--die-after-requests", type=int)
    ap.add_argument("--exit-status", type=int)
    args = ap.parse_args()
    if args.exit_status is not None:
        print("toy server: failing at start-up", flush=True)
        sys.exit(args.exit_status)
    time.sleep(args.listen_after)
    served = [0]
    server = await asyncio.start_server(lambda r, w: handle(r, w, args, served), "127.0.0.1", args.port)
    print(f"toy server: listening on {args.port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    print(f"toy server: stopped cleanly after {served[0]} requests", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
