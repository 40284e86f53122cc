"""summary.json's `serving` section: per-request latencies of a serving benchmark, the engine's
decode steps during it, and the emulation speed, all in the run's virtual time (docs/serving.md).

Requests come from the benchmark client's detailed result files written into the run directory
(`vllm bench serve --save-result --save-detailed --result-dir $TIMEWARP_RUN_DIR/...`,
`python -m sglang.bench_serving --output-file $TIMEWARP_RUN_DIR/... --output-details`): each
request's send time (the client's `time.perf_counter()`, the run's virtual clock), its time to
first token, inter-token latencies and end-to-end latency. The client ran on the run's clock,
so these are the latencies the emulated GPU gives; the section recomputes the client's
aggregates from the per-request values (`agreement`: each within 1 % of what the client printed
and saved) and sets the requests beside the engine's own timeline: the engine's decode steps
inside the benchmark's interval (`engine`), whose period is the server-side inter-token time.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emulator.outputs.records import RunRecords
from emulator.outputs.steps import Step, engine_steps

log = logging.getLogger(__name__)

PERCENTILES = (50, 90, 99)
RUN_FILES = {"summary.json", "run.json", "trace.json", "coordinator.json"}
# (our metric, the client's aggregate key in its result file); ms unless named otherwise
AGREEMENT_KEYS = (
    ("ttft_ms.mean", "mean_ttft_ms"), ("ttft_ms.p50", "median_ttft_ms"), ("ttft_ms.p99", "p99_ttft_ms"),
    ("tpot_ms.mean", "mean_tpot_ms"), ("tpot_ms.p50", "median_tpot_ms"), ("tpot_ms.p99", "p99_tpot_ms"),
    ("itl_ms.mean", "mean_itl_ms"), ("itl_ms.p50", "median_itl_ms"), ("itl_ms.p99", "p99_itl_ms"),
    ("e2e_ms.mean", ("mean_e2el_ms", "mean_e2e_latency_ms")), ("e2e_ms.p50", ("median_e2el_ms", "median_e2e_latency_ms")),
    ("completed", "completed"),
)


def _result_documents(path: Path) -> list[dict[str, Any]]:
    """The client's result objects in a file: one JSON object (vLLM) or JSON lines (SGLang)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return []
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        docs = []
        for line in text.splitlines():
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return [d for d in docs if isinstance(d, dict) and {"ttfts", "itls"} <= d.keys()]


def _sent_by_the_client(run: RunRecords, path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """A result without send times (SGLang's bench_serving keeps none) gets them from the run's
    records: the process whose command names the file sent the requests, and the shim marked
    when each request line was written (shim/src/http_requests.c). The benchmark's requests are
    the last N POSTs to its most used path (a warm-up request comes before them, a GET of the
    server's state after), in the order they were sent, which is the file's request order (the
    client starts request i before request i+1). Unchanged when no process matches."""
    n = len(doc["ttfts"])
    if doc.get("start_times") or n == 0:
        return doc
    def names_the_file(command: str) -> bool:
        return any(arg == str(path) or arg == path.name or arg.endswith(f"/{path.name}") for arg in command.split())

    # a shell that started the client names the file too, but sends nothing
    clients = [(p, [(at, what) for at, what in p.http_requests() if what.startswith("POST ")])
               for p in run.processes if names_the_file(p.command)]
    clients = [(p, posts) for p, posts in clients if posts]
    if len(clients) != 1:
        return doc
    client, posts = clients[0]
    paths = [what for _, what in posts]
    busiest = max(set(paths), key=paths.count)
    sent = [at / 1e9 for at, what in posts if what == busiest][-n:]
    if len(sent) < n:
        return doc
    return {**doc, "start_times": sent, "sent_from": f"HTTP requests of pid {client.pid} ({busiest})"}


def client_results(run: RunRecords) -> list[tuple[Path, dict[str, Any]]]:
    """Every detailed benchmark result the client left in the run directory (with send times
    from the run's records where the file has none), in the order the benchmarks ran (their
    first request's send time)."""
    out = []
    for path in sorted(run.run_dir.rglob("*.json*")):
        if path.name in RUN_FILES or path.parent.name in ("proc", "crash"):
            continue
        out.extend((path, _sent_by_the_client(run, path, doc)) for doc in _result_documents(path))
    return sorted(out, key=lambda found: min((t for t in found[1].get("start_times") or [] if t is not None),
                                             default=float("inf")))


def server_requests(run: RunRecords) -> pd.DataFrame:
    """One row per HTTP request a process of the run served, from its own records (the shim's
    marks on the connections it accepted): pid, path ("POST /v1/completions"), arrived_s (its
    request line read), status, chunks (server-sent events written), first_chunk_s,
    last_chunk_s. Virtual seconds on the clock the client's times use."""
    rows: list[dict[str, Any]] = []
    for proc in run.processes:
        current: dict[int, dict[str, Any]] = {}   # connection -> the request it carries now
        for at, what, conn in proc.http_served():
            if what.startswith("received "):
                current[conn] = {"pid": proc.pid, "path": what[len("received "):], "arrived_s": at / 1e9,
                                 "status": None, "chunks": 0, "first_chunk_s": np.nan, "last_chunk_s": np.nan}
                rows.append(current[conn])
            elif conn in current and what.startswith("response "):
                current[conn]["status"] = what[len("response "):]
            elif conn in current:   # a chunk
                row = current[conn]
                row["chunks"] += 1
                row["first_chunk_s"] = at / 1e9 if row["chunks"] == 1 else row["first_chunk_s"]
                row["last_chunk_s"] = at / 1e9
    columns = ["pid", "path", "arrived_s", "status", "chunks", "first_chunk_s", "last_chunk_s"]
    return pd.DataFrame(rows, columns=columns)


def _served(requests: pd.DataFrame, begin_s: float, end_s: float, client: dict[str, Any]) -> dict[str, Any] | None:
    """The benchmark's requests as the server saw them: the streamed POSTs that arrived inside
    its interval, to the path most of them took. A request's server-side TTFT ends when its first
    event was written, which is before the client reads it, and begins when its request line was
    read, after the client sent it: per request, and so per percentile over the same requests
    (every request of the benchmark completed), the server's TTFT and E2E are at most the
    client's (`client_minus_server_ms` >= 0)."""
    inside = requests[(requests["arrived_s"] >= begin_s) & (requests["arrived_s"] <= end_s) &
                      requests["path"].str.startswith("POST ") & (requests["chunks"] > 0)]
    if inside.empty:
        return None
    path = inside["path"].value_counts().index[0]
    mine = inside[inside["path"] == path]
    ttft = _stats_ms((mine["first_chunk_s"] - mine["arrived_s"]).to_numpy())
    e2e = _stats_ms((mine["last_chunk_s"] - mine["arrived_s"]).to_numpy())
    return {
        "pid": int(mine["pid"].iloc[0]), "path": path, "requests": int(len(mine)),
        "statuses": {str(k): int(v) for k, v in mine["status"].value_counts(dropna=False).items()},
        "ttft_ms": ttft, "e2e_ms": e2e,
        "client_minus_server_ms": {f"{what}.{p}": client[what][p] - ours[p]
                                   for what, ours in (("ttft_ms", ttft), ("e2e_ms", e2e))
                                   for p in ("p50", "p90") if client.get(what) and p in client[what]},
    }


def request_table(doc: dict[str, Any]) -> pd.DataFrame:
    """One row per request: sent_s (the client's clock), ttft_s, e2e_s, output_len, itls, ok."""
    ttfts = [float(t or 0.0) for t in doc["ttfts"]]
    itls = [list(map(float, i or [])) for i in doc["itls"]]
    n = len(ttfts)
    starts = doc.get("start_times") or [np.nan] * n
    errors = doc.get("errors") or [""] * n
    output_lens = doc.get("output_lens") or [len(i) + 1 for i in itls]
    latencies = doc.get("latencies") or doc.get("e2e_latencies") or \
        [t + sum(i) for t, i in zip(ttfts, itls, strict=True)]
    table = pd.DataFrame({
        "sent_s": np.asarray(starts, dtype=float), "ttft_s": ttfts, "e2e_s": np.asarray(latencies, dtype=float),
        "output_len": np.asarray(output_lens, dtype=np.int64), "itls": itls,
        "ok": [not e and t > 0 for e, t in zip(errors, ttfts, strict=True)],
    })
    return table


def _stats_ms(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    out = {"mean": float(np.mean(values)) * 1e3}
    out.update({f"p{p}": float(np.percentile(values, p)) * 1e3 for p in PERCENTILES})
    return out


def _lookup(section: dict[str, Any], dotted: str) -> float | None:
    value: Any = section
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


def _jumped_ns(run: RunRecords, lo_ns: int, hi_ns: int) -> int:
    from emulator.outputs.summary import unique_jumps

    jumps = unique_jumps(run)
    if len(jumps) == 0:
        return 0
    return int((jumps[:, 1].clip(lo_ns, hi_ns) - jumps[:, 0].clip(lo_ns, hi_ns)).clip(0).sum())


def _engine_steps(engine: tuple[int | None, list[Step]], t0_ns: int, lo_ns: int, hi_ns: int) -> dict[str, Any]:
    """The engine's steps that ended inside [lo, hi]: count by phase, and the decode period (time
    from one decode step's end to the next's), once per sequence the step decoded: what a running
    request waits per token on the server, comparable with the client's inter-token latency."""
    pid, steps = engine
    inside = [s for s in steps if lo_ns <= t0_ns + s.end_us * 1e3 <= hi_ns]
    decodes = [s for s in inside if s.phase == "decode"]
    # one period per token: a step that decodes n sequences gives each of them its period
    periods = [[(b.end_us - a.end_us) / 1e6] * (b.sequences or 1) for a, b in zip(inside, inside[1:], strict=False)
               if a.phase == b.phase == "decode" and b.index == a.index + 1]
    return {
        "pid": pid, "steps": len(inside), "prefill_steps": sum(s.phase == "prefill" for s in inside),
        "decode_steps": len(decodes),
        "decode_period_ms": _stats_ms(np.asarray([x for per_step in periods for x in per_step])),
        "decode_busy_ms": _stats_ms(np.asarray([s.busy_us / 1e6 for s in decodes])),
        "sequences_per_decode_step": float(np.mean([s.sequences or 0 for s in decodes])) if decodes else None,
    }


def benchmark_summary(run: RunRecords, engine: tuple[int | None, list[Step]], path: Path,
                      doc: dict[str, Any], served: pd.DataFrame) -> dict[str, Any]:
    table = request_table(doc)
    ok = table[table["ok"]]
    tpots = np.asarray([(e - t) / (n - 1) for e, t, n in zip(ok["e2e_s"], ok["ttft_s"], ok["output_len"],
                                                             strict=True) if n > 1])
    itls = np.asarray([x for row in ok["itls"] for x in row])
    sent = np.sort(table["sent_s"].dropna().to_numpy())
    out: dict[str, Any] = {
        "file": str(path.relative_to(run.run_dir)),
        "sent_from": doc.get("sent_from", "client result file" if doc.get("start_times") else None),
        "requests": len(table), "completed": int(len(ok)),
        "failed": int(len(table) - len(ok)),
        "output_tokens": int(ok["output_len"].sum()),
        "ttft_ms": _stats_ms(ok["ttft_s"].to_numpy()), "tpot_ms": _stats_ms(tpots), "itl_ms": _stats_ms(itls),
        "e2e_ms": _stats_ms(ok["e2e_s"].to_numpy()),
        "inter_arrival_s": {"mean": float(np.mean(np.diff(sent))), "count": len(sent) - 1} if len(sent) > 1 else {},
    }
    if len(ok) and len(sent):
        begin_s = float(np.nanmin(table["sent_s"]))
        end_s = float(np.nanmax(ok["sent_s"] + ok["e2e_s"]))
        virtual_s = end_s - begin_s
        lo_ns, hi_ns = int(begin_s * 1e9), int(end_s * 1e9)
        wall_s = virtual_s - _jumped_ns(run, lo_ns, hi_ns) / 1e9
        out.update({
            "begin_s": begin_s - run.start_virtual_ns / 1e9, "end_s": end_s - run.start_virtual_ns / 1e9,
            "duration_s": virtual_s, "request_throughput": len(ok) / virtual_s if virtual_s > 0 else None,
            "output_throughput": out["output_tokens"] / virtual_s if virtual_s > 0 else None,
            # between clock jumps the virtual clock runs at the wall clock's rate
            "speed": {"virtual_s": virtual_s, "wall_s": wall_s, "virtual_per_wall": virtual_s / wall_s
                      if wall_s > 0 else None},
            "engine": _engine_steps(engine, run.start_virtual_ns, lo_ns, hi_ns),
            "server": _served(served, begin_s, end_s, out),
        })
    agreement = {}
    for ours, names in AGREEMENT_KEYS:
        theirs = [n for n in ((names,) if isinstance(names, str) else names) if n in doc]
        mine, client = _lookup(out, ours), doc.get(theirs[0]) if theirs else None
        if mine is not None and isinstance(client, (int, float)):
            agreement[ours] = {"summary": mine, "client": float(client),
                               "relative": abs(mine - client) / abs(client) if client else abs(mine)}
    out["agreement"] = agreement
    out["agreement_max_relative"] = max((a["relative"] for a in agreement.values()), default=None)
    return out


def serving_summary(run: RunRecords, ops: pd.DataFrame) -> dict[str, Any] | None:
    """The `serving` section, or None when the run directory holds no client result."""
    found = client_results(run)
    if not found:
        return None
    pid, _tid, _windows, steps = engine_steps(run, ops)   # all of them: summary `steps` lists 1000
    served = server_requests(run)
    benchmarks = []
    for path, doc in found:
        try:
            benchmarks.append(benchmark_summary(run, (pid, steps), path, doc, served))
        except (KeyError, ValueError, TypeError) as err:
            log.warning("serving: %s: not a benchmark result this reader knows (%s)", path, err)
    return {"source": "client result files (per-request times on the run's virtual clock)",
            "benchmarks": benchmarks}


def serving_requests(run: RunRecords) -> list[tuple[str, pd.DataFrame]]:
    """(file, request table) per benchmark, for the plot."""
    return [(str(path.relative_to(run.run_dir)), request_table(doc)) for path, doc in client_results(run)]
