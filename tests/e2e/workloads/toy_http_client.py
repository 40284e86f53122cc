"""The toy server's benchmark client: REQUESTS streaming requests, one every GAP virtual seconds,
each on its own connection; prints one `REQ start_s ttft_s e2e_s chunks` line per request
(virtual seconds, start relative to the first) and `RESULT ok=N failed=N`, and exits 1 if any
request failed.

    toy_http_client.py PORT [--requests N] [--gap S] [--connect-retries N]

--connect-retries: a refused connection is retried up to N times, 0.2 virtual seconds apart (a
client started before its server listens).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import time


def connect(port: int, retries: int) -> http.client.HTTPConnection:
    for attempt in range(retries + 1):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            conn.connect()
            return conn
        except ConnectionRefusedError:
            if attempt == retries:
                raise
            time.sleep(0.2)
    raise AssertionError("unreachable")


def one(port: int, retries: int) -> tuple[float, float, int]:
    began = time.perf_counter()
    conn = connect(port, retries)
    conn.request("POST", "/generate", body=b"{}")
    response = conn.getresponse()
    ttft, chunks = None, 0
    while chunk := response.read1(65536):
        if ttft is None:
            ttft = time.perf_counter() - began
        chunks += chunk.count(b"data: ")
    conn.close()
    return ttft or 0.0, time.perf_counter() - began, chunks


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--requests", type=int, default=4)
    ap.add_argument("--gap", type=float, default=0.1)
    ap.add_argument("--connect-retries", type=int, default=0)
    args = ap.parse_args()
    ok = failed = 0
    first = time.perf_counter()
    for i in range(args.requests):
        start = time.perf_counter()
        try:
            ttft, e2e, chunks = one(args.port, args.connect_retries)
        except (OSError, http.client.HTTPException) as err:
            print(f"request {i} failed: {err}", flush=True)
            failed += 1
        else:
            print(f"REQ {start - first:.6f} {ttft:.6f} {e2e:.6f} {chunks}", flush=True)
            ok += 1
        time.sleep(args.gap)
    print(f"RESULT ok={ok} failed={failed}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
